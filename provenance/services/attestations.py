"""Attestations from pipelines, verified at the door (ARCHITECTURE: trust boundaries).

An uploaded attestation is untrusted until: its signature verifies against a trusted signer
(a registered public key, or a Sigstore identity + issuer checked offline against the pinned
trusted root); that signer may sign its predicate type; the predicate type is known; and every
subject digest is an artifact the registry hashed itself — or, for a signer allowed to, a new
dataset. Accepted envelopes are stored verbatim, deduplicated by digest. Acceptances and
rejections are governance-log events; a rejection stores nothing else.

This module takes one upload; bundles are ``attestation_bundles``', the reads and checks an
upload relies on ``attestation_reads``' and ``attestation_checks``'.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from config.errors import DomainError
from provenance.attestation_verify import (
    PREDICATE_MODEL_SIGNING,
    PREDICATE_SLSA_PROVENANCE_V1,
    REGISTRY_PREDICATE_PREFIX,
    AttestationRejected,
    ParsedEnvelope,
    RejectionCode,
    TrustedKeys,
    parse_envelope,
    parse_key_bundle,
    verify_envelope,
)
from provenance.log_format import Actor, Event
from provenance.models import (
    Artifact,
    ArtifactKind,
    Attestation,
    AttestationFormat,
    AttestationSubject,
    LineageEdge,
    SignerKind,
    SigningKey,
    TrustedSigner,
    named_version,
)
from provenance.services.attestation_checks import (
    _check_claims,
    _check_model_signing_resources,
    _reject,
    _verified_sigstore,
)
from provenance.services.attestation_insert import _insert_one_postgres
from provenance.services.attestation_reads import (
    Intake,
    MeasuredDigests,
    _existing,
    _Reads,
    _sha256,
)
from provenance.services.lineage import (
    dataset_artifacts_ensure,
    lineage_derive_many,
    lineage_digests,
)
from provenance.services.log import log_append, log_append_many

logger = logging.getLogger(__name__)
SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX = "application/vnd.dev.sigstore.bundle"  # v0.1 to v0.3
# Run in the transaction storing accepted attestations: for each, the events of what else it
# changed (the registry links MLflow datasets), logged with its acceptance.
OnAccepted = Callable[[Sequence[Attestation]], list[list[Event]]]


class AttestationRefused(DomainError):
    """An upload the registry will not accept: 400, or 403 when the signer is the problem."""

    def __init__(self, rejected: AttestationRejected) -> None:
        super().__init__(rejected.detail, code=str(rejected.code))
        if rejected.code in {RejectionCode.UNTRUSTED_SIGNER, RejectionCode.PREDICATE_NOT_ALLOWED}:
            self.status = 403  # type: ignore[misc]  # per-instance, like WebhookRefused
        elif rejected.code == RejectionCode.PAYLOAD_TOO_LARGE:
            self.status = 413  # type: ignore[misc]


def attestation_ingest(
    *,
    raw: bytes,
    media_type: str,
    actor: Actor,
    measured_digests: MeasuredDigests | None = None,
    on_accepted: OnAccepted | None = None,
) -> Intake:
    """Verify and store an uploaded DSSE envelope or Sigstore bundle.

    Raises AttestationRefused (nothing stored but the log event saying why). The same bytes
    twice give the existing record. ``on_accepted`` runs in the transaction that stores the
    attestation; the events it returns are logged with the acceptance.
    """
    try:
        return _ingest(raw, media_type, actor, measured_digests, on_accepted)
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
    raw: bytes,
    media_type: str,
    actor: Actor,
    measured_digests: MeasuredDigests | None,
    on_accepted: OnAccepted | None,
) -> Intake:
    _check_size(raw)
    checked = _checked(raw, media_type, _Signers(), _Reads(measured_digests, held_last=True))
    if isinstance(checked, Intake):
        return checked
    try:
        with transaction.atomic():
            intake, events = _store(checked, actor=actor, on_accepted=on_accepted)
            log_append_many(events)
    except IntegrityError:  # the same bytes arrived concurrently and won the race
        existing = _existing(checked.digest)
        if existing is None:
            raise
        return existing
    return intake


def _check_size(raw: bytes) -> None:
    if len(raw) > settings.ATTESTATION_MAX_BYTES:
        raise _reject(
            RejectionCode.PAYLOAD_TOO_LARGE,
            f"the upload is {len(raw)} bytes; the limit is {settings.ATTESTATION_MAX_BYTES}",
        )


@dataclass(frozen=True)
class _Admitted:
    """An upload that passed every check: what storing it writes."""

    envelope: bytes
    digest: str
    fmt: AttestationFormat
    statement: dict[str, Any]
    signer: TrustedSigner | None  # None: the registry's own, signed with its key
    subjects: list[tuple[str, Artifact | None, str]]
    # The artifacts lineage will want (dependencies), as read while checking; None: unknown
    lineage_artifacts: Mapping[str, Artifact | None] = field(default_factory=dict)


def _checked(raw: bytes, media_type: str, signers: _Signers, reads: _Reads) -> Intake | _Admitted:
    """The existing record of ``raw``, or ``raw`` admitted; raises AttestationRejected."""
    key_bundle = None
    # Media types are case-insensitive (RFC 9110), and parameters say nothing here.
    if media_type.partition(";")[0].strip().lower().startswith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX):
        key_bundle = parse_key_bundle(raw, max_bytes=settings.ATTESTATION_MAX_BYTES)
        if key_bundle is None:
            return _checked_sigstore(raw, reads)
    parsed = key_bundle or parse_envelope(raw, max_bytes=settings.ATTESTATION_MAX_BYTES)
    return _checked_envelope(parsed, signers, reads, model_sig=key_bundle is not None)


def _checked_sigstore(raw: bytes, reads: _Reads) -> Intake | _Admitted:
    """The record of a Sigstore bundle already held, or the bundle admitted (as for an
    envelope: _checked_envelope)."""

    def admitted() -> _Admitted:
        statement, digest, signer = _verified_sigstore(raw)
        return _admitted(
            envelope=raw,
            digest=digest,
            fmt=AttestationFormat.SIGSTORE,
            statement=statement,
            signer=signer,
            reads=reads,
        )

    return _held_or_admitted(hashlib.sha256(raw).hexdigest(), reads, admitted)


def _checked_envelope(
    parsed: ParsedEnvelope, signers: _Signers, reads: _Reads, *, model_sig: bool = False
) -> Intake | _Admitted:
    """The record of an envelope already held, or the envelope admitted (_held_or_admitted)."""

    def admitted() -> _Admitted:
        return _admitted(
            envelope=parsed.raw,
            digest=parsed.envelope_digest,
            fmt=AttestationFormat.MODEL_SIG if model_sig else AttestationFormat.DSSE,
            statement=parsed.statement,
            signer=signers.verified(parsed),
            reads=reads,
        )

    return _held_or_admitted(parsed.envelope_digest, reads, admitted)


def _held_or_admitted(
    digest: str, reads: _Reads, admitted: Callable[[], _Admitted]
) -> Intake | _Admitted:
    """The record of the upload of ``digest`` already held, or the upload ``admitted``.

    A bundle looks its envelopes up first (one query for all of them). A single upload is
    looked up only if a check refuses it: the upload held is then answered as before, whatever
    has changed since (its signer deactivated, say), and a new one — the common case — costs
    no lookup; one that passes every check while held is found when storing it hits the unique
    digest (``_ingest``). Either way the outcome is the one a lookup first would give.
    """
    if not reads.held_last:
        existing = reads.existing(digest)
        if existing is not None:
            return existing
    try:
        return admitted()
    except AttestationRejected:
        existing = reads.existing(digest) if reads.held_last else None
        if existing is not None:
            return existing
        raise


def _admitted(
    *,
    envelope: bytes,
    digest: str,
    fmt: AttestationFormat,
    statement: dict[str, Any],
    signer: TrustedSigner,
    reads: _Reads,
) -> _Admitted:
    """The upload admitted, once its signer may sign its predicate type and its subjects are
    artifacts the registry hashed (or a new dataset from a signer allowed to register it)."""
    predicate_type = str(statement["predicateType"])
    if predicate_type.startswith(REGISTRY_PREDICATE_PREFIX):
        raise _reject(
            RejectionCode.PREDICATE_NOT_ALLOWED,
            f"{predicate_type!r} is in the registry's own namespace: such attestations are "
            "signed by the registry itself, never uploaded",
        )
    if predicate_type not in signer.predicate_types:
        raise _reject(
            RejectionCode.PREDICATE_NOT_ALLOWED,
            f"signer {signer.name!r} may not sign {predicate_type!r} attestations",
        )
    subjects = _subject_artifacts(statement, signer, reads)
    if predicate_type == PREDICATE_MODEL_SIGNING:
        _check_model_signing_resources(statement, subjects)
    lineage_artifacts = reads.read(lineage_digests(statement))
    return _Admitted(envelope, digest, fmt, statement, signer, subjects, lineage_artifacts)


class _Signers:
    """The trusted key signers, read and their keys loaded once per request or bundle."""

    def __init__(self) -> None:
        self._by_key_id: dict[str, TrustedSigner] | None = None
        self._keys = TrustedKeys({})

    def verified(self, parsed: ParsedEnvelope) -> TrustedSigner:
        """The signer whose key signed ``parsed``; raises AttestationRejected."""
        if self._by_key_id is None:
            signers = TrustedSigner.objects.filter(kind=SignerKind.KEY, active=True)
            self._by_key_id = {signer.key_id: signer for signer in signers}
            self._keys = TrustedKeys(
                {k: s.public_key for k, s in self._by_key_id.items() if s.public_key is not None}
            )
        return self._by_key_id[verify_envelope(parsed, self._keys)[0]]


def _subject_artifacts(
    statement: dict[str, Any], signer: TrustedSigner, reads: _Reads
) -> list[tuple[str, Artifact | None, str]]:
    """(digest, known artifact or None, name) for every subject; None = a new dataset."""
    known = reads.artifacts(
        [_sha256(subject) for subject in statement["subject"]], also=lineage_digests(statement)
    )
    subjects = []
    models_named: dict[str, set[str]] = defaultdict(set)
    for subject in statement["subject"]:
        digest = _sha256(subject)
        name = str(subject.get("name", ""))
        artifact = known[digest]
        named = named_version(name)
        if named is not None and artifact is not None and artifact.kind == ArtifactKind.MODEL:
            models_named[digest].add(named[0])
            if len(models_named[digest]) > 1:
                raise _reject(
                    RejectionCode.SUBJECT_MISMATCH,
                    f"subject sha256:{digest} is named as versions of two models "
                    f"({', '.join(repr(m) for m in sorted(models_named[digest]))}): "
                    "attest each model's version on its own",
                )
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
    _check_claims(subjects, reads.measured([name for _, _, name in subjects]))
    return subjects


def _store(
    admitted: _Admitted,
    *,
    actor: Actor,
    on_accepted: OnAccepted | None = None,
    signing_key: SigningKey | None = None,
) -> tuple[Intake, list[Event]]:
    """Write an admitted attestation, its subjects and its lineage, in the caller's
    transaction; returns it and the events to log with it (the caller appends them)."""
    return _store_many([admitted], actor=actor, on_accepted=on_accepted, signing_key=signing_key)[0]


def _store_many(
    admitted: Sequence[_Admitted],
    *,
    actor: Actor,
    on_accepted: OnAccepted | None = None,
    signing_key: SigningKey | None = None,
) -> list[tuple[Intake, list[Event]]]:
    """``_store`` for many distinct attestations at once: each table written in one INSERT
    (one attestation on PostgreSQL: it and its subjects in one statement)."""
    now = timezone.now()
    attestations = [
        Attestation(
            envelope=one.envelope,
            envelope_digest=one.digest,
            format=one.fmt,
            predicate_type=str(one.statement["predicateType"]),
            statement=one.statement,
            signer=one.signer,
            signing_key=signing_key,
            received_at=now,
            verified_at=now,
        )
        for one in admitted
    ]
    artifacts = _subject_artifacts_ensure([s for one in admitted for s in one.subjects])
    subjects = [
        [  # one row per artifact, named as its first subject names it
            AttestationSubject(
                artifact=artifacts[digest], name=name, named_model=_named_model(one, digest)
            )
            for digest, name in {d: n for d, _, n in reversed(one.subjects)}.items()
        ]
        for one in admitted
    ]
    if len(attestations) == 1 and connection.vendor == "postgresql":
        _insert_one_postgres(attestations[0], subjects[0])
    else:
        Attestation.objects.bulk_create(attestations)
        for attestation, rows in zip(attestations, subjects, strict=True):
            for row in rows:
                row.attestation = attestation
        AttestationSubject.objects.bulk_create([row for rows in subjects for row in rows])
    read: dict[str, Artifact | None] = {}
    for one in admitted:
        read |= one.lineage_artifacts
    edges = lineage_derive_many(attestations, artifacts=read | artifacts)
    extra = on_accepted(attestations) if on_accepted else [[] for _ in attestations]
    return [
        (
            Intake(attestation=attestation, created=True, subjects=tuple(rows)),
            [_accepted_event(attestation, one, its_edges, actor), *its_extra],
        )
        for attestation, one, rows, its_edges, its_extra in zip(
            attestations, admitted, subjects, edges, extra, strict=True
        )
    ]


def _named_model(admitted: _Admitted, digest: str) -> str:
    """The registered model whose version the subjects of ``digest``, a model's files, are
    named as, or "" (_subject_artifacts refused a digest named as versions of two models). A
    dataset's name (``transactions/2026``) names no model."""
    for subject_digest, artifact, name in admitted.subjects:
        if subject_digest != digest or artifact is None or artifact.kind != ArtifactKind.MODEL:
            continue
        named = named_version(name)
        if named is not None:
            return named[0]
    return ""


def _accepted_event(
    attestation: Attestation, admitted: _Admitted, edges: list[LineageEdge], actor: Actor
) -> Event:
    digests = [digest for digest, _, _ in admitted.subjects]
    signer, signing_key = attestation.signer, attestation.signing_key
    return Event(
        event_type="attestation.accepted" if signer else "attestation.issued",
        actor=actor,
        object_type="attestation",
        object_id=admitted.digest,
        after={
            "predicate_type": attestation.predicate_type,
            "format": admitted.fmt,
            "signer": signer.name if signer else f"registry key {signing_key}",
            "subjects": [f"sha256:{d}" for d in digests],
            "edges": [f"{e.upstream} -{e.relation}-> {e.downstream}" for e in edges],
        },
        evidence=[f"sha256:{admitted.digest}"] + [f"sha256:{d}" for d in digests],
    )


def _subject_artifacts_ensure(
    subjects: list[tuple[str, Artifact | None, str]],
) -> dict[str, Artifact]:
    """Every subject's artifact by digest; the new datasets registered (a dataset registered
    meanwhile, by a concurrent upload or another line of a bundle, is taken as it is)."""
    known = {digest: artifact for digest, artifact, _ in subjects if artifact is not None}
    new = {digest: name for digest, artifact, name in reversed(subjects) if artifact is None}
    return known | dataset_artifacts_ensure(new)


def _rejection_event(raw: bytes, rejected: AttestationRejected, actor: Actor) -> Event:
    digest = hashlib.sha256(raw).hexdigest()
    return Event(
        event_type="attestation.rejected",
        actor=actor,
        object_type="attestation",
        object_id=digest,
        after={"code": str(rejected.code)},
        reason=rejected.detail[:1000],
        evidence=[f"sha256:{digest}"],
    )


def _log_rejection(raw: bytes, rejected: AttestationRejected, actor: Actor) -> None:
    with transaction.atomic():
        log_append(_rejection_event(raw, rejected, actor))
    logger.warning("attestation refused: %s (%s)", rejected.code, rejected.detail)
