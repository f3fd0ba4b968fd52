"""Why an upload is refused: rejection codes, :class:`AttestationRejected` and bounded quoting."""

from __future__ import annotations

from enum import StrEnum

from provenance.attestation_verify.constants import _DETAIL_MESSAGE_CHARS, _DETAIL_VALUE_CHARS


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
