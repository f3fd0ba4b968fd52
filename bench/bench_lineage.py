"""Lineage API on 100,000 nodes / 300,000 edges, through gunicorn, against the bare SQL.

Issue 7's targets: upstream and downstream to depth 10 and the impact query, p95 through the
API ≤ 50 ms warm; API p50 ≤ 3x the bare SQL p50 measured in the same run; 50 concurrent
clients of mixed reads ≥ 200 requests/s with p99 ≤ 250 ms and no errors.

The graph is 5,000 projects of 20 nodes (raw datasets → ETL runs → datasets → training runs →
model versions), each node fed by three of the layer before, plus edges sharing datasets across
projects: 100,000 nodes, 300,000 edges, each proven by one of 1,000 attestations. The caller is
a security engineer holding a role on every model (a global role). The bare SQL baseline is the
same recursive walk returning the same edges, endpoints and attestation digests, from psycopg
directly: timed back to back (the target's baseline), and each just before the same walk through
the API (the same moment's load, and caches as cold as the API finds them). For scale, the bench
also times a small authenticated read, whose cost every API request carries. Nothing here asserts
a time.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PROJECTS = 5_000
LAYERS = ("dataset", "run", "dataset", "run", "model_version")
WIDTH = 4
PARENTS = 3
CROSS_EDGES_PER_PROJECT = 12
ATTESTATIONS = 1_000
SAMPLES = 200
CONCURRENT_CLIENTS = 50
CONCURRENT_SECONDS = 15.0
# docs/deployment.md's recommendation: sync workers, two per core.
GUNICORN_OPTIONS = ["--workers", str(2 * (os.cpu_count() or 1)), "--worker-class", "sync"]


def _node_rows() -> Iterator[tuple[str, str, str]]:
    for project in range(PROJECTS):
        for layer, kind in enumerate(LAYERS):
            for slot in range(WIDTH):
                yield kind, _key(kind, project, layer, slot), f"p{project} L{layer} #{slot}"


def _key(kind: str, project: int, layer: int, slot: int) -> str:
    if kind == "model_version":
        return f"model-{project}/{slot + 1}"
    if kind == "dataset":
        return "sha256:" + hashlib.sha256(f"{project}/{layer}/{slot}".encode()).hexdigest()
    return f"run-{project}-{layer}-{slot}"


def _edge_rows(ids: list[int], attestation_ids: list[int]) -> Iterator[tuple[int, int, str, int]]:
    rng = random.Random(7)
    per_project = len(LAYERS) * WIDTH
    relation = {1: "derived-from", 2: "produced", 3: "trained-on", 4: "produced"}
    count = 0
    for project in range(PROJECTS):
        base = project * per_project
        for layer in range(1, len(LAYERS)):
            for slot in range(WIDTH):
                child = ids[base + layer * WIDTH + slot]
                for parent_slot in rng.sample(range(WIDTH), PARENTS):
                    parent = ids[base + (layer - 1) * WIDTH + parent_slot]
                    count += 1
                    yield parent, child, relation[layer], attestation_ids[count % ATTESTATIONS]
        for _ in range(CROSS_EDGES_PER_PROJECT):
            other = rng.randrange(PROJECTS)
            if other == project:
                other = (other + 1) % PROJECTS
            # another project's dataset also fed one of this project's training runs
            parent = ids[other * per_project + 2 * WIDTH + rng.randrange(WIDTH)]
            child = ids[base + 3 * WIDTH + rng.randrange(WIDTH)]
            count += 1
            yield parent, child, "trained-on", attestation_ids[count % ATTESTATIONS]


def _load_graph() -> tuple[int, int]:
    from django.db import connection
    from django.utils import timezone

    from provenance.models import Attestation, LineageEdge, LineageNode, SigningKey

    now = timezone.now()
    key = SigningKey.objects.create(
        key_id="bench", scheme="ecdsa-sha2-nistp256", public_key={}, public_pem="", created_at=now
    )
    Attestation.objects.bulk_create(
        Attestation(
            envelope=b"{}",
            envelope_digest=hashlib.sha256(f"bench-{i}".encode()).hexdigest(),
            format="dsse",
            predicate_type="https://slsa.dev/provenance/v1",
            statement={"bench": i},
            signing_key=key,
            received_at=now,
            verified_at=now,
        )
        for i in range(ATTESTATIONS)
    )
    attestation_ids = list(Attestation.objects.order_by("pk").values_list("pk", flat=True))
    raw = connection.connection
    assert raw is not None
    with raw.cursor() as cursor:
        with cursor.copy(
            f"COPY {LineageNode._meta.db_table} (kind, key, label, attributes, created_at) "
            "FROM STDIN"
        ) as copy:
            for kind, key_, label in _node_rows():
                copy.write_row((kind, key_, label, "{}", now))
        ids = [
            row[0]
            for row in cursor.execute(
                f"SELECT id FROM {LineageNode._meta.db_table} ORDER BY id"  # noqa: S608
            ).fetchall()
        ]
        with cursor.copy(
            f"COPY {LineageEdge._meta.db_table} "
            "(upstream_id, downstream_id, relation, attestation_id, created_at) FROM STDIN"
        ) as copy:
            for upstream, downstream, relation, attestation in _edge_rows(ids, attestation_ids):
                copy.write_row((upstream, downstream, relation, attestation, now))
        for model in (LineageNode, LineageEdge, Attestation):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    raw.commit()
    return LineageNode.objects.count(), LineageEdge.objects.count()


# --------------------------------------------------------------------------
# The bare SQL baseline: the same walk, returning what the API returns
# --------------------------------------------------------------------------

_BARE = """
WITH RECURSIVE walk(edge_id, node_id, depth) AS (
    SELECT e.id, e.{far}, 1 FROM provenance_lineageedge e
    JOIN provenance_lineagenode s ON e.{near} = s.id WHERE s.kind = %s AND s.key = %s
  UNION
    SELECT e.id, e.{far}, w.depth + 1
    FROM walk w JOIN provenance_lineageedge e ON e.{near} = w.node_id WHERE w.depth < %s
)
SELECT e.id, e.relation, u.kind, u.key, d.kind, d.key, a.envelope_digest, a.verification_status
FROM (SELECT DISTINCT edge_id FROM walk) w
JOIN provenance_lineageedge e ON e.id = w.edge_id
JOIN provenance_lineagenode u ON u.id = e.upstream_id
JOIN provenance_lineagenode d ON d.id = e.downstream_id
JOIN provenance_attestation a ON a.id = e.attestation_id
"""


def _bare(direction: str) -> str:
    near, far = (
        ("downstream_id", "upstream_id")
        if direction == "upstream"
        else ("upstream_id", "downstream_id")
    )
    return _BARE.format(near=near, far=far)


def _time_side_by_side(
    port: int, token: str, direction: str, refs: list[tuple[str, str]], paths: list[str]
) -> tuple[list[float], list[float], list[float], int]:
    """Each walk as bare SQL, from psycopg directly (prepared from its fifth run, as the
    registry's are): first all back to back, the target's baseline; then each just before the
    same walk through the API, so that both meet the same moment's load and the same cold
    caches. Returns (API times, SQL times alone, SQL times between API requests, API errors)."""
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    api: list[float] = []
    alone: list[float] = []
    between: list[float] = []
    errors = 0
    with psycopg.connect(**params, autocommit=True) as raw:

        def walk(kind: str, key: str) -> float:
            started = time.perf_counter()
            raw.execute(_bare(direction), (kind, key, 10)).fetchall()
            return time.perf_counter() - started

        for kind, key in refs[:10]:  # warm: prepared, and its pages cached
            walk(kind, key)
        alone = [walk(kind, key) for kind, key in refs]
        for (kind, key), path in zip(refs, paths, strict=True):
            between.append(walk(kind, key))
            status, elapsed = _get(port, path, token)
            errors += status != 200
            api.append(elapsed)
    return api, alone, between, errors


# --------------------------------------------------------------------------
# gunicorn, and clients
# --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def _gunicorn(database_url: str) -> Iterator[int]:
    port = _free_port()
    var_dir = tempfile.mkdtemp(prefix="secmlops-bench-gunicorn-")
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
        # Throttles count in a shared Redis, as docs/deployment.md has production do.
        "CACHE_URL": "redis://127.0.0.1:6379/14",
        "MLFLOW_TRACKING_URI": f"sqlite:///{var_dir}/mlflow.db",
        "SECURE_SSL_REDIRECT": "false",
        "API_THROTTLE_TOKEN_RATE": "1000000/minute",
        "VAR_DIR": var_dir,
        "LOG_LEVEL": "WARNING",
        # Persistent connections, as docs/deployment.md recommends (the setting's default, but
        # said here so that the figures do not depend on it).
        "DATABASE_CONN_MAX_AGE": "600",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            *("-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}"),
            *GUNICORN_OPTIONS,
            *("--log-level", "warning"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(port, process)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start within 60 s")


def _get(port: int, path: str, token: str) -> tuple[int, float]:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        response.read()
        status = response.status
    finally:
        connection.close()
    return status, time.perf_counter() - started


def _time_api(port: int, token: str, paths: list[str]) -> tuple[list[float], int]:
    times, errors = [], 0
    for path in paths:
        status, elapsed = _get(port, path, token)
        errors += status != 200
        times.append(elapsed)
    return times, errors


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def _concurrent(port: int, token: str, paths: list[str]) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    stop = time.monotonic() + CONCURRENT_SECONDS

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            try:
                status, elapsed = _get(port, rng.choice(paths), token)
            except OSError:
                status, elapsed = 0, 0.0
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    errors.append(status)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CONCURRENT_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {
        "requests": len(latencies),
        "rate": len(latencies) / elapsed,
        "p50": _percentile(latencies, 0.50),
        "p99": _percentile(latencies, 0.99),
        "errors": len(errors),
    }


def _token() -> str:
    from django.contrib.auth.models import User

    from compliance.models import SecurityRole
    from compliance.services import role_grant
    from compliance.tokens import api_token_create

    user = User.objects.create_user("bench-secops", password=secrets.token_urlsafe(16))
    role_grant(
        user=user,
        role=SecurityRole.objects.get(key="security_operations"),
        acting_user=None,
        actor_name="bench",
    )
    issued = api_token_create(
        user=user, name="bench", scopes=["read"], expires_in_days=1, acting_user=user
    )
    return str(issued.secret)


def _report(
    label: str, api: list[float], sql: tuple[list[float], list[float]] | None = None
) -> None:
    p50, p95 = _percentile(api, 0.5), _percentile(api, 0.95)
    line = f"{label:<24} API p50 {_ms(p50):>9}  p95 {_ms(p95):>9} (target ≤ 50 ms)"
    if sql:
        alone, between = (statistics.median(times) for times in sql)
        line += (
            f"\n{'':<24} SQL p50 {_ms(alone):>9} back to back: ratio {p50 / alone:.2f}x"
            f" (target ≤ 3x); {_ms(between)} between API requests: {p50 / between:.2f}x"
        )
    print(line)


def run() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        print("skipped: needs PostgreSQL")
        return
    started = time.perf_counter()
    nodes, edges = _load_graph()
    print(
        f"graph: {nodes:,} nodes, {edges:,} edges, loaded in {time.perf_counter() - started:.1f} s"
    )
    token = _token()
    rng = random.Random(11)
    versions = [(p, rng.randrange(WIDTH) + 1) for p in rng.sample(range(PROJECTS), SAMPLES)]
    raws = [
        _key("dataset", p, 0, rng.randrange(WIDTH)) for p in rng.sample(range(PROJECTS), SAMPLES)
    ]
    upstream = [
        f"/api/v1/lineage?node=model_version:model-{p}/{v}&direction=upstream&depth=10"
        for p, v in versions
    ]
    downstream = [f"/api/v1/lineage?node=dataset:{k}&direction=downstream&depth=10" for k in raws]
    impact = [f"/api/v1/lineage/impact?node=dataset:{k}" for k in raws]
    database_url = os.environ["DATABASE_URL"]
    others = ["/api/v1/models?page_size=50", "/api/v1/attestations?page_size=50", "/api/v1/roles"]
    print(f"gunicorn {' '.join(GUNICORN_OPTIONS)} on {os.cpu_count()} cores")
    with _gunicorn(database_url) as port:
        # Warm every worker on every endpoint timed (each worker imports and connects lazily).
        _time_api(port, token, upstream[:20] + downstream[:20] + impact[:20] + others * 5)
        up, up_alone, up_between, up_errors = _time_side_by_side(
            port, token, "upstream", [("model_version", f"model-{p}/{v}") for p, v in versions],
            upstream,
        )  # fmt: skip
        down, down_alone, down_between, down_errors = _time_side_by_side(
            port, token, "downstream", [("dataset", k) for k in raws], downstream
        )
        imp, imp_errors = _time_api(port, token, impact)
        floor, floor_errors = _time_api(port, token, ["/api/v1/keys"] * SAMPLES)
        _report("upstream, depth 10", up, (up_alone, up_between))
        _report("downstream, depth 10", down, (down_alone, down_between))
        _report("impact (downstream, all)", imp)
        print(
            f"for scale: a small authenticated API read (GET /api/v1/keys: the token, the"
            f" throttle, a short list) p50 {_ms(_percentile(floor, 0.5))}"
            f" = {_percentile(floor, 0.5) / statistics.median(down_alone):.2f}x the downstream SQL"
        )
        print(f"errors: {up_errors + down_errors + imp_errors + floor_errors}")
        mixed = upstream[:50] + downstream[:50] + impact[:50] + others * 10
        result = _concurrent(port, token, mixed)
        print(
            f"{CONCURRENT_CLIENTS} concurrent clients, {CONCURRENT_SECONDS:.0f} s of mixed reads: "
            f"{result['requests']:,} requests, {result['rate']:.0f} req/s (target ≥ 200), "
            f"p50 {_ms(result['p50'])}, p99 {_ms(result['p99'])} (target ≤ 250 ms), "
            f"errors {result['errors']} (target 0)"
        )
