"""Attestations: re-verifying 10,000 stored DSSE envelopes; ingest through the API.

Targets (issue 4): re-verification (``attestations_reverify``: read from the database, strict
parse, signature check, stored statement against the signed payload, outcome recorded) at most
2x a bare ``cryptography`` ECDSA P-256 verify loop over the same signatures, with PAE computed by
hand; ingest through ``POST /api/v1/attestations`` on PostgreSQL (one envelope per POST), at
least 300 attestations/s — measured two ways, each labelled: one client posting distinct signed
envelopes one after another through Django's test client (no HTTP server, no concurrency), and
concurrent HTTP clients through gunicorn (below). Baselines for the sequential measure: bare
``Attestation.objects.create`` + subject + ``log_append`` in one transaction each (the writes
any durable ingest makes), and an authenticated GET of ``/api/v1/keys`` through the same client
(the request floor), and one committed one-row INSERT (the disk's commit floor: any durable
single-attestation POST pays it once). Query logging (``DEBUG``) is off while timing.
Through gunicorn: a real gunicorn as docs/deployment.md runs it (started by bench_lineage's
helper), BENCH_INGEST_CLIENTS (8) concurrent HTTP clients (http.client, keep-alive asked for;
gunicorn's sync workers close each connection), each with its own API token and its own distinct
envelopes (PostgreSQL only): accepted attestations/s, p50 and p99 latency, errors. Bundles of
BENCH_BUNDLE_LINES envelopes per POST (``application/jsonl``) are timed too, labelled as such.
The pass checks its envelopes in worker processes, one per core (docs/attestations.md), as it
runs for an operator; the bare loop runs on one core, as the target states it.
The re-verification time includes the one collection of what the pass leaves to the garbage
collector (it pauses the collector while it runs).
BENCH_VERIFY_N, BENCH_INGEST_N (also the concurrent POSTs), BENCH_INGEST_CLIENTS change the
counts; BENCH_PROFILE=1 adds a cProfile of the ingest;
BENCH_ATTESTATIONS_ONLY=verify or =ingest runs one half.
"""

from __future__ import annotations

import base64
import cProfile
import hashlib
import http.client
import io
import json
import os
import pstats
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

VERIFY_N = int(os.environ.get("BENCH_VERIFY_N", "10000"))
INGEST_N = int(os.environ.get("BENCH_INGEST_N", "2000"))
BUNDLE_LINES = int(os.environ.get("BENCH_BUNDLE_LINES", "100"))
CLIENTS = int(os.environ.get("BENCH_INGEST_CLIENTS", "8"))
# docs/deployment.md's web process: ``gunicorn config.wsgi --workers 4`` (sync workers, the
# default class; they answer one request per connection, closing it after each response).
GUNICORN_OPTIONS = ["--workers", "4"]
PROFILE = os.environ.get("BENCH_PROFILE", "") not in ("", "0")
REPEAT = 3
MODELS = 20
VERSIONS_PER_MODEL = 5
DATASETS = 10
URL = "/api/v1/attestations"


@contextmanager
def _no_query_log() -> Iterator[None]:
    """``DEBUG`` makes Django record every query (``connection.queries``): not what we measure."""
    from django.db import reset_queries
    from django.test.utils import override_settings

    reset_queries()
    with override_settings(DEBUG=False):
        yield
    reset_queries()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _actor() -> Any:
    from provenance.log_format import Actor

    return Actor.system("bench")


def _trusted_signer(name: str) -> tuple[Any, Any]:
    """A pipeline key trusted for training provenance and evaluations: (signer, its row)."""
    from provenance.attestation_verify import (
        PREDICATE_SLSA_PROVENANCE_V1,
        PREDICATE_TEST_RESULT,
        generate_signing_key,
        signer_from_pem,
    )
    from provenance.services import trusted_signer_add

    private_pem, public_key = generate_signing_key()
    row = trusted_signer_add(
        name=name,
        public_key=public_key,
        predicate_types=[PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_TEST_RESULT],
        actor=_actor(),
    )
    return signer_from_pem(private_pem), row


def _evaluation(number: int, subject: tuple[str, str]) -> dict[str, Any]:
    from provenance import predicates
    from provenance.attestation_verify import PREDICATE_TEST_RESULT

    return predicates.statement(
        subjects=[subject],
        predicate_type=PREDICATE_TEST_RESULT,
        predicate={
            "result": "PASSED" if number % 7 else "WARNED",
            "configuration": [
                {"name": f"holdout-eval-{number}", "uri": f"https://ci.example/evals/{number}"}
            ],
            "url": f"https://ci.example/runs/{number}",
            "passedTests": ["auc>=0.9", "fairness/demographic-parity", "robustness/fgsm"],
            "warnedTests": [] if number % 7 else ["drift/psi"],
            "failedTests": [],
        },
    )


def _training(number: int, subject: tuple[str, str], datasets: list[str]) -> dict[str, Any]:
    from provenance import predicates
    from provenance.attestation_verify import PREDICATE_SLSA_PROVENANCE_V1

    used = [datasets[number % len(datasets)], datasets[(number + 3) % len(datasets)]]
    return predicates.statement(
        subjects=[subject],
        predicate_type=PREDICATE_SLSA_PROVENANCE_V1,
        predicate={
            "buildDefinition": {
                "buildType": "https://ci.example/train/v1",
                "externalParameters": {"epochs": 10, "learningRate": "0.001"},
                "resolvedDependencies": [
                    {
                        "name": f"dataset-{digest[:8]}",
                        "digest": {"sha256": digest},
                        "annotations": {"kind": "dataset"},
                    }
                    for digest in used
                ]
                + [
                    {
                        "uri": "git+https://git.example/fraud@refs/heads/main",
                        "digest": {"sha256": _digest(f"code-{number % 13}")},
                        "annotations": {"kind": "code"},
                    }
                ],
            },
            "runDetails": {
                "builder": {"id": "https://ci.example/train"},
                "metadata": {"invocationId": f"bench-run-{number}"},
            },
        },
    )


# --------------------------------------------------------------------------
# 1. Re-verifying stored envelopes
# --------------------------------------------------------------------------


def _store_signed(count: int) -> None:
    """``count`` distinct evaluations of stored model artifacts, signed and stored as ingest
    stores them (bulk: going through ``attestation_ingest`` is the other benchmark)."""
    from django.utils import timezone

    from provenance.attestation_verify import sign_statement
    from provenance.models import Artifact, ArtifactKind, Attestation, AttestationFormat

    now = timezone.now()
    models = Artifact.objects.bulk_create(
        Artifact(
            digest=_digest(f"verify-model-{n}"),
            kind=ArtifactKind.MODEL,
            name=f"verify-model/{n}",
            size=1_000_000,
            created_at=now,
        )
        for n in range(100)
    )
    signer, row = _trusted_signer("bench-evaluator")
    batch: list[Attestation] = []
    for number in range(count):
        model = models[number % len(models)]
        statement = _evaluation(number, (model.name, model.digest))
        raw = sign_statement(statement, signer)
        batch.append(
            Attestation(
                envelope=raw,
                envelope_digest=hashlib.sha256(raw).hexdigest(),
                format=AttestationFormat.DSSE,
                predicate_type=statement["predicateType"],
                statement=statement,
                signer=row,
                received_at=now,
                verified_at=now,
            )
        )
        if len(batch) == 1000:
            Attestation.objects.bulk_create(batch)
            batch = []
    Attestation.objects.bulk_create(batch)


def _bare_verify(envelopes: list[bytes], public_pem: bytes) -> tuple[float, float]:
    """Baseline: PAE by hand and ``cryptography`` verify over the signatures already decoded;
    and the same loop decoding each envelope first (plain ``json.loads``, ``b64decode``)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(public_pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    algorithm = ec.ECDSA(hashes.SHA256())

    def decoded(raw: bytes) -> tuple[bytes, bytes, bytes]:
        document = json.loads(raw)
        return (
            document["payloadType"].encode(),
            base64.b64decode(document["payload"]),
            base64.b64decode(document["signatures"][0]["sig"]),
        )

    signatures = [decoded(raw) for raw in envelopes]
    started = time.perf_counter()
    for payload_type, payload, sig in signatures:
        pae = b"DSSEv1 %d %b %d %b" % (len(payload_type), payload_type, len(payload), payload)
        key.verify(sig, pae, algorithm)
    bare = time.perf_counter() - started
    started = time.perf_counter()
    for raw in envelopes:
        payload_type, payload, sig = decoded(raw)
        pae = b"DSSEv1 %d %b %d %b" % (len(payload_type), payload_type, len(payload), payload)
        key.verify(sig, pae, algorithm)
    return bare, time.perf_counter() - started


def _settle() -> None:
    """Start each timed pass from a vacuumed table and a clean checkpoint, as bench_log does:
    each pass rewrites every row, and the previous pass's dead rows are not this one's cost."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    connection.ensure_connection()
    raw = connection.connection
    previous = raw.autocommit
    raw.autocommit = True
    try:
        raw.execute("VACUUM ANALYZE provenance_attestation")
        raw.execute("CHECKPOINT")
    finally:
        raw.autocommit = previous


@contextmanager
def _gc_time() -> Iterator[list[float]]:
    """Seconds spent in the garbage collector meanwhile, and the number of full collections."""
    import gc

    spent = [0.0, 0.0]
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - started[0]
            spent[1] += info["generation"] == 2

    gc.callbacks.append(callback)
    try:
        yield spent
    finally:
        gc.callbacks.remove(callback)


@contextmanager
def _split() -> Iterator[dict[str, float]]:
    """Time the steps of one real ``attestations_reverify`` pass by wrapping the functions it
    calls: reading rows (each ``next`` on the stream), parsing, verifying, recording. The pass
    runs on one thread, so the steps add up: a timed pass checks in worker processes (or
    threads), overlapping its steps."""
    from provenance.services import verification

    spent: dict[str, float] = dict.fromkeys(("read", "parse", "verify", "record"), 0.0)

    def timed(step: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[step] += time.perf_counter() - started

        return wrapper

    def streamed(attestations: Any) -> Iterator[Any]:
        rows = iter(originals["_rows"](attestations))
        while True:
            started = time.perf_counter()
            row = next(rows, None)
            spent["read"] += time.perf_counter() - started
            if row is None:
                return
            yield row

    originals = {
        name: getattr(verification, name)
        for name in (
            "_rows",
            "parse_envelope",
            "verify_envelope",
            "_record",
            "_THREADS",
            "_PROCESSES",
        )
    }
    wrappers = {
        "_rows": streamed,
        "parse_envelope": timed("parse", originals["parse_envelope"]),
        "verify_envelope": timed("verify", originals["verify_envelope"]),
        "_record": timed("record", originals["_record"]),
        "_THREADS": 1,
        "_PROCESSES": 1,
    }
    for name, wrapper in wrappers.items():
        setattr(verification, name, wrapper)
    try:
        yield spent
    finally:
        for name, fn in originals.items():
            setattr(verification, name, fn)


def _reverify_all() -> float:
    import gc

    from provenance.models import Attestation
    from provenance.services import attestations_reverify

    _settle()
    started = time.perf_counter()
    report = attestations_reverify(attestations=Attestation.objects.all(), actor=_actor())
    gc.collect(0)  # what the pass left to the collector: paid now rather than just after
    elapsed = time.perf_counter() - started
    assert report.ok, report.failed[:1]
    assert len(report.outcomes) == VERIFY_N
    return elapsed


def _bench_verify() -> None:
    from provenance.attestation_verify import public_pem
    from provenance.models import Attestation, TrustedSigner

    started = time.perf_counter()
    _store_signed(VERIFY_N)
    print(f"stored {VERIFY_N:,} signed envelopes in {time.perf_counter() - started:.1f}s")
    signer = TrustedSigner.objects.get(name="bench-evaluator")
    assert signer.public_key is not None
    envelopes = [bytes(raw) for raw in Attestation.objects.values_list("envelope", flat=True)]
    pem = public_pem(signer.public_key)

    bare, decoding, ours, collected = [], [], [], []
    with _no_query_log():
        for _ in range(REPEAT):
            crypto_only, with_decoding = _bare_verify(envelopes, pem)
            bare.append(crypto_only)
            decoding.append(with_decoding)
            with _gc_time() as gc_spent:
                ours.append(_reverify_all())
            collected.append(gc_spent)
        with _split() as split, _gc_time() as gc_spent:
            total = _reverify_all()
    base, total_median = statistics.median(bare), statistics.median(ours)
    per = 1e6 / VERIFY_N
    print(f"bare cryptography verify loop (PAE + verify): {base:.2f} s,"
          f" {base * per:.0f} us/envelope (median of {REPEAT})")  # fmt: skip
    print(f"  same, decoding each envelope first (json.loads, b64decode):"
          f" {statistics.median(decoding) * per:.0f} us/envelope")  # fmt: skip
    print(f"attestations_reverify: {total_median:.2f} s, {total_median * per:.0f} us/envelope"
          f"  = {total_median / base:.2f}x bare  (target <= 2x)")  # fmt: skip
    gc_median = statistics.median(spent for spent, _ in collected)
    full = statistics.median(full for _, full in collected)
    print(f"  of which garbage collection: {gc_median * per:.0f} us/envelope"
          f" ({full:.0f} full collections)")  # fmt: skip
    rest = total - sum(split.values())
    print(f"  split of one more pass, on one thread ({total * per:.0f} us/envelope), us/envelope: "
          + ", ".join(f"{step} {seconds * per:.0f}" for step, seconds in split.items())
          + f", compare + bookkeeping {rest * per:.0f}; garbage collection within them"
          f" {gc_spent[0] * per:.0f}")  # fmt: skip


# --------------------------------------------------------------------------
# 2. Ingest through the API
# --------------------------------------------------------------------------


def _ingest_fixture() -> tuple[Any, list[tuple[str, str]], list[str]]:
    """Hashed model versions with lineage nodes, known datasets, a trusted pipeline key."""
    from django.utils import timezone

    from provenance.models import Artifact, ArtifactKind
    from provenance.services import version_node_ensure
    from registry.models import ModelVersion, RegisteredModel

    now = timezone.now()
    subjects = []
    for m in range(MODELS):
        model = RegisteredModel.objects.create(name=f"ingest-model-{m}")
        for v in range(1, VERSIONS_PER_MODEL + 1):
            name = f"{model.name}/{v}"
            artifact = Artifact.objects.create(
                digest=_digest(name), kind=ArtifactKind.MODEL, name=name, size=1, created_at=now
            )
            ModelVersion.objects.create(registered_model=model, version=v, model_artifact=artifact)
            version_node_ensure(name=model.name, version=v, artifact=artifact)
            subjects.append((name, artifact.digest))
    datasets = [_digest(f"ingest-dataset-{d}") for d in range(DATASETS)]
    Artifact.objects.bulk_create(
        Artifact(digest=d, kind=ArtifactKind.DATASET, name=f"dataset-{d[:8]}", size=0,
                 created_at=now)
        for d in datasets
    )  # fmt: skip
    signer, _row = _trusted_signer("bench-pipeline")
    return signer, subjects, datasets


def _envelopes(
    signer: Any,
    subjects: list[tuple[str, str]],
    datasets: list[str],
    numbers: range,
    *,
    training: bool,
) -> list[bytes]:
    """Distinct signed statements: evaluations only, or every other one a training run's
    provenance (a run node, two known datasets, code)."""
    from provenance.attestation_verify import sign_statement

    envelopes = []
    for number in numbers:
        subject = subjects[number % len(subjects)]
        statement = (
            _training(number, subject, datasets)
            if training and number % 2
            else _evaluation(number, subject)
        )
        envelopes.append(sign_statement(statement, signer))
    return envelopes


def _training_fails(client: Any, envelope: bytes) -> str:
    """Why a training provenance POST fails here, or "" when it is accepted."""
    import logging

    request_log = logging.getLogger("django.request")
    level = request_log.level
    request_log.setLevel(logging.CRITICAL)  # the exception is reported below, once
    try:
        response = client.post(URL, data=envelope, content_type="application/json")
    except Exception as exc:  # noqa: BLE001  (any failure is the finding)
        return f"{type(exc).__name__}: {exc}".strip()
    finally:
        request_log.setLevel(level)
    return "" if response.status_code == 201 else f"HTTP {response.status_code}"


def _client() -> Any:
    from django.contrib.auth.models import User
    from django.test import Client

    from compliance.tokens import api_token_create

    user = User.objects.create_user(username="bench-ci", password=None)
    issued = api_token_create(
        user=user,
        name="bench",
        scopes=["attest", "read"],
        expires_in_days=30,
        acting_user=None,
        actor_name="bench",
    )
    return Client(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")


def _post_all(client: Any, envelopes: list[bytes]) -> float:
    started = time.perf_counter()
    for raw in envelopes:
        response = client.post(URL, data=raw, content_type="application/json")
        assert response.status_code == 201, response.content
    return time.perf_counter() - started


def _get_keys(client: Any, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        response = client.get("/api/v1/keys")
        assert response.status_code == 200, response.content
    return time.perf_counter() - started


def _bare_store(envelopes: list[bytes], signer_row: Any, artifact: Any) -> float:
    """Baseline: the writes of a durable ingest, nothing checked, one transaction each."""
    from django.db import transaction
    from django.utils import timezone

    from provenance.log_format import Event
    from provenance.models import Attestation, AttestationFormat, AttestationSubject
    from provenance.services import log_append

    actor = _actor()
    started = time.perf_counter()
    for raw in envelopes:
        statement = json.loads(base64.b64decode(json.loads(raw)["payload"]))
        digest = hashlib.sha256(raw).hexdigest()
        now = timezone.now()
        with transaction.atomic():
            attestation = Attestation.objects.create(
                envelope=raw,
                envelope_digest=_digest(f"bare-{digest}"),
                format=AttestationFormat.DSSE,
                predicate_type=statement["predicateType"],
                statement=statement,
                signer=signer_row,
                received_at=now,
                verified_at=now,
            )
            AttestationSubject.objects.create(
                attestation=attestation, artifact=artifact, name=artifact.name
            )
            log_append(
                Event(
                    event_type="bench.stored",
                    actor=actor,
                    object_type="attestation",
                    object_id=attestation.envelope_digest,
                    after={"predicate_type": attestation.predicate_type},
                    evidence=[f"sha256:{attestation.envelope_digest}"],
                )
            )
    return time.perf_counter() - started


def _commit_floor(count: int) -> float:
    """Baseline: ``count`` transactions of one tiny INSERT each (into a scratch table): what
    waiting for the disk to make one commit durable costs."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_commit_floor (id serial PRIMARY KEY)")
    started = time.perf_counter()
    for _ in range(count):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_commit_floor DEFAULT VALUES")
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_commit_floor")
    return elapsed


def _post_bundles(client: Any, envelopes: list[bytes]) -> float:
    """POST ``envelopes`` as bundles of BUNDLE_LINES lines (JSON Lines), one after another."""
    bundles = [
        b"\n".join(envelopes[start : start + BUNDLE_LINES]) + b"\n"
        for start in range(0, len(envelopes), BUNDLE_LINES)
    ]
    started = time.perf_counter()
    for bundle in bundles:
        response = client.post(URL, data=bundle, content_type="application/jsonl")
        assert response.status_code == 207, response.content
        statuses = {line["status"] for line in response.json()}
        assert statuses == {201}, response.content[:500]
    return time.perf_counter() - started


def _queries_per_post(client: Any, envelopes: list[bytes]) -> str:
    """SQL statements of one accepted POST of each kind given."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for raw in envelopes:
        kind = json.loads(base64.b64decode(json.loads(raw)["payload"]))["predicateType"]
        with CaptureQueriesContext(connection) as captured:
            response = client.post(URL, data=raw, content_type="application/json")
        assert response.status_code == 201, response.content
        counts.append(f"{len(captured.captured_queries)} ({kind.rsplit('/', 2)[-2]})")
    return ", ".join(counts)


# --------------------------------------------------------------------------
# Through gunicorn: concurrent clients over HTTP
# --------------------------------------------------------------------------


def _tokens(count: int) -> list[str]:
    """One API token (``attest``) for each client, each its own user: one pipeline each."""
    from django.contrib.auth.models import User

    from compliance.tokens import api_token_create

    tokens = []
    for number in range(count):
        user = User.objects.create_user(username=f"bench-pipeline-{number}", password=None)
        issued = api_token_create(
            user=user,
            name="bench",
            scopes=["attest"],
            expires_in_days=1,
            acting_user=None,
            actor_name="bench",
        )
        tokens.append(str(issued.secret))
    return tokens


def _http_post(connection: http.client.HTTPConnection, token: str, raw: bytes) -> int:
    """POST one envelope on ``connection`` (reopened by http.client when the server closed it)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        connection.request("POST", URL, body=raw, headers=headers)
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException):
        connection.close()
        return 0
    return int(response.status)


def _http_clients(port: int, tokens: list[str], envelopes: list[list[bytes]]) -> dict[str, Any]:
    """Each client posts its envelopes one after another, all clients at once; the figures of
    the whole run, from the moment every client is ready."""
    latencies: list[list[float]] = [[] for _ in tokens]
    statuses: list[list[int]] = [[] for _ in tokens]
    ready = threading.Barrier(len(tokens) + 1)

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        ready.wait()
        for raw in envelopes[number]:
            started = time.perf_counter()
            statuses[number].append(_http_post(connection, tokens[number], raw))
            latencies[number].append(time.perf_counter() - started)
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(tokens))]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    every = sorted(latency for client in latencies for latency in client)
    codes = [status for client in statuses for status in client]
    return {
        "posts": len(codes),
        "accepted": codes.count(201),
        "errors": len(codes) - codes.count(201),
        "error_statuses": sorted(set(codes) - {201}),
        "elapsed": elapsed,
        "p50": every[len(every) // 2],
        "p99": every[min(len(every) - 1, round(0.99 * (len(every) - 1)))],
    }


def _bench_gunicorn(envelopes: list[bytes], mix: str) -> None:
    """``envelopes`` (distinct, none posted yet) POSTed through gunicorn by CLIENTS clients."""
    from bench import bench_lineage

    if _vendor() != "postgresql":
        print("through gunicorn: skipped (needs PostgreSQL)")
        return
    tokens = _tokens(CLIENTS)
    warm, timed = envelopes[: CLIENTS * 10], envelopes[CLIENTS * 10 :]
    # bench_lineage starts gunicorn against the benchmark database; with this benchmark's options
    with (
        mock.patch.object(bench_lineage, "GUNICORN_OPTIONS", GUNICORN_OPTIONS),
        bench_lineage._gunicorn(os.environ["DATABASE_URL"]) as port,
    ):
        _http_clients(port, tokens, [warm[n::CLIENTS] for n in range(CLIENTS)])
        result = _http_clients(port, tokens, [timed[n::CLIENTS] for n in range(CLIENTS)])
    print(f"POST {URL} THROUGH GUNICORN ({' '.join(GUNICORN_OPTIONS)}, docs/deployment.md), ONE"
          f" ENVELOPE PER POST: {CLIENTS} concurrent HTTP clients, each its own token,"
          f" {len(timed):,} distinct envelopes ({mix}):"
          f" {result['accepted'] / result['elapsed']:,.0f} accepted"
          f" attestations/s (target >= 300/s), p50 {result['p50'] * 1000:.1f} ms,"
          f" p99 {result['p99'] * 1000:.1f} ms, errors {result['errors']}"
          f" {result['error_statuses'] or ''}")  # fmt: skip


# Where an ingest's time goes: (label, file suffix, function), cumulative time per POST.
_STAGES = (
    ("whole request (test client)", "django/test/client.py", "request"),
    ("  authentication (API token)", "compliance/tokens.py", "api_token_authenticate"),
    ("  actor for the log (roles)", "config/actors.py", "actor_for_user"),
    ("  attestation_submit", "registry/services/attestations.py", "attestation_submit"),
    ("    parse_envelope", "provenance/attestation_verify/envelopes.py", "parse_envelope"),
    ("    signers read + verify_envelope", "provenance/services/attestations.py",
     "verified"),
    ("      verify_envelope", "provenance/attestation_verify/signatures.py", "verify_envelope"),
    ("    subjects: artifacts + measured digests", "provenance/services/attestations.py",
     "_subject_artifacts"),
    ("    _store (one transaction)", "provenance/services/attestations.py", "_store"),
    ("      lineage_derive_many", "provenance/services/lineage.py", "lineage_derive_many"),
    ("      datasets linked (same transaction)", "registry/services/attestations.py",
     "_datasets_linked"),
    ("    log_append_many", "provenance/services/log.py", "log_append_many"),
    ("waiting for PostgreSQL (all queries)", "psycopg/connection.py", "wait"),
    ("Django compiling SQL (all queries)", "django/db/models/sql/compiler.py", "as_sql"),
)  # fmt: skip


def _profile(client: Any, envelopes: list[bytes]) -> None:
    """cProfile of ``envelopes`` POSTs: time per stage, then the costliest functions."""
    profiler = cProfile.Profile()
    profiler.enable()
    _post_all(client, envelopes)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    cumulative: dict[tuple[str, str], float] = {}
    for (filename, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
        for _label, suffix, name in _STAGES:
            if function == name and filename.endswith(suffix):
                cumulative[(suffix, name)] = cumulative.get((suffix, name), 0.0) + row[3]
    count = len(envelopes)
    total = cumulative.get(("django/test/client.py", "request"), 0.0) or 1.0
    print(f"cProfile of {count} more POSTs (profiler overhead included), cumulative per POST:")
    for label, suffix, name in _STAGES:
        seconds = cumulative.get((suffix, name), 0.0)
        print(f"  {label:45s} {seconds / count * 1000:6.2f} ms  {seconds / total:4.0%}")
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(15)
    print("  costliest functions by own time:")
    print("\n".join("    " + line for line in out.getvalue().splitlines()[6:] if line.strip()))


def _bench_ingest() -> None:
    from provenance.models import Artifact, TrustedSigner

    signer, subjects, datasets = _ingest_fixture()
    client = _client()
    probe = _envelopes(signer, subjects, datasets, range(1, 2), training=True)[0]
    failure = _training_fails(client, probe)
    if failure:
        print(f"!! training provenance (SLSA v1) POSTs fail on {_vendor()}: {failure[:160]}")
        print("   measuring evaluations (in-toto test-result) only")
    mix = "evaluations" if failure else "half training provenance, half evaluations"
    warm = 50
    numbers = range(10, 10 + warm + INGEST_N + 2)
    envelopes = _envelopes(signer, subjects, datasets, numbers, training=not failure)
    bundled = _envelopes(
        signer, subjects, datasets, range(10**5, 10**5 + INGEST_N), training=not failure
    )
    extra = (
        _envelopes(signer, subjects, datasets, range(10**6, 10**6 + 400), training=not failure)
        if PROFILE
        else []
    )
    over_http = _envelopes(
        signer,
        subjects,
        datasets,
        range(10**7, 10**7 + CLIENTS * 10 + INGEST_N),
        training=not failure,
    )
    with _no_query_log():
        _post_all(client, envelopes[:warm])
        _get_keys(client, warm)
        cpu = time.process_time()
        ours = _post_all(client, envelopes[warm : warm + INGEST_N])
        cpu = time.process_time() - cpu
        cpu_floor = time.process_time()
        floor = _get_keys(client, INGEST_N)
        cpu_floor = time.process_time() - cpu_floor
        bare = _bare_store(
            envelopes[warm : warm + INGEST_N],
            TrustedSigner.objects.get(name="bench-pipeline"),
            Artifact.objects.get(digest=subjects[0][1]),
        )
        commit = _commit_floor(INGEST_N)
        in_bundles = _post_bundles(client, bundled)
    queries = _queries_per_post(client, envelopes[-2:])
    rate = INGEST_N / ours
    print(f"POST {URL}, ONE ENVELOPE PER POST, SEQUENTIAL THROUGH DJANGO'S TEST CLIENT (no HTTP"
          f" server): {INGEST_N:,} distinct"
          f" envelopes ({mix}), one client after another, Bearer token: {rate:,.0f}"
          f" attestations/s, {ours / INGEST_N * 1000:.2f} ms each  (target >= 300/s)")  # fmt: skip
    print(f"  SQL queries per accepted POST: {queries} (plus the log append, on the driver)")
    print(f"  CPU of this process per POST (less sensitive to other load than the rate):"
          f" {cpu / INGEST_N * 1000:.2f} ms; per authenticated GET /api/v1/keys"
          f" {cpu_floor / INGEST_N * 1000:.2f} ms")  # fmt: skip
    print(f"  baseline bare create + subject + log_append, one transaction each:"
          f" {INGEST_N / bare:,.0f}/s; an ingest costs {ours / bare:.2f}x that")  # fmt: skip
    print(f"  baseline authenticated GET /api/v1/keys through the same client:"
          f" {INGEST_N / floor:,.0f}/s; an ingest costs {ours / floor:.2f}x that")  # fmt: skip
    print(f"  baseline one committed one-row INSERT per transaction (the commit floor):"
          f" {INGEST_N / commit:,.0f}/s; an ingest costs {ours / commit:.2f}x that")  # fmt: skip
    print(f"POST {URL}, BUNDLES of {BUNDLE_LINES} envelopes per POST (application/jsonl, not the"
          f" target's measure): {INGEST_N:,} distinct envelopes ({mix}):"
          f" {INGEST_N / in_bundles:,.0f} attestations/s,"
          f" {in_bundles / INGEST_N * BUNDLE_LINES * 1000:.1f} ms per bundle")  # fmt: skip
    _bench_gunicorn(over_http, mix)
    if PROFILE:
        with _no_query_log():
            _profile(client, extra)


def _vendor() -> str:
    from django.db import connection

    return str(connection.vendor)


def run() -> None:
    print(f"database: {_vendor()}, {os.cpu_count()} cores")
    if os.environ.get("BENCH_ATTESTATIONS_ONLY", "") != "ingest":
        _bench_verify()
    if os.environ.get("BENCH_ATTESTATIONS_ONLY", "") != "verify":
        _bench_ingest()
