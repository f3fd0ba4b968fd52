"""Offline verification of keyless Sigstore bundles against a pinned trusted root."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError as SigstoreVerificationError
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity

from provenance.attestation_verify.constants import DEFAULT_MAX_BYTES, PAYLOAD_TYPE_IN_TOTO
from provenance.attestation_verify.envelopes import _parse_statement
from provenance.attestation_verify.errors import (
    AttestationRejected,
    RejectionCode,
    _quoted,
    _reject_if_too_large,
    _truncated,
)


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
