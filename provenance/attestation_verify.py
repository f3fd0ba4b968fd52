"""Parse, sign and verify in-toto attestations: DSSE envelopes and keyless Sigstore bundles.

Everything uploaded to the registry is hostile until proven otherwise, so this module is the
single gate between raw bytes and a statement the registry may act on.  Three rules shape it:

* **Verbatim bytes.**  A DSSE signature covers ``PAE(payloadType, payload)`` over the *decoded
  payload bytes*.  We keep the uploaded envelope and its payload exactly as received and never
  re-serialise them: two JSON encoders rarely agree byte for byte, and a re-encoded payload no
  longer matches its signature.  The only JSON we serialise ourselves is what we sign, with
  RFC 8785 canonical JSON so the bytes are reproducible.
* **One stable reason per rejection.**  Every refusal is an :class:`AttestationRejected` with a
  machine-readable ``code`` (for API clients and the rejection log) and a human ``detail``.
* **Library crypto only.**  DSSE signing, PAE and signature checks come from securesystemslib;
  Sigstore bundles are verified by sigstore-python against a pinned trusted root read from disk,
  never fetched, so verification works on an air-gapped machine.

Pure Python: no Django imports, so workers, management commands and the standalone evidence
verifier can all share it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import orjson
import rfc8785
from cryptography import x509
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
from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.formats import encode_canonical

# securesystemslib.signer is the documented import path but has no __all__, so mypy's strict
# no-implicit-reexport flags every name; the names and their types still resolve.
from securesystemslib.signer import (  # type: ignore[attr-defined]
    ECDSA_SHA2_NISTP256,
    ED25519,
    KEY_TYPE_ED25519,
    CryptoSigner,
    Key,
    Signature,
    Signer,
    SSlibKey,
)
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError as SigstoreVerificationError
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_SIGNATURES",
    "PAYLOAD_TYPE_IN_TOTO",
    "PREDICATE_CYCLONEDX",
    "PREDICATE_MODEL_SIGNING",
    "PREDICATE_SLSA_PROVENANCE_V1",
    "PREDICATE_SPDX",
    "PREDICATE_TEST_RESULT",
    "REGISTRY_PREDICATE_PREFIX",
    "STATEMENT_TYPE_V1",
    "AttestationRejected",
    "EnvelopeSignature",
    "ParsedEnvelope",
    "RejectionCode",
    "SigstoreResult",
    "TrustedKeys",
    "check_predicate_type",
    "generate_signing_key",
    "key_id",
    "parse_envelope",
    "parse_key_bundle",
    "public_pem",
    "sign_statement",
    "signer_from_pem",
    "verify_envelope",
    "verify_sigstore_bundle",
]

PAYLOAD_TYPE_IN_TOTO = "application/vnd.in-toto+json"
STATEMENT_TYPE_V1 = "https://in-toto.io/Statement/v1"

PREDICATE_SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
PREDICATE_TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
PREDICATE_MODEL_SIGNING = "https://model_signing/signature/v1.0"
PREDICATE_CYCLONEDX = "https://cyclonedx.org/bom"
PREDICATE_SPDX = "https://spdx.dev/Document"
REGISTRY_PREDICATE_PREFIX = "https://secmlops.dev/attestation/"

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
"""Upload cap, checked before any parsing so a huge body costs nothing but its length."""

MAX_SIGNATURES = 32
"""Each signature may cost one verification per trusted key; bound the work an upload buys."""

_EXACT_PREDICATE_TYPES = frozenset(
    {PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_TEST_RESULT, PREDICATE_MODEL_SIGNING}
)
# BOM formats put their spec version in the TypeURI (".../bom/v1.6", ".../Document/v2.3").
_VERSIONED_PREDICATE_TYPES = (
    re.compile(re.escape(PREDICATE_CYCLONEDX) + r"(/v[0-9]+\.[0-9]+)?"),
    re.compile(re.escape(PREDICATE_SPDX) + r"(/v[0-9]+(\.[0-9]+)*)?"),
    re.compile(
        re.escape(REGISTRY_PREDICATE_PREFIX) + r"[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*"
    ),
)

# DigestSet algorithms that in-toto defines with lowercase hex values (spec/v1/digest_set.md);
# values of other algorithms are opaque strings that consumers must ignore.
_HEX_DIGEST_ALGORITHMS = frozenset(
    {
        "sha256", "sha224", "sha384", "sha512", "sha512_224", "sha512_256", "sha3_224",
        "sha3_256", "sha3_384", "sha3_512", "shake128", "shake256", "blake2b", "blake2s",
        "ripemd160", "sm3", "gost", "sha1", "md5", "dirHash", "gitCommit", "gitTree",
        "gitBlob", "gitTag",
    }
)  # fmt: skip
_LOWER_HEX = re.compile(r"[0-9a-f]+")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# DSSE allows standard or URL-safe base64 (envelope.md); mixing the two alphabets is not either.
_STANDARD_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_URLSAFE_B64 = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_DETAIL_VALUE_CHARS = 80
_DETAIL_MESSAGE_CHARS = 300


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class RejectionCode(StrEnum):
    """Why an upload was refused; the values are API contract, never rename one."""

    PAYLOAD_TOO_LARGE = "payload_too_large"
    MALFORMED_JSON = "malformed_json"
    MALFORMED_ENVELOPE = "malformed_envelope"
    MALFORMED_BASE64 = "malformed_base64"
    WRONG_PAYLOAD_TYPE = "wrong_payload_type"
    NOT_A_STATEMENT = "not_a_statement"
    UNKNOWN_PREDICATE_TYPE = "unknown_predicate_type"
    UNTRUSTED_SIGNER = "untrusted_signer"
    BAD_SIGNATURE = "bad_signature"
    IDENTITY_MISMATCH = "identity_mismatch"
    MALFORMED_BUNDLE = "malformed_bundle"
    MALFORMED_PREDICATE = "malformed_predicate"
    SUBJECT_MISMATCH = "subject_mismatch"
    SUBJECT_UNKNOWN = "subject_unknown"
    PREDICATE_NOT_ALLOWED = "predicate_not_allowed"
    SIGSTORE_NOT_CONFIGURED = "sigstore_not_configured"


class AttestationRejected(ValueError):
    """An uploaded attestation failed a check: nothing from it may be stored or trusted.

    ``code`` is a stable machine-readable tag (a :class:`RejectionCode` value) and ``detail`` a
    sentence for a human.  Details quote at most a short prefix of any uploaded value.
    """

    def __init__(self, code: RejectionCode, detail: str) -> None:
        super().__init__(f"{code.value}: {detail}")
        self.code: str = code.value
        self.detail = detail


def _quoted(value: object) -> str:
    """A bounded repr, so a hostile upload cannot bloat our error responses and logs."""
    text = repr(value)
    if len(text) > _DETAIL_VALUE_CHARS:
        return text[:_DETAIL_VALUE_CHARS] + "..."
    return text


def _truncated(message: str) -> str:
    """Library messages can quote attacker-chosen certificate fields; keep them short."""
    if len(message) > _DETAIL_MESSAGE_CHARS:
        return message[:_DETAIL_MESSAGE_CHARS] + "..."
    return message


def _reject_if_too_large(raw: bytes, max_bytes: int, what: str) -> None:
    if len(raw) > max_bytes:
        raise AttestationRejected(
            RejectionCode.PAYLOAD_TOO_LARGE,
            f"{what} is {len(raw)} bytes, more than the limit of {max_bytes}",
        )


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


# --------------------------------------------------------------------------
# Parsing DSSE envelopes
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvelopeSignature:
    """One DSSE signature; ``keyid`` is an unauthenticated hint and may be empty."""

    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class ParsedEnvelope:
    """A structurally valid DSSE envelope holding an in-toto Statement v1, not yet verified.

    ``raw`` and ``payload`` are the exact bytes received and decoded: store and verify those,
    never a re-encoding of ``statement``.
    """

    raw: bytes
    payload_type: str
    payload: bytes
    statement: dict[str, Any]
    signatures: tuple[EnvelopeSignature, ...]
    envelope_digest: str

    @property
    def predicate_type(self) -> str:
        return str(self.statement["predicateType"])


def parse_envelope(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedEnvelope:
    """Strictly parse an uploaded DSSE envelope; raises :class:`AttestationRejected`.

    Checks, in order: size, JSON, payloadType, base64, signatures, then the payload as an
    in-toto Statement v1 with a known predicate type.  No signature is checked here.
    """
    _reject_if_too_large(raw, max_bytes, "envelope")
    document = _strict_json(raw, "envelope")
    if not isinstance(document, dict):
        raise AttestationRejected(RejectionCode.MALFORMED_ENVELOPE, "envelope is not a JSON object")
    payload_type = _payload_type(document)
    payload = _b64decode(_required_str(document, "payload", "envelope"), "payload")
    signatures = _signatures(document.get("signatures"))
    return ParsedEnvelope(
        raw=raw,
        payload_type=payload_type,
        payload=payload,
        statement=_parse_statement(payload),
        signatures=signatures,
        envelope_digest=hashlib.sha256(raw).hexdigest(),
    )


def _strict_json(data: bytes, what: str) -> Any:
    """UTF-8 JSON without duplicate keys, non-finite numbers or lone surrogates.

    Duplicate keys are the classic parser-differential trick: another tool reading the stored
    bytes could see a different value from the one we checked.
    """
    document = _compact_json(data)
    if document is not _NOT_COMPACT:
        return document
    try:
        text = data.decode("utf-8")
        if text.startswith("\ufeff"):  # what json.loads says of a byte-order mark
            raise ValueError("Unexpected UTF-8 BOM (decode using utf-8-sig)")
        document = _STRICT_DECODER.decode(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise AttestationRejected(
            RejectionCode.MALFORMED_JSON, f"{what} is not valid JSON: {_truncated(str(exc))}"
        ) from exc
    # Strict UTF-8 decoding never yields a surrogate: only a \uD800-\uDFFF escape can, so the
    # walk over every string is needed only when the text holds one.
    if _SURROGATE_ESCAPE.search(text) and any(
        not _is_unicode(string) for string in _strings_in(document)
    ):
        raise AttestationRejected(
            RejectionCode.MALFORMED_JSON, f"{what} contains an unpaired UTF-16 surrogate"
        )
    return document


_NOT_COMPACT: Any = object()
# Python's parser recurses once per nesting level and gives up near the interpreter's limit;
# orjson goes deeper. Fewer brackets than this, strings included, cannot nest that deep.
_COMPACT_MAX_BRACKETS = 512


def _compact_json(data: bytes) -> Any:
    """The document, when ``data`` is exactly orjson's compact serialisation of what it parses
    to; ``_NOT_COMPACT`` otherwise, for the strict parser to decide.

    The fast path for what the registry signs and stores (RFC 8785 envelopes and payloads are
    compact). Equal bytes prove the strict parser would read the same document: a duplicate key
    would be missing from the serialisation, and orjson refuses a byte-order mark, invalid
    UTF-8, lone surrogates, NaN and numbers out of range; any other escape or number spelling
    serialises differently. The serialisation is only compared, never stored nor verified.
    """
    if data.count(b"{") + data.count(b"[") > _COMPACT_MAX_BRACKETS:
        return _NOT_COMPACT
    try:
        document = orjson.loads(data)
        return document if orjson.dumps(document) == data else _NOT_COMPACT
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return _NOT_COMPACT


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in JSON object")
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """``1e999`` parses to infinity, which no canonical JSON encoder or database accepts."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


# One decoder for every parse (json.loads builds a new one per call when given hooks); it keeps
# no state between calls, which is why json.loads itself shares one.
_STRICT_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates,
    parse_constant=_reject_constant,
    parse_float=_finite_float,
)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _strings_in(document: Any) -> Iterator[str]:
    """Every key and string value, iteratively: nesting depth is attacker-controlled."""
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from item.keys()
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _is_unicode(text: str) -> bool:
    """Lone surrogates survive json.loads but not UTF-8 encoding, nor a database column."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _required_str(document: Mapping[str, Any], field: str, what: str) -> str:
    value = document.get(field)
    if not isinstance(value, str):
        raise AttestationRejected(
            RejectionCode.MALFORMED_ENVELOPE, f"{what} field {field!r} must be a string"
        )
    return value


def _payload_type(document: Mapping[str, Any]) -> str:
    """The type is signed with the payload (PAE), so checking it is not redundant."""
    payload_type = _required_str(document, "payloadType", "envelope")
    if payload_type != PAYLOAD_TYPE_IN_TOTO:
        raise AttestationRejected(
            RejectionCode.WRONG_PAYLOAD_TYPE,
            f"payloadType is {_quoted(payload_type)}, expected {PAYLOAD_TYPE_IN_TOTO!r}",
        )
    return payload_type


def _b64decode(text: str, what: str) -> bytes:
    """Padded standard or URL-safe base64 (DSSE allows either), in canonical form only.

    Refusing non-canonical encodings (stray characters, set padding bits) removes one way to
    make byte-different copies of the same signed envelope, which would defeat deduplication
    by envelope digest.

    Text that re-encodes to itself is canonical in one alphabet, which is all the checks below
    ask: that test alone decides the common case, and only a refusal goes through the checks
    one by one to say what is wrong.
    """
    try:
        encoded = text.encode("ascii")
        urlsafe = b"-" in encoded or b"_" in encoded
        standard = encoded.translate(_URLSAFE_TO_STANDARD) if urlsafe else encoded
        data = binascii.a2b_base64(standard, strict_mode=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return _b64decode_or_reject(text, what)
    again = binascii.b2a_base64(data, newline=False)
    if (again.translate(_STANDARD_TO_URLSAFE) if urlsafe else again) != encoded:
        return _b64decode_or_reject(text, what)
    return data


_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_STANDARD_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64decode_or_reject(text: str, what: str) -> bytes:
    """The same acceptance as :func:`_b64decode`, checked step by step for the reason."""
    alphabet = _b64_alphabet(text, what)
    try:
        data = base64.b64decode(text, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AttestationRejected(
            RejectionCode.MALFORMED_BASE64, f"{what} is not valid base64: {exc}"
        ) from exc
    if base64.b64encode(data, altchars=alphabet).decode("ascii") != text:
        raise AttestationRejected(RejectionCode.MALFORMED_BASE64, f"{what} is not canonical base64")
    return data


def _b64_alphabet(text: str, what: str) -> bytes:
    if _STANDARD_B64.fullmatch(text):
        return b"+/"
    if _URLSAFE_B64.fullmatch(text):
        return b"-_"
    raise AttestationRejected(
        RejectionCode.MALFORMED_BASE64,
        f"{what} is not base64: characters outside one alphabet (standard or URL-safe)",
    )


def _signatures(value: Any) -> tuple[EnvelopeSignature, ...]:
    if not isinstance(value, list) or not value:
        raise AttestationRejected(
            RejectionCode.MALFORMED_ENVELOPE, "envelope must have a non-empty 'signatures' list"
        )
    if len(value) > MAX_SIGNATURES:
        raise AttestationRejected(
            RejectionCode.MALFORMED_ENVELOPE,
            f"envelope has {len(value)} signatures, more than {MAX_SIGNATURES}",
        )
    return tuple(_signature(entry, index) for index, entry in enumerate(value))


def _signature(entry: Any, index: int) -> EnvelopeSignature:
    """DSSE: ``sig`` is required, ``keyid`` optional and unset equals empty (null too, as in
    proto3 JSON); other fields are ignored."""
    if not isinstance(entry, dict):
        raise AttestationRejected(
            RejectionCode.MALFORMED_ENVELOPE, f"signature {index} is not a JSON object"
        )
    keyid = entry.get("keyid")
    if keyid is None:
        keyid = ""
    if not isinstance(keyid, str):
        raise AttestationRejected(
            RejectionCode.MALFORMED_ENVELOPE, f"signature {index} keyid must be a string"
        )
    sig = _b64decode(_required_str(entry, "sig", f"signature {index}"), f"signature {index}")
    return EnvelopeSignature(keyid=keyid, sig=sig)


# --------------------------------------------------------------------------
# In-toto Statement v1
# --------------------------------------------------------------------------


def _parse_statement(payload: bytes) -> dict[str, Any]:
    statement = _strict_json(payload, "payload")
    _check_statement(statement)
    return statement  # type: ignore[no-any-return]  # _check_statement proved it is a dict


def _check_statement(statement: Any) -> None:
    """in-toto Statement v1 (spec/v1/statement.md), plus the registry's own requirements:
    every subject carries a sha256 digest and the predicate type is one we understand.

    Unknown extra fields are allowed, as the spec's parsing rules require.
    """
    if not isinstance(statement, Mapping):
        raise _not_a_statement("payload is not a JSON object")
    if statement.get("_type") != STATEMENT_TYPE_V1:
        raise _not_a_statement(
            f"_type is {_quoted(statement.get('_type'))}, expected {STATEMENT_TYPE_V1!r}"
        )
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise _not_a_statement("subject must be a non-empty list")
    for index, subject in enumerate(subjects):
        _check_subject(subject, index)
    predicate_type = statement.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise _not_a_statement("predicateType must be a non-empty string")
    # The spec makes predicate optional ("unset is treated the same as set-but-empty").
    if not isinstance(statement.get("predicate", {}), Mapping):
        raise _not_a_statement("predicate must be a JSON object")
    check_predicate_type(predicate_type)
    check_predicate_shape(predicate_type, statement.get("predicate") or {})


# Where the registry reads a predicate it accepts from pipelines (lineage, gates), the JSON type
# each field must have when present: (path, type). A list path element "*" is each item.
_READ_FIELDS: dict[str, tuple[tuple[tuple[str, ...], type], ...]] = {
    PREDICATE_SLSA_PROVENANCE_V1: (
        (("buildDefinition",), dict),
        (("buildDefinition", "resolvedDependencies"), list),
        (("buildDefinition", "resolvedDependencies", "*"), dict),
        (("buildDefinition", "resolvedDependencies", "*", "digest"), dict),
        (("buildDefinition", "resolvedDependencies", "*", "annotations"), dict),
        (("runDetails",), dict),
        (("runDetails", "builder"), dict),
        (("runDetails", "metadata"), dict),
    ),
    PREDICATE_TEST_RESULT: (
        (("result",), str),
        (("configuration",), list),
        (("metrics",), dict),
    ),
}


def check_predicate_shape(predicate_type: str, predicate: Mapping[str, Any]) -> None:
    """The fields the registry reads from an accepted predicate have the JSON type their
    specification gives (an object, a list, a string) wherever they are present; the rest of
    the predicate is the signer's business. Raises AttestationRejected (malformed_predicate)."""
    for path, expected in _READ_FIELDS.get(predicate_type, ()):
        for where, value in _at(predicate, path):
            if value is None and path[-1] != "*":
                continue  # a field set to null reads as unset
            if not isinstance(value, expected):
                raise _malformed_predicate(
                    f"field {where} must be {_JSON_TYPE_NAMES[expected]}, not {_json_type(value)}"
                )
    if predicate_type == PREDICATE_SLSA_PROVENANCE_V1:
        dependencies = ("buildDefinition", "resolvedDependencies", "*", "digest")
        for where, digest in _at(predicate, dependencies):
            for algorithm, value in (digest or {}).items():
                if not isinstance(value, str):
                    raise _malformed_predicate(f"{where}.{algorithm} must be a string")
                if algorithm in _HEX_DIGEST_ALGORITHMS and not _LOWER_HEX.fullmatch(value):
                    raise _malformed_predicate(f"{where}.{algorithm} must be lowercase hex")
            sha256 = (digest or {}).get("sha256")
            if sha256 is not None and not _SHA256_HEX.fullmatch(sha256):
                raise _malformed_predicate(f"{where}.sha256 must be 64 lowercase hex digits")


def _malformed_predicate(detail: str) -> AttestationRejected:
    return AttestationRejected(RejectionCode.MALFORMED_PREDICATE, f"malformed predicate: {detail}")


_JSON_TYPE_NAMES: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}


def _at(value: Any, path: tuple[str, ...], where: str = "") -> Iterator[tuple[str, Any]]:
    """(location, value) of each value found at ``path`` ("*": every item of a list); paths
    through something of the wrong type find nothing (its own check reports it)."""
    if not path:
        yield where, value
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield from _at(item, rest, f"{where}[{index}]")
    elif isinstance(value, Mapping) and head in value:
        yield from _at(value[head], rest, f"{where}.{head}" if where else head)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return _JSON_TYPE_NAMES.get(type(value), "null")


def _check_subject(subject: Any, index: int) -> None:
    """``name`` is optional in v1 (unset when not meaningful); ``digest`` is required."""
    if not isinstance(subject, Mapping):
        raise _not_a_statement(f"subject {index} is not a JSON object")
    if not isinstance(subject.get("name", ""), str):
        raise _not_a_statement(f"subject {index} name must be a string")
    digest = subject.get("digest")
    if not isinstance(digest, Mapping) or not digest:
        raise _not_a_statement(f"subject {index} digest must be a non-empty object")
    for algorithm, value in digest.items():
        _check_digest_value(algorithm, value, index)
    if not _SHA256_HEX.fullmatch(str(digest.get("sha256", ""))):
        raise _not_a_statement(f"subject {index} needs a sha256 digest of 64 lowercase hex digits")


def _check_digest_value(algorithm: str, value: Any, index: int) -> None:
    if not isinstance(value, str) or not value:
        raise _not_a_statement(f"subject {index} digest {_quoted(algorithm)} must be a string")
    if algorithm in _HEX_DIGEST_ALGORITHMS and not _LOWER_HEX.fullmatch(value):
        raise _not_a_statement(f"subject {index} digest {algorithm} must be lowercase hex")


def _not_a_statement(detail: str) -> AttestationRejected:
    return AttestationRejected(
        RejectionCode.NOT_A_STATEMENT, f"not an in-toto Statement v1: {detail}"
    )


def check_predicate_type(predicate_type: str) -> None:
    """Accept only predicate types whose meaning the registry knows.

    Unknown types are refused rather than stored: lineage and policy are derived from
    predicates, and a statement nobody can interpret is evidence of nothing.
    """
    if predicate_type in _EXACT_PREDICATE_TYPES:
        return
    if any(pattern.fullmatch(predicate_type) for pattern in _VERSIONED_PREDICATE_TYPES):
        return
    raise AttestationRejected(
        RejectionCode.UNKNOWN_PREDICATE_TYPE,
        f"predicate type {_quoted(predicate_type)} is not accepted",
    )


def parse_key_bundle(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedEnvelope | None:
    """A Sigstore bundle signed with a plain key (``model.sig``), as the DSSE envelope inside.

    model_signing's key-signed ``model.sig`` is a Sigstore bundle v0.3 whose verification
    material is a public-key hint, not a certificate: its DSSE envelope is checked against the
    trusted keys like any uploaded envelope. Returns None for a certificate (keyless) bundle.
    ``raw`` and ``envelope_digest`` stay those of the bundle bytes received.
    """
    _reject_if_too_large(raw, max_bytes, "bundle")
    document = _strict_json(raw, "bundle")
    if not isinstance(document, dict):
        raise AttestationRejected(RejectionCode.MALFORMED_BUNDLE, "bundle is not a JSON object")
    material = document.get("verificationMaterial")
    if not isinstance(material, dict) or "publicKey" not in material:
        return None
    envelope = document.get("dsseEnvelope")
    if not isinstance(envelope, dict):
        raise AttestationRejected(
            RejectionCode.MALFORMED_BUNDLE, "a key-signed bundle must hold a dsseEnvelope"
        )
    # Re-encoding the envelope's JSON wrapper is harmless: signatures cover PAE(type, payload),
    # and the payload bytes are decoded from the same base64 text.
    parsed = parse_envelope(json.dumps(envelope).encode(), max_bytes=max_bytes)
    return ParsedEnvelope(
        raw=raw,
        payload_type=parsed.payload_type,
        payload=parsed.payload,
        statement=parsed.statement,
        signatures=parsed.signatures,
        envelope_digest=hashlib.sha256(raw).hexdigest(),
    )


# --------------------------------------------------------------------------
# Verifying DSSE signatures
# --------------------------------------------------------------------------


class TrustedKeys:
    """Trusted public keys checked and loaded once, to verify many envelopes against.

    ``keys`` maps keyid to a securesystemslib public key dict, as :func:`verify_envelope`
    takes; a key that is not a usable public key raises ``ValueError`` here.
    """

    __slots__ = ("loaded",)

    def __init__(self, keys: Mapping[str, Mapping[str, Any]]) -> None:
        self.loaded: Mapping[str, SSlibKey] = {
            keyid: _load_trusted_key(keyid, key) for keyid, key in keys.items()
        }


def verify_envelope(
    parsed: ParsedEnvelope, trusted_keys: Mapping[str, Mapping[str, Any]] | TrustedKeys
) -> list[str]:
    """The trusted key ids whose signatures verify over ``PAE(payloadType, payload)``.

    ``trusted_keys`` maps keyid to a securesystemslib public key dict (or is those keys
    loaded once, :class:`TrustedKeys`, when many envelopes are checked).  A signature naming a
    trusted keyid must verify, or the whole envelope is ``bad_signature``: a forged signature
    under a trusted name is an attack, not noise.  Signatures naming other keyids are ignored;
    signatures with no keyid (DSSE makes it optional) are tried against every trusted key.
    ``untrusted_signer`` if no trusted key vouches for the payload.

    We use securesystemslib's ``Envelope.pae`` and ``SSlibKey.verify_signature`` rather than
    ``Envelope.verify``, which silently skips failing signatures and needs keyids.
    """
    keys = (
        trusted_keys.loaded
        if isinstance(trusted_keys, TrustedKeys)
        else TrustedKeys(trusted_keys).loaded
    )
    pae = Envelope(parsed.payload, parsed.payload_type, {}).pae()
    verified: list[str] = []
    for signature in parsed.signatures:
        for keyid in _verified_keyids(signature, keys, pae):
            if keyid not in verified:
                verified.append(keyid)
    if not verified:
        raise AttestationRejected(
            RejectionCode.UNTRUSTED_SIGNER, "no signature is from a trusted key"
        )
    return verified


def _verified_keyids(
    signature: EnvelopeSignature, keys: Mapping[str, SSlibKey], pae: bytes
) -> list[str]:
    if not signature.keyid:
        return [keyid for keyid, key in keys.items() if _signature_valid(key, signature.sig, pae)]
    key = keys.get(signature.keyid)
    if key is None:
        return []
    if not _signature_valid(key, signature.sig, pae):
        raise AttestationRejected(
            RejectionCode.BAD_SIGNATURE,
            f"signature by trusted key {signature.keyid} does not verify",
        )
    return [signature.keyid]


def _signature_valid(key: SSlibKey, sig: bytes, pae: bytes) -> bool:
    try:
        key.verify_signature(Signature(key.keyid, sig.hex()), pae)
    except UnverifiedSignatureError:  # also covers VerificationError (malformed signatures)
        return False
    return True


# --------------------------------------------------------------------------
# Sigstore bundles
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SigstoreResult:
    """What a verified Sigstore bundle proves: ``identity`` (issued by ``issuer``) signed it.

    ``kind`` is ``message_signature`` (a signature over ``artifact``, whose sha256 is
    ``artifact_digest``) or ``dsse`` (an in-toto statement, with the verbatim payload).
    """

    kind: Literal["message_signature", "dsse"]
    bundle_digest: str
    identity: str
    issuer: str
    artifact_digest: str | None
    payload_type: str | None
    payload: bytes | None
    statement: dict[str, Any] | None


class _IdentityMismatch(SigstoreVerificationError):
    """Marks a policy failure, which sigstore otherwise reports as a plain VerificationError."""


class _IdentityPolicy:
    """sigstore's ``Identity`` policy, re-raising its failures as :class:`_IdentityMismatch`.

    sigstore checks the certificate chain and SCT *before* the policy, so a mismatch here means
    a genuine Fulcio certificate for somebody else, which deserves its own code.
    """

    def __init__(self, *, identity: str, issuer: str) -> None:
        self._policy = Identity(identity=identity, issuer=issuer)

    def verify(self, cert: x509.Certificate) -> None:
        try:
            self._policy.verify(cert)
        except (SigstoreVerificationError, x509.ExtensionNotFound) as exc:
            raise _IdentityMismatch(str(exc)) from exc


def verify_sigstore_bundle(
    bundle_json: bytes,
    *,
    artifact: bytes | None,
    trusted_root_path: Path,
    identity: str,
    issuer: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> SigstoreResult:
    """Verify a keyless Sigstore bundle offline against a pinned trusted root and one signer.

    Offline by construction: the trusted root is read from ``trusted_root_path`` and handed to
    ``Verifier(trusted_root=...)``; nothing goes through TUF (``Verifier.production()`` /
    ``staging()`` would refresh it over the network) and verification itself only reads the
    bundle, whose inclusion proof, checkpoint and timestamps are checked against that root.

    A message-signature bundle needs ``artifact``.  A DSSE bundle yields its in-toto statement,
    checked like an uploaded envelope; if ``artifact`` is given it must be one of the subjects.
    """
    if not identity or not issuer:
        # sigstore's Identity skips the issuer check when issuer is empty: never allow that.
        raise ValueError("a Sigstore signer needs both an identity and an OIDC issuer")
    _reject_if_too_large(bundle_json, max_bytes, "bundle")
    bundle = _load_bundle(bundle_json)
    verifier = Verifier(trusted_root=TrustedRoot.from_file(str(trusted_root_path)))
    policy = _IdentityPolicy(identity=identity, issuer=issuer)
    # sigstore has no public accessor for the bundle's content kind (its own verifier reads
    # the same private field); the fixture tests cover both kinds, so a move fails loudly.
    is_dsse = bundle._inner.dsse_envelope is not None
    if is_dsse:
        payload_type, payload, statement = _verify_dsse_bundle(verifier, bundle, policy, artifact)
    else:
        payload_type, payload, statement = _verify_message_bundle(
            verifier, bundle, policy, artifact
        )
    return SigstoreResult(
        kind="dsse" if is_dsse else "message_signature",
        bundle_digest=hashlib.sha256(bundle_json).hexdigest(),
        identity=identity,
        issuer=issuer,
        artifact_digest=None if artifact is None else hashlib.sha256(artifact).hexdigest(),
        payload_type=payload_type,
        payload=payload,
        statement=statement,
    )


_BundleContent = tuple[str | None, bytes | None, dict[str, Any] | None]
"""payloadType, verbatim payload and statement of a DSSE bundle; all None for a message."""


def _load_bundle(bundle_json: bytes) -> Bundle:
    """``Bundle.from_json`` also decodes the certificate and log entry; DER errors surface as
    ValueError outside sigstore's own wrapping."""
    try:
        return Bundle.from_json(bundle_json)
    except (SigstoreError, ValueError) as exc:
        raise AttestationRejected(
            RejectionCode.MALFORMED_BUNDLE, f"not a usable Sigstore bundle: {_truncated(str(exc))}"
        ) from exc


def _verify_message_bundle(
    verifier: Verifier, bundle: Bundle, policy: _IdentityPolicy, artifact: bytes | None
) -> _BundleContent:
    if artifact is None:
        raise AttestationRejected(
            RejectionCode.MALFORMED_BUNDLE,
            "bundle holds a message signature, which can only be checked against its artifact",
        )
    with _sigstore_failures():
        verifier.verify_artifact(artifact, bundle, policy)
    return None, None, None


def _verify_dsse_bundle(
    verifier: Verifier, bundle: Bundle, policy: _IdentityPolicy, artifact: bytes | None
) -> _BundleContent:
    with _sigstore_failures():
        payload_type, payload = verifier.verify_dsse(bundle, policy)
    if payload_type != PAYLOAD_TYPE_IN_TOTO:
        raise AttestationRejected(
            RejectionCode.WRONG_PAYLOAD_TYPE,
            f"DSSE payloadType is {_quoted(payload_type)}, expected {PAYLOAD_TYPE_IN_TOTO!r}",
        )
    statement = _parse_statement(payload)
    if artifact is not None:
        _require_subject(statement, hashlib.sha256(artifact).hexdigest())
    return payload_type, payload, statement


def _require_subject(statement: Mapping[str, Any], artifact_sha256: str) -> None:
    if not any(
        subject["digest"].get("sha256") == artifact_sha256 for subject in statement["subject"]
    ):
        raise AttestationRejected(
            RejectionCode.SUBJECT_MISMATCH,
            f"artifact sha256 {artifact_sha256} is not a subject of the statement",
        )


@contextmanager
def _sigstore_failures() -> Iterator[None]:
    """Translate sigstore's verification failures into rejections.

    sigstore raises its own ``Error`` family for most failures, but hostile certificates can
    also surface ``ValueError`` or ``ExtensionNotFound`` from cryptography: all of them mean
    "does not verify".  Anything else is a bug and propagates.
    """
    try:
        yield
    except _IdentityMismatch as exc:
        raise AttestationRejected(RejectionCode.IDENTITY_MISMATCH, _truncated(str(exc))) from exc
    except (SigstoreError, ValueError, x509.ExtensionNotFound) as exc:
        raise AttestationRejected(RejectionCode.BAD_SIGNATURE, _truncated(str(exc))) from exc
