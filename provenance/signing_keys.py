"""The registry's own attestation signing keys, kept apart from the log key.

A key is a PEM file: ``ATTESTATION_SIGNING_KEY_FILE`` when set (production: a file mounted from
a secret store), otherwise generated on first start under ``VAR_DIR/keys/attestation/`` with mode
0600, one file per key, named by key id. Only public halves reach the database (``SigningKey``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from django.conf import settings
from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]  # no __all__

from provenance.attestation_verify import (
    generate_signing_key,
    key_id,
    public_pem,
    signer_from_pem,
)


def key_directory() -> Path:
    return Path(settings.VAR_DIR) / "keys" / "attestation"


def write_private_key(private_pem: bytes, public_key: dict[str, Any]) -> Path:
    """Store a new private key, readable by the service user only; returns its path."""
    directory = key_directory()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{key_id(public_key)}.pem"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    return path


def new_key(scheme: str) -> tuple[str, dict[str, Any], str]:
    """Generate and store a key pair; returns key id, public key dict and public PEM."""
    private_pem, public_key = generate_signing_key(scheme)
    write_private_key(private_pem, public_key)
    return key_id(public_key), public_key, public_pem(public_key).decode()


def configured_key() -> tuple[str, dict[str, Any], str] | None:
    """The key in ATTESTATION_SIGNING_KEY_FILE, if one is configured."""
    path = settings.ATTESTATION_SIGNING_KEY_FILE
    if not path:
        return None
    signer = signer_from_pem(Path(path).read_bytes())
    public_key = signer.public_key.to_dict()
    return key_id(public_key), public_key, public_pem(public_key).decode()


def _private_pem(signing_key_id: str) -> bytes:
    configured = settings.ATTESTATION_SIGNING_KEY_FILE
    if configured:
        pem = Path(configured).read_bytes()
        if key_id(signer_from_pem(pem).public_key.to_dict()) == signing_key_id:
            return pem
    path = key_directory() / f"{signing_key_id}.pem"
    if not path.exists():
        raise FileNotFoundError(f"the private key of signing key {signing_key_id} is not in {path}")
    return path.read_bytes()


def load_signer(signing_key_id: str) -> CryptoSigner:
    """The private half of a registered key, from wherever it is kept."""
    return signer_from_pem(_private_pem(signing_key_id))


def sign_deterministic(signing_key_id: str, message: bytes) -> bytes:
    """Sign ``message`` so that the same message always gives the same signature: Ed25519 is
    deterministic by design, ECDSA here uses RFC 6979 nonces (DER, what verifiers expect).

    Evidence bundles use it: rebuilding a bundle from the same facts gives identical bytes.
    """
    private_key = serialization.load_pem_private_key(_private_pem(signing_key_id), password=None)
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(message)
    raise TypeError(f"signing key {signing_key_id} has no deterministic scheme")
