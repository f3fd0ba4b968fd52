"""Appends from many threads at once stay gapless and the tree still verifies (PostgreSQL)."""

from __future__ import annotations

import os
import threading

import psycopg
import pytest
from django.db import connection, connections

from provenance import services
from provenance.log_format import Actor, Event
from provenance.merkle import Frontier
from provenance.models import LogEntry

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 20
PER_THREAD = 10


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        if os.environ.get("REQUIRE_REAL_SERVICES"):
            pytest.fail("REQUIRE_REAL_SERVICES is set but DATABASE_URL is not PostgreSQL")
        pytest.skip("needs PostgreSQL (DATABASE_URL): SQLite serialises writers itself")


def test_twenty_threads_appending_at_once_give_gapless_unique_indexes() -> None:
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            barrier.wait()
            for n in range(PER_THREAD):
                services.log_append(
                    Event(
                        event_type="test.concurrent",
                        actor=Actor.system(f"worker-{worker}"),
                        object_type="thing",
                        object_id=f"{worker}-{n}",
                    )
                )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append, args=(w,)) for w in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    indexes = list(LogEntry.objects.order_by("index").values_list("index", flat=True))
    assert indexes == list(range(THREADS * PER_THREAD))
    assert LogEntry.objects.values("object_id").distinct().count() == THREADS * PER_THREAD
    services.checkpoint_issue()
    report = services.log_verify()
    assert report.ok, report.problems


def test_a_stale_head_with_the_right_size_but_another_tree_is_not_built_on() -> None:
    """A rolled-back append, then another writer's, can bring the log back to a size this
    connection saw with a different tree: the append must notice and re-read."""
    for n in range(5):
        services.log_append(
            Event(event_type="t", actor=Actor.system(), object_type="x", object_id=str(n))
        )
    size, _frontier = connection._secmlops_log_head  # type: ignore[attr-defined]
    forged = Frontier()
    for _ in range(size):
        forged.append(b"\x01" * 32)
    connection._secmlops_log_head = (size, forged.to_json())  # type: ignore[attr-defined]

    services.log_append(Event(event_type="t", actor=Actor.system(), object_type="x", object_id="6"))

    services.checkpoint_issue()
    report = services.log_verify()
    assert report.ok, report.problems


def test_an_append_outside_a_transaction_is_committed_when_it_returns() -> None:
    """Autocommit: the append's one statement is its own transaction, durable on return."""
    assert not connection.in_atomic_block
    services.log_append(Event(event_type="t", actor=Actor.system(), object_type="x", object_id="0"))
    entry = services.log_append(
        Event(event_type="t", actor=Actor.system(), object_type="x", object_id="1")
    )

    with psycopg.connect(**_other_connection_params()) as other:  # type: ignore[arg-type]
        row = other.execute('SELECT count(*), max("index") FROM provenance_logentry').fetchone()
        size = other.execute("SELECT size FROM provenance_logstate WHERE id = 1").fetchone()
    assert row == (2, entry.index) == (2, 1)
    assert size == (2,)


def test_an_append_on_a_head_another_process_moved_rereads_it_outside_a_transaction() -> None:
    services.log_append(Event(event_type="t", actor=Actor.system(), object_type="x", object_id="0"))
    behind = connection._secmlops_log_head  # type: ignore[attr-defined]
    services.log_append(Event(event_type="t", actor=Actor.system(), object_type="x", object_id="1"))
    # as if another process had appended "1"
    connection._secmlops_log_head = behind  # type: ignore[attr-defined]

    entry = services.log_append(
        Event(event_type="t", actor=Actor.system(), object_type="x", object_id="2")
    )

    assert entry.index == 2
    assert list(LogEntry.objects.order_by("index").values_list("object_id", flat=True)) == [
        "0",
        "1",
        "2",
    ]
    services.checkpoint_issue()
    report = services.log_verify()
    assert report.ok, report.problems


def _other_connection_params() -> dict[str, object]:
    params = dict(connection.get_connection_params())
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return params
