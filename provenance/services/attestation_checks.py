"""Checks of an uploaded attestation besides its key signature: a Sigstore bundle against the
trusted identities, subjects against the digests the registry measured, a model_signing
statement against the files the registry measured."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings

from provenance.attestation_verify import (
    AttestationRejected,
    RejectionCode,
    SigstoreResult,
    verify_sigstore_bundle,
)
from provenance.models import Artifact, ModelManifest, SignerKind, TrustedSigner


def _reject(code: RejectionCode, detail: str) -> AttestationRejected:
    return AttestationRejected(code, detail)


def sigstore_verified_as(
    signer: TrustedSigner, raw: bytes, *, root: str, max_bytes: int
) -> SigstoreResult:
    """``raw``, a Sigstore bundle, verified offline against the trusted root at ``root`` as
    signed by ``signer``'s identity and issuer; raises AttestationRejected."""
    return verify_sigstore_bundle(
        raw,
        artifact=None,
        trusted_root_path=Path(root),
        identity=signer.identity,
        issuer=signer.issuer,
        max_bytes=max_bytes,
    )


def _verified_sigstore(raw: bytes) -> tuple[dict[str, Any], str, TrustedSigner]:
    root = settings.SIGSTORE_TRUSTED_ROOT
    if not root:
        raise _reject(
            RejectionCode.SIGSTORE_NOT_CONFIGURED,
            "SIGSTORE_TRUSTED_ROOT is not set: this registry does not accept Sigstore bundles",
        )
    signers = list(TrustedSigner.objects.filter(kind=SignerKind.SIGSTORE, active=True))
    if not signers:
        raise _reject(RejectionCode.UNTRUSTED_SIGNER, "no Sigstore identity is trusted")
    last: AttestationRejected | None = None
    for signer in signers:
        try:
            result = sigstore_verified_as(
                signer, raw, root=root, max_bytes=settings.ATTESTATION_MAX_BYTES
            )
        except AttestationRejected as rejected:
            if rejected.code != RejectionCode.IDENTITY_MISMATCH:
                raise
            last = rejected
            continue
        if result.statement is None:
            raise _reject(
                RejectionCode.NOT_A_STATEMENT,
                "the bundle signs a message, not an in-toto statement",
            )
        return result.statement, result.bundle_digest, signer
    raise _reject(
        RejectionCode.IDENTITY_MISMATCH,
        f"signed by no trusted Sigstore identity ({last.detail if last else ''})",
    )


def _check_claims(
    subjects: list[tuple[str, Artifact | None, str]], measured: Mapping[str, str]
) -> None:
    """A subject naming something the registry measured must carry the measured digest.

    The refusal does not say what was measured: the uploader, and every reader of the log
    where the refusal is recorded, may have no right to see that version."""
    for digest, _artifact, name in subjects:
        if name in measured and measured[name] != digest:
            raise _reject(
                RejectionCode.SUBJECT_MISMATCH,
                f"subject {name!r} claims sha256:{digest}, which is not the digest the "
                "registry measured for that version",
            )


def _check_model_signing_resources(
    statement: dict[str, Any], subjects: list[tuple[str, Artifact | None, str]]
) -> None:
    """A model_signing statement lists every file of a model the registry hashed: they must be
    the files the registry measured (one query for every subject's manifest).

    The root digest covers the file digests but not their names, so names are compared too.
    The statement's shape was checked at the door: ``resources`` is a list of objects whose
    ``name`` and ``digest`` are strings.
    """
    claimed = sorted(
        (str(r.get("name", "")), str(r.get("digest", "")))
        for r in (statement.get("predicate") or {}).get("resources") or []
    )
    artifacts = [artifact.pk for _, artifact, _ in subjects if artifact is not None]
    manifests = {m.artifact_id: m for m in ModelManifest.objects.filter(artifact__in=artifacts)}
    for digest, artifact, name in subjects:
        manifest = manifests.get(artifact.pk) if artifact is not None else None
        if manifest is None:
            raise _reject(
                RejectionCode.SUBJECT_MISMATCH,
                f"model.sig subject {name!r} (sha256:{digest}) is not a model the registry "
                "hashed: it has no files to compare",
            )
        measured = sorted((str(f["path"]), str(f["sha256"])) for f in manifest.files)
        if claimed != measured:
            raise _reject(
                RejectionCode.SUBJECT_MISMATCH,
                f"model.sig for {name!r} (sha256:{digest}) lists files that differ from the "
                "files the registry measured",
            )
