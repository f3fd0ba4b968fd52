"""Attestations from pipelines, verified at the door (ARCHITECTURE: trust boundaries).

An uploaded attestation is untrusted until: its signature verifies against a trusted signer
(a registered public key, or a Sigstore identity + issuer checked offline against the pinned
trusted root); that signer may sign its predicate type; the predicate type is known; and every
subject digest is an artifact the registry hashed itself — or, for a signer allowed to, a new
dataset. Accepted envelopes are stored verbatim, deduplicated by digest. Acceptances and
rejections are governance-log events; a rejection stores nothing else.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import DomainError
from provenance import signing_keys
from provenance.attestation_verify import (
    PREDICATE_MODEL_SIGNING,
    PREDICATE_SLSA_PROVENANCE_V1,
    AttestationRejected,
    ParsedEnvelope,
    RejectionCode,
    key_id,
    parse_envelope,
    parse_key_bundle,
    sign_statement,
    verify_envelope,
    verify_sigstore_bundle,
)
from provenance.log_format import Actor, Event
from provenance.models import (
    Artifact,
    ArtifactKind,
    Attestation,
    AttestationFormat,
    AttestationSubject,
    ModelManifest,
    SignerKind,
    SigningKey,
    TrustedSigner,
)
from provenance.predicates import REGISTRY_PREDICATE_TYPES
from provenance.services.keys import signing_key_ensure
from provenance.services.lineage import lineage_derive
from provenance.services.log import log_append

logger = logging.getLogger(__name__)
# Given a subject's name, the digest the registry measured for what it names (None: not ours).
MeasuredDigest = Callable[[str], str | None]


class AttestationRefused(DomainError):
    """An upload the registry will not accept: 400, or 403 when the signer is the problem."""

    def __init__(self, rejected: AttestationRejected) -> None:
        super().__init__(rejected.detail, code=str(rejected.code))
        if rejected.code in {RejectionCode.UNTRUSTED_SIGNER, RejectionCode.PREDICATE_NOT_ALLOWED}:
            self.status = 403  # type: ignore[misc]  # per-instance, like WebhookRefused
        elif rejected.code == RejectionCode.PAYLOAD_TOO_LARGE:
            self.status = 413  # type: ignore[misc]


@dataclass(frozen=True)
class Intake:
    attestation: Attestation
    created: bool


def _reject(code: RejectionCode, detail: str) -> AttestationRejected:
    return AttestationRejected(code, detail)


@transaction.atomic
def trusted_signer_add(
    *,
    name: str,
    predicate_types: Sequence[str],
    actor: Actor,
    public_key: dict[str, Any] | None = None,
    identity: str = "",
    issuer: str = "",
    may_register_datasets: bool = False,
) -> TrustedSigner:
    """Trust a public key or a Sigstore identity for some predicate types (a logged event)."""
    kind = SignerKind.KEY if public_key is not None else SignerKind.SIGSTORE
    signer = TrustedSigner.objects.create(
        name=name,
        kind=kind,
        key_id=key_id(public_key) if public_key is not None else "",
        public_key=public_key,
        identity=identity,
        issuer=issuer,
        predicate_types=list(predicate_types),
        may_register_datasets=may_register_datasets,
        created_at=timezone.now(),
    )
    log_append(
        Event(
            event_type="trusted_signer.added",
            actor=actor,
            object_type="trusted_signer",
            object_id=name,
            after={
                "kind": kind,
                "key_id": signer.key_id,
                "identity": identity,
                "issuer": issuer,
                "predicate_types": list(predicate_types),
                "may_register_datasets": may_register_datasets,
            },
        )
    )
    return signer


def attestation_ingest(
    *, raw: bytes, media_type: str, actor: Actor, measured_digest: MeasuredDigest | None = None
) -> Intake:
    """Verify and store an uploaded DSSE envelope or Sigstore bundle.

    Raises AttestationRefused (nothing stored but the log event saying why). The same bytes
    twice give the existing record.
    """
    try:
        return _ingest(raw, media_type, actor, measured_digest)
    except AttestationRejected as rejected:
        _log_rejection(raw, rejected, actor)
        raise AttestationRefused(rejected) from None


def attestation_refuse_oversize(*, declared_bytes: int, actor: Actor) -> AttestationRefused:
    """An upload declared larger than the limit: refused (and logged) without reading it."""
    rejected = _reject(
        RejectionCode.PAYLOAD_TOO_LARGE,
        f"the upload is {declared_bytes} bytes; the limit is {settings.ATTESTATION_MAX_BYTES}",
    )
    with transaction.atomic():
        log_append(
            Event(
                event_type="attestation.rejected",
                actor=actor,
                object_type="attestation",
                object_id="(unread)",
                after={"code": str(rejected.code), "declared_bytes": declared_bytes},
                reason=rejected.detail,
            )
        )
    return AttestationRefused(rejected)


def _ingest(
    raw: bytes, media_type: str, actor: Actor, measured_digest: MeasuredDigest | None
) -> Intake:
    if len(raw) > settings.ATTESTATION_MAX_BYTES:
        raise _reject(
            RejectionCode.PAYLOAD_TOO_LARGE,
            f"the upload is {len(raw)} bytes; the limit is {settings.ATTESTATION_MAX_BYTES}",
        )
    key_bundle = None
    if media_type.startswith("application/vnd.dev.sigstore.bundle"):
        key_bundle = parse_key_bundle(raw, max_bytes=settings.ATTESTATION_MAX_BYTES)
    if key_bundle is None and media_type.startswith("application/vnd.dev.sigstore.bundle"):
        statement, digest, signer, fmt, envelope = _verified_sigstore(raw)
    else:
        parsed = key_bundle or parse_envelope(raw, max_bytes=settings.ATTESTATION_MAX_BYTES)
        existing = Attestation.objects.filter(envelope_digest=parsed.envelope_digest).first()
        if existing is not None:
            return Intake(attestation=existing, created=False)
        signer = _verified_key_signer(parsed)
        statement, digest, envelope = parsed.statement, parsed.envelope_digest, raw
        fmt = AttestationFormat.MODEL_SIG if key_bundle else AttestationFormat.DSSE
    existing = Attestation.objects.filter(envelope_digest=digest).first()
    if existing is not None:
        return Intake(attestation=existing, created=False)
    predicate_type = str(statement["predicateType"])
    if predicate_type in REGISTRY_PREDICATE_TYPES:
        raise _reject(
            RejectionCode.PREDICATE_NOT_ALLOWED,
            f"{predicate_type!r} attestations are signed by the registry itself, never uploaded",
        )
    if predicate_type not in signer.predicate_types:
        raise _reject(
            RejectionCode.PREDICATE_NOT_ALLOWED,
            f"signer {signer.name!r} may not sign {predicate_type!r} attestations",
        )
    subjects = _subject_artifacts(statement, signer, measured_digest)
    if predicate_type == PREDICATE_MODEL_SIGNING:
        _check_model_signing_resources(statement, subjects)
    try:
        return _store(
            envelope=envelope,
            digest=digest,
            fmt=fmt,
            statement=statement,
            signer=signer,
            subjects=subjects,
            actor=actor,
        )
    except IntegrityError:  # the same bytes arrived concurrently and won the race
        return Intake(attestation=Attestation.objects.get(envelope_digest=digest), created=False)


def _verified_key_signer(parsed: ParsedEnvelope) -> TrustedSigner:
    signers = {s.key_id: s for s in TrustedSigner.objects.filter(kind=SignerKind.KEY, active=True)}
    trusted = {kid: s.public_key for kid, s in signers.items() if s.public_key is not None}
    verified = verify_envelope(parsed, trusted)
    return signers[verified[0]]


def _verified_sigstore(
    raw: bytes,
) -> tuple[dict[str, Any], str, TrustedSigner, AttestationFormat, bytes]:
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
            result = verify_sigstore_bundle(
                raw,
                artifact=None,
                trusted_root_path=Path(root),
                identity=signer.identity,
                issuer=signer.issuer,
                max_bytes=settings.ATTESTATION_MAX_BYTES,
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
        return result.statement, result.bundle_digest, signer, AttestationFormat.SIGSTORE, raw
    raise _reject(
        RejectionCode.IDENTITY_MISMATCH,
        f"signed by no trusted Sigstore identity ({last.detail if last else ''})",
    )


def _subject_artifacts(
    statement: dict[str, Any], signer: TrustedSigner, measured_digest: MeasuredDigest | None
) -> list[tuple[str, Artifact | None, str]]:
    """(digest, known artifact or None, name) for every subject; None = a new dataset."""
    subjects = []
    for subject in statement["subject"]:
        digest = str(subject["digest"]["sha256"])
        name = str(subject.get("name", ""))
        artifact = Artifact.objects.filter(digest=digest).first()
        if artifact is None:
            may_register = (
                signer.may_register_datasets
                and statement["predicateType"] == PREDICATE_SLSA_PROVENANCE_V1
            )
            if not may_register:
                raise _reject(
                    RejectionCode.SUBJECT_UNKNOWN,
                    f"subject {name!r} (sha256:{digest}) matches nothing the registry hashed",
                )
        subjects.append((digest, artifact, name))
    _check_claims(subjects, measured_digest)
    return subjects


def _check_claims(
    subjects: list[tuple[str, Artifact | None, str]], measured_digest: MeasuredDigest | None
) -> None:
    """A subject naming something the registry measured must carry the measured digest."""
    if measured_digest is None:
        return
    for digest, _artifact, name in subjects:
        measured = measured_digest(name)
        if measured is not None and measured != digest:
            raise _reject(
                RejectionCode.SUBJECT_MISMATCH,
                f"subject {name!r} claims sha256:{digest} but the registry measured "
                f"sha256:{measured}",
            )


def _check_model_signing_resources(
    statement: dict[str, Any], subjects: list[tuple[str, Artifact | None, str]]
) -> None:
    """A model_signing statement lists every file: it must be the files the registry measured.

    The root digest covers the file digests but not their names, so names are compared too.
    """
    claimed = sorted(
        (str(r.get("name", "")), str(r.get("digest", "")))
        for r in (statement.get("predicate") or {}).get("resources") or []
        if isinstance(r, dict)
    )
    for digest, artifact, name in subjects:
        manifest = ModelManifest.objects.filter(artifact=artifact).first()
        if manifest is None:
            continue
        measured = sorted((str(f["path"]), str(f["sha256"])) for f in manifest.files)
        if claimed != measured:
            raise _reject(
                RejectionCode.SUBJECT_MISMATCH,
                f"model.sig for {name!r} (sha256:{digest}) lists files that differ from the "
                "files the registry measured",
            )


@transaction.atomic
def _store(
    *,
    envelope: bytes,
    digest: str,
    fmt: AttestationFormat,
    statement: dict[str, Any],
    signer: TrustedSigner | None,
    subjects: list[tuple[str, Artifact | None, str]],
    actor: Actor,
    signing_key: SigningKey | None = None,
) -> Intake:
    now = timezone.now()
    attestation = Attestation.objects.create(
        envelope=envelope,
        envelope_digest=digest,
        format=fmt,
        predicate_type=str(statement["predicateType"]),
        statement=statement,
        signer=signer,
        signing_key=signing_key,
        received_at=now,
        verified_at=now,
    )
    AttestationSubject.objects.bulk_create(
        AttestationSubject(
            attestation=attestation,
            artifact=known
            or Artifact.objects.create(
                digest=subject_digest, kind=ArtifactKind.DATASET, name=name, size=0, created_at=now
            ),
            name=name,
        )
        for subject_digest, known, name in subjects
    )
    edges = lineage_derive(attestation)
    log_append(
        Event(
            event_type="attestation.accepted" if signer else "attestation.issued",
            actor=actor,
            object_type="attestation",
            object_id=digest,
            after={
                "predicate_type": attestation.predicate_type,
                "format": fmt,
                "signer": signer.name if signer else f"registry key {signing_key}",
                "subjects": [f"sha256:{d}" for d, _, _ in subjects],
                "edges": [f"{e.upstream} -{e.relation}-> {e.downstream}" for e in edges],
            },
            evidence=[f"sha256:{digest}"] + [f"sha256:{d}" for d, _, _ in subjects],
        )
    )
    return Intake(attestation=attestation, created=True)


def registry_attestation_issue(*, statement: dict[str, Any], actor: Actor) -> Attestation:
    """Sign ``statement`` with the registry's active key and store it like any attestation.

    Every subject must be an artifact the registry holds. Equal statements give equal bytes
    (canonical JSON, deterministic ECDSA is not assumed: the digest dedups only exact repeats).
    """
    key = signing_key_ensure()
    envelope = sign_statement(statement, signing_keys.load_signer(key.key_id))
    digest = hashlib.sha256(envelope).hexdigest()
    subjects: list[tuple[str, Artifact | None, str]] = []
    for subject in statement["subject"]:
        subject_digest = str(subject["digest"]["sha256"])
        subjects.append(
            (subject_digest, Artifact.objects.get(digest=subject_digest), str(subject["name"]))
        )
    with transaction.atomic():
        return _store(
            envelope=envelope,
            digest=digest,
            fmt=AttestationFormat.DSSE,
            statement=statement,
            signer=None,
            signing_key=key,
            subjects=subjects,
            actor=actor,
        ).attestation


def _log_rejection(raw: bytes, rejected: AttestationRejected, actor: Actor) -> None:
    digest = hashlib.sha256(raw).hexdigest()
    with transaction.atomic():
        log_append(
            Event(
                event_type="attestation.rejected",
                actor=actor,
                object_type="attestation",
                object_id=digest,
                after={"code": str(rejected.code)},
                reason=rejected.detail[:1000],
                evidence=[f"sha256:{digest}"],
            )
        )
    logger.warning("attestation refused: %s (%s)", rejected.code, rejected.detail)
