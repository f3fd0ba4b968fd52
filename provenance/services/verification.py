"""Re-verification: check stored attestations again, from their verbatim bytes.

An attestation verified at the door can stop verifying: its signer may be distrusted since, or
a privileged attacker may have edited the database (the stored statement no longer matching
the signed bytes). Each check starts from the stored bytes and today's trust, and records the
outcome on the row; a change of outcome is a log event.
"""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing
import os
import threading
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DEFERRED, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from provenance.attestation_verify import (
    AttestationRejected,
    ParsedEnvelope,
    TrustedKeys,
    parse_envelope,
    parse_key_bundle,
    verify_envelope,
)
from provenance.attestation_verify.rechecks import STATEMENT_DIFFERS, Recheck, recheck_batch
from provenance.log_format import Actor, Event
from provenance.models import (
    Attestation,
    AttestationFormat,
    SignerKind,
    SigningKey,
    TrustedSigner,
    VerificationStatus,
)
from provenance.services.attestation_checks import sigstore_verified_as
from provenance.services.log import log_append_many

logger = logging.getLogger(__name__)

# Rows per UPDATE ... WHERE id IN (...): well under SQLite's bound on query parameters.
_UPDATE_CHUNK = 900
_READ_CHUNK = 2000
# Attestations checked one step at a time (see _problems).
_BATCH = 100
# Threads verifying the signatures of a pass of more than one batch, the calling thread among
# them (see _Batches).
_THREADS = min(os.cpu_count() or 1, 4)
# Worker processes parsing, verifying and comparing the batches of a long pass (see _Batches);
# below two, threads share the work instead.
_PROCESSES = min(os.cpu_count() or 1, 8)
# The columns of a row, and those a check reads besides its envelope and statement: what the
# report's instances hold, the others deferred.
_FIELDS = [field.attname for field in Attestation._meta.concrete_fields]
_READ_FIELDS = ("id", "envelope_digest", "format", "predicate_type", "signer_id",
                "signing_key_id", "verification_status")  # fmt: skip
_READ_AT = [_FIELDS.index(name) for name in _READ_FIELDS]


@dataclass(frozen=True, slots=True)
class Outcome:
    attestation: Attestation
    ok: bool
    problem: str = ""


@dataclass
class ReverifyReport:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]

    @property
    def ok(self) -> bool:
        return not self.failed


def attestations_reverify(*, attestations: Iterable[Attestation], actor: Actor) -> ReverifyReport:
    """Verify each attestation again; record the outcome; log every change of outcome.

    Thousands of rows make one pass: each signer and registry key is read once (and its public
    key loaded once), each envelope is parsed once, the checks of a long pass run in worker
    processes or threads (see _Batches), and outcomes are written in bulk. Rows read from a
    queryset come back in the report with their envelope and statement deferred.
    """
    report = ReverifyReport()
    trust = _Trust()
    batch: list[_Check] = []
    with _collector_paused(), _Batches(trust, report) as batches:
        for attestation, envelope, statement in _rows(attestations):
            if len(batch) == _BATCH:  # and another row: the pass is more than one batch
                batches.check(batch, more=True)
                batch = []
            batch.append(_Check(attestation, envelope, statement))
        batches.check(batch, more=False)
        _record(report, actor)
    return report


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for a pass, then left as it was found.

    A pass allocates objects per row and keeps some (the report holds every row), so each
    automatic collection walks ever more survivors and finds nothing: rows, parsed envelopes
    and outcomes make no reference cycles. Over 10,000 rows that walking cost a fifth of the
    pass. Anything cyclic a pass leaves behind is collected once the collector runs again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _rows(attestations: Iterable[Attestation]) -> Iterator[tuple[Attestation, bytes, str | None]]:
    """Each attestation with its stored envelope bytes and statement, as JSON text (parsed
    where it is compared: in a worker process, for a long pass).

    A queryset is read in chunks through a server-side cursor where the database has them
    (10,000 envelopes are tens of megabytes), as rows of the columns a check reads: the
    envelope and statement go to the check, not onto the instance the report keeps. Anything
    else (a list, a union) is taken as given.

    A queryset ordered only by the model's default (newest first) is read newest id first:
    ``received_at`` is the time of the insert, so that is in practice the same order, read
    down the primary key rather than by sorting every envelope (spilling to disk, past
    ``work_mem``).
    """
    if not isinstance(attestations, QuerySet) or attestations.query.combinator:
        for attestation in attestations:
            yield attestation, bytes(attestation.envelope), _json_text(attestation.statement)
        return
    if not attestations.query.order_by:
        attestations = attestations.order_by("-pk")
    text = Cast("statement", output_field=TextField())
    columns = attestations.values_list(*_READ_FIELDS, "envelope", text)
    for *read, envelope, statement in columns.iterator(chunk_size=_READ_CHUNK):
        values = [DEFERRED] * len(_FIELDS)  # all of a row, as Model.from_db reads fastest
        for at, value in zip(_READ_AT, read, strict=True):
            values[at] = value
        yield Attestation.from_db(attestations.db, _FIELDS, values), bytes(envelope), statement


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


class _Batches:
    """The checks of one pass, a batch at a time, their outcomes added to the report in row
    order.

    A pass of a single batch is checked on the calling thread alone. A longer pass sends its
    batches to worker processes, one per core (provenance/attestation_verify/rechecks.py: parse,
    verify, compare), while the calling thread reads the next rows; it concludes each batch in
    turn with what today's trust says of its signers. Where there can be no worker processes
    (one core; a daemonic process, as Celery's workers are), or once they have died, worker
    threads verify the signatures of each batch (``cryptography`` releases the GIL while it
    verifies) while the calling thread reads and parses the next one; the calling thread then
    verifies whatever of the previous batch no worker has taken yet, and concludes it. Workers
    of either kind check envelopes against keys loaded beforehand, nothing else: the database,
    and the pass's caches, stay with the calling thread.
    """

    def __init__(self, trust: _Trust, report: ReverifyReport) -> None:
        self._trust = trust
        self._report = report
        self._pool: ThreadPoolExecutor | None = None
        self._verifying: _Verifications | None = None
        self._processes: ProcessPoolExecutor | None = None
        self._sent: deque[tuple[list[_Check], Future[list[str]]]] = deque()
        self._key_sets: dict[tuple[int | None, int | None], int] = {}
        self._asked = False

    def __enter__(self) -> _Batches:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown(wait=True, cancel_futures=True)

    def check(self, batch: list[_Check], *, more: bool) -> None:
        """Check ``batch``; ``more``: another batch follows in this pass."""
        if more and not self._asked:
            self._asked = True  # once a pass, at its second batch
            self._processes = _process_pool()
        if self._processes is not None:
            sent = False
            try:
                self._send(batch)
                sent = True
                while self._sent and (not more or len(self._sent) > 2 * _PROCESSES):
                    self._receive()
                return
            except BrokenProcessPool as broken:
                self._abandon_processes(broken)
                if sent:
                    return
        if self._pool is None and (not more or _THREADS < 2):
            self._conclude(batch, _problems(batch, self._trust))
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(_THREADS - 1, thread_name_prefix="reverify")
        for check in batch:
            check.parse(self._trust)
        previous = self._verifying
        self._verifying = _Verifications(batch, self._pool, workers=_THREADS - 1)
        if previous is not None:
            self._finish(previous)
        if not more:
            self._finish(self._verifying)
            self._verifying = None

    def _send(self, batch: list[_Check]) -> None:
        """Hand a batch to the worker processes: its envelopes, stored statements and the keys
        that may have signed each (a Sigstore bundle is checked here, as it needs the trusted
        root and the signer's identity)."""
        rechecks, key_sets = [], {}
        for check in batch:
            attestation = check.attestation
            if attestation.format == AttestationFormat.SIGSTORE:
                check.parse(self._trust)
                continue
            cache_key = (attestation.signing_key_id, attestation.signer_id)
            number = self._key_sets.setdefault(cache_key, len(self._key_sets))
            if number not in key_sets:
                key_sets[number] = self._trust.public_keys(attestation)
            rechecks.append(
                Recheck(
                    str(attestation.format),
                    check.envelope,
                    attestation.envelope_digest,
                    check.stored_text,
                    number,
                )
            )
        assert self._processes is not None  # noqa: S101  (check() made it)
        future = self._processes.submit(
            recheck_batch, rechecks, key_sets, settings.ATTESTATION_MAX_BYTES
        )
        self._sent.append((batch, future))

    def _receive(self) -> None:
        """Conclude the oldest batch sent, in row order: what the workers found, then what
        today's trust says of its signers."""
        batch, future = self._sent[0]
        found = iter(future.result())
        self._sent.popleft()
        problems = []
        for check in batch:
            if check.attestation.format == AttestationFormat.SIGSTORE:
                problems.append(check.conclusion(self._trust))
                continue
            problem = next(found)
            problems.append(problem or _trusted_today(check.attestation, self._trust))
        self._conclude(batch, problems)

    def _abandon_processes(self, broken: BrokenProcessPool) -> None:
        """The worker processes died (killed, out of memory, or unable to start): check what
        was sent to them here instead, in order, and the rest of the pass on threads."""
        logger.warning("re-verification continues without worker processes: %s", broken)
        assert self._processes is not None  # noqa: S101  (only a pool can break)
        self._processes.shutdown(wait=False, cancel_futures=True)
        self._processes = None
        while self._sent:
            pending, _ = self._sent.popleft()
            self._conclude(pending, _problems(pending, self._trust))

    def _finish(self, verifications: _Verifications) -> None:
        verifications.finish()
        checks = verifications.checks
        self._conclude(checks, [check.conclusion(self._trust) for check in checks])

    def _conclude(self, batch: list[_Check], problems: list[str]) -> None:
        for check, problem in zip(batch, problems, strict=True):
            self._report.outcomes.append(
                Outcome(attestation=check.attestation, ok=not problem, problem=problem)
            )


def _process_pool() -> ProcessPoolExecutor | None:
    """Worker processes for a long pass; None where there cannot be any (one core, or this
    is itself a daemonic worker process, as Celery's are): the pass then uses threads."""
    if _PROCESSES < 2 or multiprocessing.current_process().daemon:
        return None
    # A fork server: workers start from a clean process that imported only the checks, not
    # from a copy of this one (its database connection, its threads' locks).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["provenance.attestation_verify.rechecks"])
    return ProcessPoolExecutor(_PROCESSES, mp_context=context)


class _Verifications:
    """The signature checks of one batch, taken one at a time by whichever thread is free."""

    def __init__(self, checks: list[_Check], pool: ThreadPoolExecutor, *, workers: int) -> None:
        self.checks = checks
        self._next = iter(checks)
        self._lock = threading.Lock()
        self._workers = [pool.submit(self._run) for _ in range(workers)]

    def _run(self) -> None:
        while True:
            with self._lock:
                check = next(self._next, None)
            if check is None:
                return
            check.verify()

    def finish(self) -> None:
        """Verify here what no worker has taken; then wait for the workers, raising what any
        of them raised."""
        self._run()
        for worker in self._workers:
            worker.result()


def attestation_problem(attestation: Attestation) -> str:
    """Why ``attestation`` does not verify today, or "" when it does."""
    check = _Check(attestation, bytes(attestation.envelope), _json_text(attestation.statement))
    return _problems([check], _Trust())[0]


def _problems(checks: list[_Check], trust: _Trust) -> list[str]:
    """Why each attestation does not verify today ("" when it does).

    One step at a time over the whole batch — parse all, verify all, then compare — so each
    loop stays warm in the CPU caches; the signature checks gain the most.
    """
    for check in checks:
        check.parse(trust)
    for check in checks:
        check.verify()
    return [check.conclusion(trust) for check in checks]


class _Check:
    """One attestation's re-verification, step by step, from its stored bytes and statement."""

    __slots__ = ("attestation", "envelope", "keys", "parsed", "problem", "signed", "stored_text")

    def __init__(self, attestation: Attestation, envelope: bytes, stored_text: str | None) -> None:
        self.attestation = attestation
        self.envelope = envelope
        self.stored_text = stored_text  # the statement column, as JSON text
        self.parsed: ParsedEnvelope | None = None
        self.keys: TrustedKeys | None = None  # what may have signed it, loaded with the parse
        self.signed: Any = None  # what the stored bytes sign; None: not this row's bytes
        self.problem = ""

    def parse(self, trust: _Trust) -> None:
        """Strictly parse the stored bytes (a Sigstore bundle is verified whole here), and load
        the keys that may have signed them."""
        attestation, raw = self.attestation, self.envelope
        limit = max(settings.ATTESTATION_MAX_BYTES, len(raw))
        try:
            if attestation.format == AttestationFormat.SIGSTORE:
                self.signed = _sigstore_statement(trust.signer(attestation), raw, limit)
                return
            parsed = (
                parse_key_bundle(raw, max_bytes=limit)
                if attestation.format == AttestationFormat.MODEL_SIG
                else parse_envelope(raw, max_bytes=limit)
            )
        except AttestationRejected as rejected:
            self.problem = f"{rejected.code}: {rejected.detail}"
            return
        if parsed is not None and parsed.envelope_digest == attestation.envelope_digest:
            self.parsed = parsed
            self.keys = trust.keys(attestation)

    def verify(self) -> None:
        """Check the signatures: no database, no cache; safe on a worker thread."""
        if self.parsed is None or self.keys is None:
            return
        try:
            verify_envelope(self.parsed, self.keys)
        except AttestationRejected as rejected:
            self.problem = f"{rejected.code}: {rejected.detail}"
            return
        # The statement parsed from the very payload bytes just verified (no second parse).
        self.signed = self.parsed.statement

    def conclusion(self, trust: _Trust) -> str:
        attestation = self.attestation
        if self.problem:
            return self.problem
        stored = None if self.stored_text is None else json.loads(self.stored_text)
        if self.signed != stored:
            return STATEMENT_DIFFERS
        return _trusted_today(attestation, trust)


def _trusted_today(attestation: Attestation, trust: _Trust) -> str:
    """Why the signer of a verified attestation does not vouch for it today, or ""."""
    signer = trust.signer(attestation)
    if signer is not None:
        if not signer.active:
            return f"signer {signer.name!r} is no longer trusted"
        if attestation.predicate_type not in signer.predicate_types:
            return f"signer {signer.name!r} may no longer sign this predicate type"
    return ""


class _Trust:
    """Today's signers and registry keys, each read from the database once per pass."""

    def __init__(self) -> None:
        self._signers: dict[int, TrustedSigner | None] = {}
        self._keys: dict[int, SigningKey | None] = {}
        self._loaded: dict[tuple[int | None, int | None], TrustedKeys] = {}

    def signer(self, attestation: Attestation) -> TrustedSigner | None:
        """The attestation's signer as the database holds it now."""
        if attestation.signer_id is None:
            return None
        if attestation.signer_id not in self._signers:
            self._signers[attestation.signer_id] = TrustedSigner.objects.filter(
                pk=attestation.signer_id
            ).first()
        return self._signers[attestation.signer_id]

    def signing_key(self, attestation: Attestation) -> SigningKey | None:
        if attestation.signing_key_id is None:
            return None
        if attestation.signing_key_id not in self._keys:
            self._keys[attestation.signing_key_id] = SigningKey.objects.filter(
                pk=attestation.signing_key_id
            ).first()
        return self._keys[attestation.signing_key_id]

    def keys(self, attestation: Attestation) -> TrustedKeys:
        """The public keys that may have signed ``attestation``: its registry key, or its
        signer's key while that signer is a key signer; loaded once per pass."""
        cache_key = (attestation.signing_key_id, attestation.signer_id)
        if cache_key not in self._loaded:
            self._loaded[cache_key] = TrustedKeys(self.public_keys(attestation))
        return self._loaded[cache_key]

    def public_keys(self, attestation: Attestation) -> Mapping[str, Mapping[str, Any]]:
        key = self.signing_key(attestation)
        if key is not None:
            return {key.key_id: key.public_key}
        signer = self.signer(attestation)
        if signer is None or signer.kind != SignerKind.KEY or signer.public_key is None:
            return {}
        return {signer.key_id: signer.public_key}


def _sigstore_statement(signer: TrustedSigner | None, raw: bytes, limit: int) -> Any:
    root = settings.SIGSTORE_TRUSTED_ROOT
    if signer is None or not root:
        return None
    return sigstore_verified_as(signer, raw, root=root, max_bytes=limit).statement


_VERIFIED, _FAILED = str(VerificationStatus.VERIFIED), str(VerificationStatus.FAILED)


@transaction.atomic
def _record(report: ReverifyReport, actor: Actor) -> None:
    """One UPDATE per outcome (status and problem) and chunk of rows; a log event for each
    attestation whose status changed."""
    now = timezone.now()
    events = []
    rows_by_outcome: dict[tuple[str, str], list[int]] = defaultdict(list)
    for outcome in report.outcomes:
        attestation = outcome.attestation
        status = _VERIFIED if outcome.ok else _FAILED
        changed = attestation.verification_status != status
        rows_by_outcome[(status, outcome.problem)].append(attestation.pk)
        attestation.verification_status, attestation.verified_at = status, now
        attestation.verification_problem = outcome.problem
        if changed:
            events.append(
                Event(
                    event_type=f"attestation.verification_{'restored' if outcome.ok else 'failed'}",
                    actor=actor,
                    object_type="attestation",
                    object_id=attestation.envelope_digest,
                    after={"status": status, "predicate_type": attestation.predicate_type},
                    reason=outcome.problem[:1000],
                    evidence=[f"sha256:{attestation.envelope_digest}"],
                )
            )
    _outcomes_write(rows_by_outcome, now)
    if events:
        log_append_many(events)


_OUTCOME_UPDATE_SQL = """
UPDATE provenance_attestation
   SET verification_status = %s, verified_at = %s, verification_problem = %s
 WHERE id = ANY(%s)
"""


def _outcomes_write(rows_by_outcome: Mapping[tuple[str, str], list[int]], now: datetime) -> None:
    """One UPDATE per outcome. On PostgreSQL the ids go as one array parameter: composing a
    statement with thousands of placeholders cost more than running it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for (recorded, problem), pks in rows_by_outcome.items():
                cursor.execute(_OUTCOME_UPDATE_SQL, [recorded, now, problem, pks])
        return
    for (recorded, problem), pks in rows_by_outcome.items():
        for start in range(0, len(pks), _UPDATE_CHUNK):
            Attestation.objects.filter(pk__in=pks[start : start + _UPDATE_CHUNK]).update(
                verification_status=recorded, verified_at=now, verification_problem=problem
            )
