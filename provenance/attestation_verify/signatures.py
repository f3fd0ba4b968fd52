"""Verification of DSSE signatures against the trusted keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import UnverifiedSignatureError

# securesystemslib.signer is the documented import path but has no __all__, so mypy's strict
# no-implicit-reexport flags every name; the names and their types still resolve.
from securesystemslib.signer import Signature, SSlibKey  # type: ignore[attr-defined]

from provenance.attestation_verify.envelopes import EnvelopeSignature, ParsedEnvelope
from provenance.attestation_verify.errors import AttestationRejected, RejectionCode
from provenance.attestation_verify.keys import _load_trusted_key


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
