"""Attestations from pipelines, verified at the door (ARCHITECTURE: trust boundaries).

An uploaded attestation is untrusted until: its signature verifies against a trusted signer
(a registered public key, or a Sigstore identity + issuer checked offline against the pinned
trusted root); that signer may sign its predicate type; the predicate type is known; and every
subject digest is an artifact the registry hashed itself — or, for a signer allowed to, a new
dataset. Accepted envelopes are stored verbatim, deduplicated by digest. Acceptances and
rejections are governance-log events; a rejection stores nothing else.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Prefetch
from django.utils import timezone

from config.errors import DomainError
from provenance import signing_keys
from provenance.attestation_verify import (
    PREDICATE_MODEL_SIGNING,
    PREDICATE_SLSA_PROVENANCE_V1,
    AttestationRejected,
    ParsedEnvelope,
    RejectionCode,
    TrustedKeys,
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
    Attestation,
    AttestationFormat,
    AttestationSubject,
    LineageEdge,
    ModelManifest,
    SignerKind,
    SigningKey,
    TrustedSigner,
)
from provenance.predicates import REGISTRY_PREDICATE_TYPES
from provenance.services.keys import signing_key_ensure
from provenance.services.lineage import (
    dataset_artifacts_ensure,
    lineage_derive_many,
    lineage_digests,
)
from provenance.services.log import log_append, log_append_many

logger = logging.getLogger(__name__)
# Given a subject's name, the digest the registry measured for what it names (None: not ours).
MeasuredDigest = Callable[[str], str | None]
# The same for many names at once (a bundle's): those it measured something for.
MeasuredDigests = Callable[[Collection[str]], Mapping[str, str]]
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


@dataclass(frozen=True)
class Intake:
    """An accepted upload's record; ``created`` is False when the registry already held it."""

    attestation: Attestation
    created: bool
    subjects: tuple[AttestationSubject, ...]  # with their artifacts


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
    *,
    raw: bytes,
    media_type: str,
    actor: Actor,
    measured_digest: MeasuredDigest | None = None,
    on_accepted: OnAccepted | None = None,
) -> Intake:
    """Verify and store an uploaded DSSE envelope or Sigstore bundle.

    Raises AttestationRefused (nothing stored but the log event saying why). The same bytes
    twice give the existing record. ``on_accepted`` runs in the transaction that stores the
    attestation; the events it returns are logged with the acceptance.
    """
    try:
        return _ingest(raw, media_type, actor, measured_digest, on_accepted)
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
    measured_digest: MeasuredDigest | None,
    on_accepted: OnAccepted | None,
) -> Intake:
    _check_size(raw)
    checked = _checked(raw, media_type, _Signers(), _Reads(measured_digest, held_last=True))
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
    if media_type.startswith("application/vnd.dev.sigstore.bundle"):
        key_bundle = parse_key_bundle(raw, max_bytes=settings.ATTESTATION_MAX_BYTES)
        if key_bundle is None:
            statement, digest, signer = _verified_sigstore(raw)
            existing = reads.existing(digest)
            if existing is not None:
                return existing
            return _admitted(
                envelope=raw,
                digest=digest,
                fmt=AttestationFormat.SIGSTORE,
                statement=statement,
                signer=signer,
                reads=reads,
            )
    parsed = key_bundle or parse_envelope(raw, max_bytes=settings.ATTESTATION_MAX_BYTES)
    return _checked_envelope(parsed, signers, reads, model_sig=key_bundle is not None)


def _checked_envelope(
    parsed: ParsedEnvelope, signers: _Signers, reads: _Reads, *, model_sig: bool = False
) -> Intake | _Admitted:
    """The record of an envelope already held, or the envelope admitted.

    A bundle looks its envelopes up first (one query for all of them). A single upload is
    looked up only if a check refuses it: the envelope held is then answered as before, and a
    new one — the common case — costs no lookup; one that passes every check while held is
    found when storing it hits the unique digest (``_ingest``). Either way the outcome is the
    one a lookup first would give.
    """
    if not reads.held_last:
        existing = reads.existing(parsed.envelope_digest)
        if existing is not None:
            return existing
    try:
        signer = signers.verified(parsed)
        return _admitted(
            envelope=parsed.raw,
            digest=parsed.envelope_digest,
            fmt=AttestationFormat.MODEL_SIG if model_sig else AttestationFormat.DSSE,
            statement=parsed.statement,
            signer=signer,
            reads=reads,
        )
    except AttestationRejected:
        existing = reads.existing(parsed.envelope_digest) if reads.held_last else None
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


class _Reads:
    """What checking uploads reads besides signers: the records of envelopes already held, the
    artifacts subjects name, the digests the registry measured. A bundle reads each for all
    its envelopes at once, against the registry as it stood when the bundle arrived."""

    def __init__(
        self,
        measured_digest: MeasuredDigest | None,
        measured_digests: MeasuredDigests | None = None,
        *,
        held_last: bool = False,
    ) -> None:
        self.measured_digest = measured_digest
        self.held_last = held_last  # see _checked_envelope
        self._measured_digests = measured_digests
        self._existing: dict[str, Intake] | None = None
        self._artifacts: dict[str, Artifact | None] = {}

    def prefetch(self, parsed: Sequence[ParsedEnvelope]) -> None:
        self._existing = _held_records({p.envelope_digest for p in parsed})
        subjects = [subject for p in parsed for subject in p.statement["subject"]]
        self.artifacts(
            [_sha256(subject) for subject in subjects]
            + [digest for p in parsed for digest in lineage_digests(p.statement)]
        )
        if self._measured_digests is not None:
            measured = self._measured_digests({str(s.get("name", "")) for s in subjects})
            self.measured_digest = measured.get

    def existing(self, digest: str) -> Intake | None:
        if self._existing is None:
            return _existing(digest)
        return self._existing.get(digest)

    def artifacts(
        self, digests: Sequence[str], *, also: Sequence[str] = ()
    ) -> dict[str, Artifact | None]:
        """The artifacts of ``digests`` (None: unknown), read with those of ``also`` (what
        deriving lineage will want) in the same query."""
        unread = sorted({*digests, *also} - self._artifacts.keys())
        if unread:
            found = Artifact.objects.in_bulk(unread, field_name="digest")
            self._artifacts |= {digest: found.get(digest) for digest in unread}
        return {digest: self._artifacts[digest] for digest in digests}

    def read(self, digests: Collection[str]) -> dict[str, Artifact | None]:
        """What was read of ``digests`` (artifact or None), leaving out those never read."""
        return {digest: self._artifacts[digest] for digest in digests if digest in self._artifacts}


def _sha256(subject: dict[str, Any]) -> str:
    return str(subject["digest"]["sha256"])


def _existing(digest: str) -> Intake | None:
    """The record of an envelope already held, with its signer and subjects."""
    return _held_records({digest}).get(digest)


def _held_records(digests: set[str]) -> dict[str, Intake]:
    held = (
        Attestation.objects.filter(envelope_digest__in=digests)
        .select_related("signer")
        .prefetch_related(
            Prefetch("subjects", queryset=AttestationSubject.objects.select_related("artifact"))
        )
    )
    return {
        attestation.envelope_digest: Intake(
            attestation=attestation, created=False, subjects=tuple(attestation.subjects.all())
        )
        for attestation in held
    }


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
        return result.statement, result.bundle_digest, signer
    raise _reject(
        RejectionCode.IDENTITY_MISMATCH,
        f"signed by no trusted Sigstore identity ({last.detail if last else ''})",
    )


def _subject_artifacts(
    statement: dict[str, Any], signer: TrustedSigner, reads: _Reads
) -> list[tuple[str, Artifact | None, str]]:
    """(digest, known artifact or None, name) for every subject; None = a new dataset."""
    known = reads.artifacts(
        [_sha256(subject) for subject in statement["subject"]], also=lineage_digests(statement)
    )
    subjects = []
    for subject in statement["subject"]:
        digest = _sha256(subject)
        name = str(subject.get("name", ""))
        artifact = known[digest]
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
    _check_claims(subjects, reads.measured_digest)
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
            AttestationSubject(artifact=artifacts[digest], name=name)
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


@functools.cache
def _insert_one_sql() -> str:
    """An attestation and its subjects in one statement: the columns are the model's."""
    fields = _attestation_fields()
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    attestation_table = connection.ops.quote_name(Attestation._meta.db_table)
    subject_table = connection.ops.quote_name(AttestationSubject._meta.db_table)
    return f"""
WITH attestation AS (
    INSERT INTO {attestation_table} ({columns})
    VALUES ({", ".join(["%s"] * len(fields))})
        ON CONFLICT (envelope_digest) DO NOTHING
 RETURNING id
), subjects AS (
    INSERT INTO {subject_table} (attestation_id, artifact_id, name)
    SELECT attestation.id, s.artifact_id, s.name
      FROM attestation, unnest(%s::bigint[], %s::varchar[]) AS s (artifact_id, name)
 RETURNING id, artifact_id
)
SELECT attestation.id, subjects.id, subjects.artifact_id FROM attestation, subjects
"""  # noqa: S608  (identifiers come from the model, values are parameters)


def _attestation_fields() -> list[Any]:
    return [f for f in Attestation._meta.concrete_fields if not f.primary_key]


def _insert_one_postgres(attestation: Attestation, subjects: list[AttestationSubject]) -> None:
    """PostgreSQL: insert ``attestation`` and its ``subjects`` (one per artifact) in one round
    trip, the values prepared by the model's fields as ``bulk_create`` prepares them; sets
    their primary keys. A digest already held raises IntegrityError, as ``bulk_create`` does
    (without an error in the server's log: the INSERT does nothing and returns no row)."""
    values = [
        model_field.get_db_prep_save(model_field.pre_save(attestation, True), connection)
        for model_field in _attestation_fields()
    ]
    params = [
        *values,
        [subject.artifact_id for subject in subjects],
        [subject.name for subject in subjects],
    ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_one_sql(), params)
        rows = cursor.fetchall()
    if not rows and subjects:
        raise IntegrityError(f"the attestation sha256:{attestation.envelope_digest} is held")
    if len(rows) != len(subjects):
        raise RuntimeError("the attestation insert stored an unexpected number of subjects")
    attestation.pk = rows[0][0]
    subject_ids = {artifact_id: subject_id for _, subject_id, artifact_id in rows}
    for instance in (attestation, *subjects):
        instance._state.adding, instance._state.db = False, connection.alias
    for subject in subjects:
        subject.attestation = attestation
        subject.pk = subject_ids[subject.artifact_id]


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


def registry_attestation_issue(*, statement: dict[str, Any], actor: Actor) -> Attestation:
    """Sign ``statement`` with the registry's active key and store it like any attestation.

    Every subject must be an artifact the registry holds. Equal statements give equal bytes
    (canonical JSON, deterministic ECDSA is not assumed: the digest dedups only exact repeats).
    """
    key = signing_key_ensure()
    envelope = sign_statement(statement, signing_keys.load_signer(key.key_id))
    subjects: list[tuple[str, Artifact | None, str]] = [
        (_sha256(subject), Artifact.objects.get(digest=_sha256(subject)), str(subject["name"]))
        for subject in statement["subject"]
    ]
    admitted = _Admitted(
        envelope=envelope,
        digest=hashlib.sha256(envelope).hexdigest(),
        fmt=AttestationFormat.DSSE,
        statement=statement,
        signer=None,
        subjects=subjects,
    )
    with transaction.atomic():
        intake, events = _store(admitted, actor=actor, signing_key=key)
        log_append_many(events)
    return intake.attestation


# --------------------------------------------------------------------------
# Bundles: many envelopes in one upload (in-toto's JSON Lines bundle)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleLine:
    """One envelope of a bundle, by its 1-based line number in the upload: its record (stored
    now, or already held) or why it was refused."""

    line: int
    outcome: Intake | AttestationRefused


def attestation_bundle_ingest(
    *,
    raw: bytes,
    actor: Actor,
    measured_digests: MeasuredDigests | None = None,
    on_accepted: OnAccepted | None = None,
) -> list[BundleLine]:
    """Verify and store each DSSE envelope of an in-toto bundle (one per line, JSON Lines).

    Each line is judged on its own, against the registry as it stood when the bundle arrived
    (so no line's outcome depends on another's, nor on their order) and with the single-upload
    rules: a refused line stores nothing but its ``attestation.rejected`` event, an envelope
    already held gives its record. Accepted lines are stored one savepoint each, and the whole
    bundle commits at once: every line of the answer is durable, or (on a server error) none.
    Raises AttestationRefused, storing nothing but the event, for a bundle over
    ATTESTATION_MAX_BYTES or ATTESTATION_BUNDLE_MAX_LINES, or holding no envelope.
    """
    try:
        lines = _bundle_lines(raw)
    except AttestationRejected as rejected:
        _log_rejection(raw, rejected, actor)
        raise AttestationRefused(rejected) from None
    signers, reads = _Signers(), _Reads(None, measured_digests)
    checked = _bundle_checked(lines, signers, reads)
    with transaction.atomic():
        results, events = _bundle_store(lines, checked, actor, on_accepted)
        log_append_many(events)
    for result in results:
        if isinstance(result.outcome, AttestationRefused):
            logger.warning(
                "attestation refused: %s (%s)", result.outcome.code, result.outcome.detail
            )
    return results


def _bundle_lines(raw: bytes) -> list[tuple[int, bytes]]:
    """(line number, envelope bytes) of each non-blank line; a CRLF ending is not part of it."""
    _check_size(raw)
    lines = [
        (number, line.removesuffix(b"\r"))
        for number, line in enumerate(raw.split(b"\n"), start=1)
        if line.strip()
    ]
    if len(lines) > settings.ATTESTATION_BUNDLE_MAX_LINES:
        raise _reject(
            RejectionCode.PAYLOAD_TOO_LARGE,
            f"the bundle holds {len(lines)} envelopes; the limit is "
            f"{settings.ATTESTATION_BUNDLE_MAX_LINES}",
        )
    if not lines:
        raise _reject(RejectionCode.MALFORMED_ENVELOPE, "the bundle holds no envelope")
    return lines


def _bundle_checked(
    lines: list[tuple[int, bytes]], signers: _Signers, reads: _Reads
) -> list[Intake | _Admitted | AttestationRejected]:
    """Every line checked, before anything is written: parsed, then read in bulk, then
    verified one by one."""
    parsed = [_line_parsed(envelope) for _number, envelope in lines]
    reads.prefetch([envelope for envelope in parsed if isinstance(envelope, ParsedEnvelope)])
    return [_line_checked(envelope, signers, reads) for envelope in parsed]


def _line_parsed(envelope: bytes) -> ParsedEnvelope | AttestationRejected:
    try:
        return parse_envelope(envelope, max_bytes=settings.ATTESTATION_MAX_BYTES)
    except AttestationRejected as rejected:
        return rejected


def _line_checked(
    parsed: ParsedEnvelope | AttestationRejected, signers: _Signers, reads: _Reads
) -> Intake | _Admitted | AttestationRejected:
    if isinstance(parsed, AttestationRejected):
        return parsed
    try:
        return _checked_envelope(parsed, signers, reads)
    except AttestationRejected as rejected:
        return rejected


def _bundle_store(
    lines: list[tuple[int, bytes]],
    checked: list[Intake | _Admitted | AttestationRejected],
    actor: Actor,
    on_accepted: OnAccepted | None,
) -> tuple[list[BundleLine], list[Event]]:
    """Store the admitted lines; each line's outcome, and the events to log in line order."""
    admitted: dict[str, _Admitted] = {}
    for outcome in checked:
        if isinstance(outcome, _Admitted):
            admitted.setdefault(outcome.digest, outcome)  # the same envelope twice: once
    written = _bundle_write(list(admitted.values()), actor, on_accepted)
    results: list[BundleLine] = []
    events: list[Event] = []
    for (number, envelope), outcome in zip(lines, checked, strict=True):
        if isinstance(outcome, AttestationRejected):
            events.append(_rejection_event(envelope, outcome, actor))
            results.append(BundleLine(number, AttestationRefused(outcome)))
        elif isinstance(outcome, Intake):
            results.append(BundleLine(number, outcome))
        elif outcome is admitted[outcome.digest]:
            intake, line_events = written[outcome.digest]
            events += line_events
            results.append(BundleLine(number, intake))
        else:
            results.append(BundleLine(number, _held(written[outcome.digest][0])))
    return results, events


def _bundle_write(
    admitted: list[_Admitted], actor: Actor, on_accepted: OnAccepted | None
) -> dict[str, tuple[Intake, list[Event]]]:
    """All admitted lines written together; should a concurrent upload have stored one of them
    meanwhile, the lot is undone and written one line at a time."""
    if not admitted:
        return {}
    try:
        with transaction.atomic():  # a savepoint to fall back from
            written = _store_many(admitted, actor=actor, on_accepted=on_accepted)
    except IntegrityError:
        written = [_line_store(one, actor, on_accepted) for one in admitted]
    return {one.digest: outcome for one, outcome in zip(admitted, written, strict=True)}


def _line_store(
    admitted: _Admitted, actor: Actor, on_accepted: OnAccepted | None
) -> tuple[Intake, list[Event]]:
    try:
        with transaction.atomic():  # a savepoint: a line that fails takes nothing with it
            return _store(admitted, actor=actor, on_accepted=on_accepted)
    except IntegrityError:  # the same bytes arrived concurrently and won the race
        existing = _existing(admitted.digest)
        if existing is None:
            raise
        return existing, []


def _held(intake: Intake) -> Intake:
    return Intake(attestation=intake.attestation, created=False, subjects=intake.subjects)


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
