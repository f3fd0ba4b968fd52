"""The registry's signing keys, trusted public keys loaded for verification, and signing."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from securesystemslib.dsse import Envelope
from securesystemslib.formats import encode_canonical

# securesystemslib.signer is the documented import path but has no __all__, so mypy's strict
# no-implicit-reexport flags every name; the names and their types still resolve.
from securesystemslib.signer import (  # type: ignore[attr-defined]
    ECDSA_SHA2_NISTP256,
    ED25519,
    KEY_TYPE_ED25519,
    CryptoSigner,
    Key,
    Signer,
    SSlibKey,
)

from provenance.attestation_verify.constants import PAYLOAD_TYPE_IN_TOTO
from provenance.attestation_verify.statement import _check_statement

# --------------------------------------------------------------------------
# Registry signing keys
# --------------------------------------------------------------------------


def generate_signing_key(scheme: str = ECDSA_SHA2_NISTP256) -> tuple[bytes, dict[str, Any]]:
    """A new registry key: PKCS#8 PEM private key and securesystemslib public key dict.

    Only ECDSA P-256 (default, widest verifier support) and Ed25519 are offered: the formats
    that in-toto, model_signing and Sigstore tooling all verify.
    """
    if scheme == ECDSA_SHA2_NISTP256:
        signer = CryptoSigner.generate_ecdsa(scheme=ECDSA_SHA2_NISTP256)
    elif scheme == ED25519:
        signer = CryptoSigner.generate_ed25519()
    else:
        raise ValueError(
            f"unsupported signing scheme {scheme!r}: use {ECDSA_SHA2_NISTP256!r} or {ED25519!r}"
        )
    return signer.private_bytes, signer.public_key.to_dict()


def signer_from_pem(private_pem: bytes) -> CryptoSigner:
    """Load an unencrypted PKCS#8 PEM key as a signer whose keyid is securesystemslib's default.

    Key files are protected by the filesystem (mode 0600) or replaced by a KMS signer in
    production, so a passphrase would only move the secret elsewhere.
    """
    try:
        private_key = load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an unencrypted PEM private key: {exc}") from exc
    is_p256 = isinstance(private_key, ec.EllipticCurvePrivateKey) and isinstance(
        private_key.curve, ec.SECP256R1
    )
    if not (is_p256 or isinstance(private_key, Ed25519PrivateKey)):
        raise ValueError("registry signing keys must be ECDSA P-256 or Ed25519")
    return CryptoSigner(private_key)


def key_id(public_key_dict: Mapping[str, Any]) -> str:
    """securesystemslib's default keyid: SHA-256 of the canonical JSON of type, scheme and value.

    Recomputed here from the public ``formats.encode_canonical`` (what securesystemslib's
    private ``compute_default_keyid`` does) so it also works for keys we did not generate.
    """
    canonical = encode_canonical(
        {
            "keytype": public_key_dict["keytype"],
            "scheme": public_key_dict["scheme"],
            "keyval": public_key_dict["keyval"],
        }
    )
    if not isinstance(canonical, str):
        raise ValueError("public key dict cannot be canonicalised")
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def public_pem(public_key_dict: Mapping[str, Any]) -> bytes:
    """The key as SubjectPublicKeyInfo PEM, the form ``model_signing`` and cosign accept."""
    return _crypto_public_key(public_key_dict).public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )


def _crypto_public_key(public_key_dict: Mapping[str, Any]) -> PublicKeyTypes:
    """securesystemslib stores Ed25519 keys as raw hex and every other type as PEM."""
    public = public_key_dict["keyval"]["public"]
    if public_key_dict["keytype"] == KEY_TYPE_ED25519:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public))
    return load_pem_public_key(public.encode("utf-8"))


class _LoadedKey(SSlibKey):
    """An ``SSlibKey`` that parses its public key once instead of on every signature.

    ``SSlibKey.verify_signature`` re-reads the key's PEM on each call (its ``_crypto_key``); here
    that method returns the key object loaded when the trusted key was checked. The signature
    check itself — scheme dispatch, key type and curve checks, hash — is still
    securesystemslib's. Should a securesystemslib release rename ``_crypto_key``, the override
    goes unused and verification stays correct, only slower.
    """

    def __init__(self, key: SSlibKey, crypto_key: PublicKeyTypes) -> None:
        super().__init__(key.keyid, key.keytype, key.scheme, key.keyval, key.unrecognized_fields)
        self._loaded = crypto_key

    def _crypto_key(self) -> PublicKeyTypes:
        return self._loaded


def _load_trusted_key(keyid: str, public_key_dict: Mapping[str, Any]) -> SSlibKey:
    """A trusted key, checked up front: a broken trust configuration must not read as a bad
    signature on somebody's upload.

    Loaded keys are cached by key id and content (a trusted key is checked against thousands
    of envelopes in a re-verification): the cache key is the whole key dict, so a changed dict
    is a different key, and *which* keys are trusted stays the caller's decision every call.
    """
    try:
        content = json.dumps(public_key_dict, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"trusted key {keyid!r} is not a usable public key: {exc}") from exc
    return _load_trusted_key_content(keyid, content)


@functools.lru_cache(maxsize=256)
def _load_trusted_key_content(keyid: str, content: str) -> SSlibKey:
    # A fresh dict from the JSON text: Key.from_dict consumes what it is given, never the
    # caller's dict (nor a cached one). Failures raise, and lru_cache caches no exception.
    public_key_dict = json.loads(content)
    try:
        crypto_key = _crypto_public_key(public_key_dict)
        key = Key.from_dict(keyid, public_key_dict)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"trusted key {keyid!r} is not a usable public key: {exc}") from exc
    if not isinstance(key, SSlibKey):
        raise ValueError(f"trusted key {keyid!r} is not a securesystemslib key")
    # A subclass may verify its own way: only a plain SSlibKey gets the preloaded key.
    return _LoadedKey(key, crypto_key) if type(key) is SSlibKey else key


# --------------------------------------------------------------------------
# Signing
# --------------------------------------------------------------------------


def sign_statement(statement: Mapping[str, Any], signer: Signer) -> bytes:
    """Sign an in-toto Statement v1 and return the DSSE envelope as JSON bytes.

    The statement is checked with the same rules as uploads, so the registry never signs what
    it would itself reject; the payload is RFC 8785 canonical JSON so equal statements give
    equal payloads.
    """
    _check_statement(statement)
    envelope = Envelope(rfc8785.dumps(dict(statement)), PAYLOAD_TYPE_IN_TOTO, {})
    envelope.sign(signer)
    return rfc8785.dumps(envelope.to_dict())
