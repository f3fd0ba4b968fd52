"""Governance log on PostgreSQL: append throughput and cost at scale, proofs, full verification.

Figures (issue 3 targets): single-writer append throughput (>= 1,000 events/s); append cost at
1,000,000 entries over the cost at 1,000 (<= 1.2); inclusion proof in a 1,000,000-entry log
(<= 10 ms); full verify_log of 1,000,000 entries (<= 60 s). BENCH_LOG_SIZE shrinks the big log.
"""

from __future__ import annotations

import os
import random
import statistics
import time

BIG = int(os.environ.get("BENCH_LOG_SIZE", "1000000"))
SMALL = 1000
APPENDS = 2000
BATCH = 5000


def _event(n: int) -> object:
    from provenance.log_format import Actor, Event

    return Event(
        event_type="bench.event",
        actor=Actor(user_id=n % 50, name=f"user-{n % 50}", roles=("model_validator",)),
        object_type="model_version",
        object_id=f"fraud/{n}",
        before={"status": "registered"},
        after={"status": "approved", "digest": f"{n:064x}"},
        reason="benchmark",
    )


def _single_appends(count: int) -> float:
    """Seconds per append, each in its own transaction, as the services append them."""
    from provenance.services import log_append

    started = time.perf_counter()
    for n in range(count):
        log_append(_event(n))  # type: ignore[arg-type]
    return (time.perf_counter() - started) / count


def _bare_inserts(count: int) -> float:
    """Baseline: seconds per durable single-row INSERT + COMMIT of an entry-shaped row into a
    scratch copy of the entry table (same columns and indexes), through the same driver."""
    from django.db import connection, transaction

    from provenance.log_format import canonical

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_bare_entry")
        cursor.execute(
            "CREATE TABLE bench_bare_entry (LIKE provenance_logentry INCLUDING ALL)"
            if connection.vendor == "postgresql"
            else "CREATE TABLE bench_bare_entry AS SELECT * FROM provenance_logentry WHERE 0"
        )
    payload = canonical({"n": 0, "pad": "x" * 300})
    started = time.perf_counter()
    for n in range(count):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                'INSERT INTO bench_bare_entry ("index", event_type, occurred_at, actor_name,'
                " request_id, object_type, object_id, entry)"
                " VALUES (%s, 'bench', CURRENT_TIMESTAMP, 'u', '-', 'o', %s, %s)",
                [n, str(n), payload],
            )
    elapsed = (time.perf_counter() - started) / count
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_bare_entry")
    return elapsed


def _grow_to(size: int) -> None:
    from provenance.selectors import log_size
    from provenance.services import log_append_many

    current = log_size()
    started = time.perf_counter()
    while current < size:
        batch = min(BATCH, size - current)
        log_append_many([_event(current + n) for n in range(batch)])  # type: ignore[misc]
        current += batch
    print(f"  (grew the log to {size:,} entries in {time.perf_counter() - started:.0f}s)")


def _settle() -> None:
    """Let PostgreSQL finish the bulk load's housekeeping before timing (vacuum, checkpoint)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    connection.ensure_connection()
    raw = connection.connection
    previous = raw.autocommit
    raw.autocommit = True
    try:
        for table in ("provenance_logentry", "provenance_merklenode", "provenance_logstate"):
            raw.execute(f"VACUUM ANALYZE {table}")
        raw.execute("CHECKPOINT")
    finally:
        raw.autocommit = previous


def _inclusion_ms(size: int, samples: int = 300) -> tuple[float, float]:
    from provenance.selectors import inclusion

    timings = []
    for _ in range(samples):
        index = random.randrange(size)
        started = time.perf_counter()
        inclusion(index=index, tree_size=size)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.95)]


def run() -> None:
    from django.db import connection

    from provenance.selectors import log_size
    from provenance.services import checkpoint_issue, log_verify

    print(f"database: {connection.vendor}")
    _grow_to(SMALL)
    at_small = _single_appends(APPENDS)
    bare = _bare_inserts(APPENDS)
    print(f"append throughput (single writer, own transaction each): {1 / at_small:,.0f} events/s"
          "  (target >= 1,000)")  # fmt: skip
    print(f"  baseline: bare INSERT + COMMIT of one entry-shaped row: {1 / bare:,.0f} rows/s;"
          f" an append costs {at_small / bare:.2f}x that")  # fmt: skip
    _grow_to(BIG)
    checkpoint_issue()
    _settle()
    at_big = _single_appends(APPENDS)
    bare_big = _bare_inserts(APPENDS)
    print(f"append cost at {log_size():,} vs {SMALL:,} entries: {at_big * 1e6:.0f} us vs "
          f"{at_small * 1e6:.0f} us  ratio {at_big / at_small:.2f}  (target <= 1.2)")  # fmt: skip
    print(f"  the bare INSERT baseline moved {bare_big / bare:.2f}x between the two measurements;"
          f" drift-corrected ratio {(at_big / bare_big) / (at_small / bare):.2f}")  # fmt: skip
    p50, p95 = _inclusion_ms(log_size())
    print(f"inclusion proof in a {log_size():,}-entry log: p50 {p50:.2f} ms, p95 {p95:.2f} ms"
          "  (target <= 10 ms)")  # fmt: skip
    checkpoint_issue()
    started = time.perf_counter()
    report = log_verify()
    elapsed = time.perf_counter() - started
    print(f"verify_log of {report.tree_size:,} entries: {elapsed:.1f} s, ok={report.ok}"
          "  (target <= 60 s)")  # fmt: skip
