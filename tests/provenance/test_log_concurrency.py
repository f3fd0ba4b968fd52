"""Appends from many threads at once stay gapless and the tree still verifies (PostgreSQL)."""

from __future__ import annotations

import os
import threading

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
