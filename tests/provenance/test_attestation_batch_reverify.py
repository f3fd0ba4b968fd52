"""Re-verification in bulk records, row by row, what checking each attestation alone finds."""

from __future__ import annotations

import gc
import hashlib
import io
import json
import multiprocessing
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from securesystemslib.dsse import Envelope

from provenance import predicates
from provenance.attestation_verify import (
    PAYLOAD_TYPE_IN_TOTO,
    PREDICATE_TEST_RESULT,
    generate_signing_key,
    sign_statement,
    signer_from_pem,
    verify_envelope,
)
from provenance.log_format import Actor
from provenance.models import (
    Artifact,
    ArtifactKind,
    Attestation,
    LogEntry,
    TrustedSigner,
    VerificationStatus,
)
from provenance.services import (
    attestation_ingest,
    registry_attestation_issue,
    trusted_signer_add,
)
from provenance.services import verification as reverification
from provenance.services.verification import attestation_problem, attestations_reverify

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("test")
MODEL = "ab" * 32
PROBLEMS = {
    "untouched": "",
    "distrusted": "signer 'distrusted' is no longer trusted",
    "statement edited": "the stored statement differs from the signed bytes",
    "envelope edited": "the stored statement differs from the signed bytes",
    "signature edited": "bad_signature",
    "not JSON any more": "malformed_json",
    "registry's own": "",
}


@pytest.fixture(autouse=True)
def _keys_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


def _signer(name: str) -> Any:
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name=name, public_key=public_key, predicate_types=[PREDICATE_TEST_RESULT], actor=ACTOR
    )
    return signer_from_pem(private_pem)


def _evaluation(signer: Any, label: str) -> Attestation:
    statement = predicates.statement(
        subjects=[("fraud/1", MODEL)],
        predicate_type=PREDICATE_TEST_RESULT,
        predicate={"result": "PASSED", "configuration": [{"name": label}]},
    )
    raw = sign_statement(statement, signer)
    return attestation_ingest(raw=raw, media_type="application/json", actor=ACTOR).attestation


def _edited(attestation: Attestation, **changes: Any) -> None:
    Attestation.objects.filter(pk=attestation.pk).update(**changes)


@pytest.fixture
def rows() -> dict[str, Attestation]:
    """One attestation per way of failing (and two that still verify)."""
    Artifact.objects.create(
        digest=MODEL, kind=ArtifactKind.MODEL, name="fraud/1", size=1, created_at=timezone.now()
    )
    pipeline, distrusted = _signer("pipeline"), _signer("distrusted")
    made = {
        label: _evaluation(distrusted if label == "distrusted" else pipeline, label)
        for label in PROBLEMS
        if label != "registry's own"
    }
    TrustedSigner.objects.filter(name="distrusted").update(active=False)
    edited = made["statement edited"]
    _edited(edited, statement={**edited.statement, "predicate": {"result": "FAILED"}})
    envelope = json.loads(bytes(made["envelope edited"].envelope))
    _edited(made["envelope edited"], envelope=json.dumps(envelope, indent=1).encode())
    envelope = json.loads(bytes(made["signature edited"].envelope))
    other = json.loads(bytes(made["untouched"].envelope))
    envelope["signatures"] = other["signatures"]
    forged = json.dumps(envelope, separators=(",", ":")).encode()
    _edited(made["signature edited"], envelope=forged, envelope_digest=_sha256(forged))
    broken = b"{" + bytes(made["not JSON any more"].envelope)
    _edited(made["not JSON any more"], envelope=broken, envelope_digest=_sha256(broken))
    made["registry's own"] = _observation()
    return {label: Attestation.objects.get(pk=a.pk) for label, a in made.items()}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _observation() -> Attestation:
    statement = predicates.observation_statement(
        observer="test",
        observed_at=timezone.now(),
        model_digest=MODEL,
        model_version={"name": "fraud", "version": 1, "aliases": []},
        run=None,
        tracking_uri="",
    )
    return registry_attestation_issue(statement=statement, actor=ACTOR)


def _summary(problem: str) -> str:
    """A problem, without the details a parser or library words its own way."""
    code, _, _ = problem.partition(":")
    return code if problem.startswith(("bad_", "malformed")) else problem


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several batches of the pass, and several chunks of the read, over a few rows."""
    monkeypatch.setattr(reverification, "_BATCH", 2)
    monkeypatch.setattr(reverification, "_READ_CHUNK", 3)


def test_a_pass_over_a_queryset_finds_what_each_check_alone_finds(
    rows: dict[str, Attestation], small_batches: None
) -> None:
    alone = {label: attestation_problem(row) for label, row in rows.items()}

    report = attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)

    by_pk = {outcome.attestation.pk: outcome for outcome in report.outcomes}
    assert len(by_pk) == len(rows)
    for label, row in rows.items():
        assert by_pk[row.pk].problem == alone[label], label
        assert by_pk[row.pk].ok is (alone[label] == "")
        assert _summary(alone[label]) == PROBLEMS[label], label


def test_a_pass_over_instances_and_one_over_a_queryset_agree(
    rows: dict[str, Attestation], small_batches: None
) -> None:
    listed = attestations_reverify(attestations=list(rows.values()), actor=ACTOR)
    queried = attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)

    def problems(report: Any) -> dict[int, str]:
        return {o.attestation.pk: o.problem for o in report.outcomes}

    assert problems(listed) == problems(queried)


def test_each_row_records_its_own_outcome_and_each_change_is_logged_once(
    rows: dict[str, Attestation], small_batches: None
) -> None:
    before = timezone.now()

    report = attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)

    for outcome in report.outcomes:
        stored = Attestation.objects.get(pk=outcome.attestation.pk)
        expected = VerificationStatus.VERIFIED if outcome.ok else VerificationStatus.FAILED
        assert stored.verification_status == expected
        assert stored.verification_problem == outcome.problem
        assert stored.verified_at is not None
        assert stored.verified_at >= before
    failed = LogEntry.objects.filter(event_type="attestation.verification_failed")
    assert sorted(e.object_id for e in failed) == sorted(
        o.attestation.envelope_digest for o in report.failed
    )
    attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)
    assert failed.count() == len(report.failed)  # no change, no new event


def test_rows_read_from_a_queryset_leave_their_bytes_to_be_read_on_demand(
    rows: dict[str, Attestation],
) -> None:
    report = attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)

    attestation = report.outcomes[0].attestation
    assert {"envelope", "statement"} <= attestation.get_deferred_fields()
    assert bytes(attestation.envelope) == bytes(Attestation.objects.get(pk=attestation.pk).envelope)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_is_left_as_it_was(
    rows: dict[str, Attestation], enabled: bool
) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_numbers_past_64_bits_and_long_decimals_reverify(rows: dict[str, Attestation]) -> None:
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="numbers", public_key=public_key, predicate_types=[PREDICATE_TEST_RESULT], actor=ACTOR
    )
    statement = predicates.statement(
        subjects=[("fraud/1", MODEL)],
        predicate_type=PREDICATE_TEST_RESULT,
        predicate={"result": "PASSED", "runs": 2**70, "auc": 0.1 + 0.2, "n": -(2**64)},
    )
    envelope = Envelope(json.dumps(statement).encode(), PAYLOAD_TYPE_IN_TOTO, {})
    envelope.sign(signer_from_pem(private_pem))
    raw = json.dumps(envelope.to_dict()).encode()
    stored = attestation_ingest(raw=raw, media_type="application/json", actor=ACTOR).attestation

    report = attestations_reverify(
        attestations=Attestation.objects.filter(pk=stored.pk), actor=ACTOR
    )

    assert report.ok, report.failed
    edited = {**statement, "predicate": {**statement["predicate"], "runs": 2**70 + 1}}
    Attestation.objects.filter(pk=stored.pk).update(statement=edited)
    report = attestations_reverify(
        attestations=Attestation.objects.filter(pk=stored.pk), actor=ACTOR
    )
    assert report.failed[0].problem == "the stored statement differs from the signed bytes"


# --------------------------------------------------------------------------
# Signature checks on worker threads, in a pass of more than one batch
# --------------------------------------------------------------------------


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> list[ThreadPoolExecutor]:
    """The pools passes start, on any machine: two threads verify, the calling one and one more."""
    started: list[ThreadPoolExecutor] = []

    class Recorded(ThreadPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(reverification, "ThreadPoolExecutor", Recorded)
    monkeypatch.setattr(reverification, "_THREADS", 2)
    monkeypatch.setattr(reverification, "_PROCESSES", 1)  # threads, not worker processes
    return started


def _signed_by_an_untrusted_key(attestation: Attestation) -> None:
    """``attestation``'s statement stored as signed by a key the registry has never trusted."""
    private_pem, _public_key = generate_signing_key()
    raw = sign_statement(attestation.statement, signer_from_pem(private_pem))
    _edited(attestation, envelope=raw, envelope_digest=_sha256(raw))


def _worker_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("reverify")]


def test_worker_threads_find_what_one_thread_finds_in_the_same_order(
    rows: dict[str, Attestation],
    small_batches: None,
    pools: list[ThreadPoolExecutor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _signed_by_an_untrusted_key(_evaluation(_signer("replaced"), "untrusted"))
    for n in range(3):
        _evaluation(_signer(f"valid {n}"), f"valid {n}")
    assert Attestation.objects.count() > 3 * reverification._BATCH

    def outcomes() -> list[tuple[int, bool, str]]:
        report = attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)
        return [(o.attestation.pk, o.ok, o.problem) for o in report.outcomes]

    monkeypatch.setattr(reverification, "_THREADS", 1)
    alone = outcomes()
    assert pools == []
    monkeypatch.setattr(reverification, "_THREADS", 2)
    threaded = outcomes()

    assert len(pools) == 1
    assert threaded == alone
    problems = {_summary(problem).partition(":")[0] for _pk, _ok, problem in threaded}
    assert set(PROBLEMS.values()) | {"untrusted_signer"} <= problems
    assert _worker_threads() == []  # the pool ended with the pass


def test_an_exception_on_a_worker_thread_reaches_the_caller(
    rows: dict[str, Attestation],
    small_batches: None,
    pools: list[ThreadPoolExecutor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raised, waited = threading.Event(), threading.Event()

    def failing_on_workers(*args: Any) -> Any:
        if threading.current_thread().name.startswith("reverify"):
            raised.set()
            raise RuntimeError("a worker failed")
        if not waited.is_set():  # the calling thread leaves the first signature to a worker
            waited.set()
            raised.wait(timeout=10)
        return verify_envelope(*args)

    monkeypatch.setattr(reverification, "verify_envelope", failing_on_workers)
    events = LogEntry.objects.count()

    with pytest.raises(RuntimeError, match="a worker failed"):
        attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)

    assert raised.is_set()
    assert LogEntry.objects.count() == events  # nothing recorded
    assert _worker_threads() == []


def test_a_pass_of_one_batch_starts_no_threads(
    rows: dict[str, Attestation],
    pools: list[ThreadPoolExecutor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attestation_problem(rows["untouched"])
    attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)
    monkeypatch.setattr(reverification, "_BATCH", len(rows))
    attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)
    assert pools == []

    monkeypatch.setattr(reverification, "_BATCH", len(rows) - 1)
    attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)
    assert len(pools) == 1


# --------------------------------------------------------------------------
# Worker processes, in a pass of more than one batch where there are cores for them
# --------------------------------------------------------------------------


def test_worker_processes_find_what_one_thread_finds_in_the_same_order(
    rows: dict[str, Attestation], small_batches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _signed_by_an_untrusted_key(_evaluation(_signer("replaced"), "untrusted"))
    for n in range(3):
        _evaluation(_signer(f"valid {n}"), f"valid {n}")
    assert Attestation.objects.count() > 3 * reverification._BATCH
    started: list[Any] = []
    real_pool = reverification._process_pool

    def recorded() -> Any:
        pool = real_pool()
        started.append(pool)
        return pool

    monkeypatch.setattr(reverification, "_process_pool", recorded)

    def outcomes() -> list[tuple[int, bool, str]]:
        report = attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)
        return [(o.attestation.pk, o.ok, o.problem) for o in report.outcomes]

    monkeypatch.setattr(reverification, "_THREADS", 1)
    monkeypatch.setattr(reverification, "_PROCESSES", 1)
    alone = outcomes()
    monkeypatch.setattr(reverification, "_PROCESSES", 2)
    in_processes = outcomes()

    assert [type(pool).__name__ for pool in started] == ["NoneType", "ProcessPoolExecutor"]
    assert in_processes == alone
    problems = {_summary(problem).partition(":")[0] for _pk, _ok, problem in in_processes}
    assert set(PROBLEMS.values()) | {"untrusted_signer"} <= problems


def test_a_daemonic_process_uses_threads_not_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Celery's prefork workers are daemonic: they may not start processes of their own."""
    monkeypatch.setattr(reverification, "_PROCESSES", 2)
    monkeypatch.setattr(multiprocessing, "current_process", lambda: SimpleNamespace(daemon=True))

    assert reverification._process_pool() is None


# --------------------------------------------------------------------------
# manage.py reverify_attestations
# --------------------------------------------------------------------------


def _command(*args: str) -> tuple[str, str | None]:
    out = io.StringIO()
    try:
        call_command("reverify_attestations", *args, stdout=out)
    except CommandError as refused:
        return out.getvalue(), str(refused)
    return out.getvalue(), None


def test_the_command_lists_what_does_not_verify_and_fails(rows: dict[str, Attestation]) -> None:
    out, error = _command()

    failing = [label for label, problem in PROBLEMS.items() if problem]
    assert error == f"{len(failing)} of {len(rows)} attestations do NOT verify"
    for label in failing:
        assert f"FAIL sha256:{rows[label].envelope_digest} " in out
    assert rows["untouched"].envelope_digest not in out
    assert Attestation.objects.get(pk=rows["distrusted"].pk).verification_status == "failed"


def test_the_command_narrows_to_a_signer_or_a_predicate_type(
    rows: dict[str, Attestation],
) -> None:
    untouched = rows["untouched"].verified_at
    assert _command("--signer", "registry") == ("OK: 1 attestations verify\n", None)
    out, error = _command("--signer", "distrusted")
    assert error == "1 of 1 attestations do NOT verify"
    assert "is no longer trusted" in out
    assert _command("--predicate-type", "https://example.org/none")[0] == (
        "OK: 0 attestations verify\n"
    )
    # Nothing outside the narrowing was checked (or rewritten).
    assert Attestation.objects.get(pk=rows["untouched"].pk).verified_at == untouched


class _BrokenPool:
    """Worker processes that die: at once (``at_submit``) or with work in hand."""

    def __init__(self, *, at_submit: bool, after: int = 0) -> None:
        self.at_submit, self.after, self.submitted = at_submit, after, 0

    def submit(self, work: Any, *args: Any) -> Future[list[str]]:
        self.submitted += 1
        if self.at_submit and self.submitted > self.after:
            raise BrokenProcessPool("a worker process died")
        future: Future[list[str]] = Future()
        if self.submitted > self.after:
            future.set_exception(BrokenProcessPool("a worker process died"))
        else:
            future.set_result(work(*args))
        return future

    def shutdown(self, **kwargs: Any) -> None:
        pass


@pytest.mark.usefixtures("rows", "small_batches")
@pytest.mark.parametrize(
    ("at_submit", "after"), [(True, 0), (True, 2), (False, 0), (False, 1)], ids=str
)
def test_when_the_worker_processes_die_the_pass_finishes_without_them(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    at_submit: bool,
    after: int,
) -> None:
    def outcomes() -> list[tuple[int, bool, str]]:
        report = attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)
        return [(o.attestation.pk, o.ok, o.problem) for o in report.outcomes]

    monkeypatch.setattr(reverification, "_PROCESSES", 1)
    alone = outcomes()
    monkeypatch.setattr(reverification, "_PROCESSES", 2)
    broken = _BrokenPool(at_submit=at_submit, after=after)
    monkeypatch.setattr(reverification, "_process_pool", lambda: broken)

    assert outcomes() == alone
    # Given up at the first failure seen: a refused submission is seen at once; a death with
    # work in hand when the first batch sent is collected, after the others went out.
    assert broken.submitted == (after + 1 if at_submit else 4)
    assert "continues without worker processes" in caplog.text


def test_the_command_refuses_a_signer_it_has_never_trusted(rows: dict[str, Attestation]) -> None:
    checked = {a.pk: a.verified_at for a in Attestation.objects.all()}

    out, error = _command("--signer", "pipelin")

    assert error == "no trusted signer 'pipelin'"
    assert out == ""
    assert {a.pk: a.verified_at for a in Attestation.objects.all()} == checked  # none checked
