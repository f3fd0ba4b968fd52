"""verify_log and the append-only triggers: tampering is refused, and what slips past is found."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from provenance import services
from provenance.db import triggers_suspended
from provenance.log_format import Actor, Event
from provenance.models import Checkpoint, LogEntry, LogVerification, MerkleNode

pytestmark = pytest.mark.django_db


def fill(count: int, *, checkpoint_every: int = 0) -> None:
    for n in range(count):
        services.log_append(
            Event(
                event_type="test.event",
                actor=Actor(user_id=1, name="dave", roles=("risk_owner",)),
                object_type="thing",
                object_id=str(n),
                after={"n": n},
            )
        )
        if checkpoint_every and (n + 1) % checkpoint_every == 0:
            services.checkpoint_issue()


def verify() -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_log", "--no-progress", stdout=out, stderr=err)
    except CommandError as exc:
        return 1, out.getvalue(), err.getvalue() + str(exc)
    return 0, out.getvalue(), err.getvalue()


def raw(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_an_untouched_log_verifies_and_the_run_is_recorded() -> None:
    fill(40, checkpoint_every=10)

    code, out, _ = verify()

    assert code == 0
    assert "OK: 41 entries" in out  # 40 events and the log key creation
    recorded = LogVerification.objects.get()
    assert recorded.ok
    assert recorded.checkpoints_checked == Checkpoint.objects.count()


@pytest.mark.parametrize("statement", ["UPDATE {t} SET object_id = 'x'", "DELETE FROM {t}"])
def test_triggers_refuse_update_and_delete_of_entries(statement: str) -> None:
    fill(3)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw(statement.format(t="provenance_logentry"), [])

    assert LogEntry.objects.count() == 3


@pytest.mark.parametrize("table", ["provenance_merklenode", "provenance_checkpoint"])
def test_triggers_protect_nodes_and_checkpoints(table: str) -> None:
    fill(3)
    services.checkpoint_issue()

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw(f"DELETE FROM {table}", [])  # noqa: S608  (fixed table names)


def test_orm_updates_are_refused_too() -> None:
    fill(2)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LogEntry.objects.filter(index=1).update(actor_name="mallory")


def test_changing_an_entrys_bytes_is_reported_at_its_index() -> None:
    fill(30, checkpoint_every=10)
    entry = LogEntry.objects.get(index=17)
    forged = bytes(entry.entry).replace(b'"n":16', b'"n":99')
    assert forged != bytes(entry.entry)

    with triggers_suspended():
        raw('UPDATE provenance_logentry SET entry = %s WHERE "index" = 17', [forged])
    code, _, err = verify()

    assert code == 1
    assert "first bad index: 17" in err
    assert "entry 17: its content does not match the leaf hash" in err
    assert LogVerification.objects.get().first_bad_index == 17


def test_changing_a_queryable_column_is_reported() -> None:
    fill(12)

    with triggers_suspended():
        raw("UPDATE provenance_logentry SET actor_name = 'mallory' WHERE \"index\" = 5", [])
    code, _, err = verify()

    assert code == 1
    assert "entry 5: column actor_name is 'mallory' but the entry says 'dave'" in err


def test_rewriting_an_entry_and_its_whole_tree_is_caught_by_the_signed_checkpoint() -> None:
    fill(8)
    services.checkpoint_issue()
    entry = LogEntry.objects.get(index=3)
    forged = bytes(entry.entry).replace(b'"n":3', b'"n":4')
    from provenance.merkle import Frontier, leaf_hash

    with triggers_suspended():
        raw('UPDATE provenance_logentry SET entry = %s WHERE "index" = 3', [forged])
        raw("DELETE FROM provenance_merklenode", [])
        frontier = Frontier()
        for row in LogEntry.objects.order_by("index"):
            for level, index, node in frontier.append(leaf_hash(bytes(row.entry))):
                MerkleNode.objects.create(level=level, index=index, hash=node)
    code, _, err = verify()

    assert code == 1
    assert "checkpoint at size 9 does not match the entries" in err


def test_deleting_the_last_entries_fails_consistency_with_an_earlier_checkpoint() -> None:
    fill(20, checkpoint_every=10)
    with triggers_suspended():
        raw('DELETE FROM provenance_merklenode WHERE level = 0 AND "index" >= 15', [])
        raw('DELETE FROM provenance_logentry WHERE "index" >= 15', [])
    code, _, err = verify()

    assert code == 1
    assert "covers more entries than the 15 in the log: entries were deleted" in err
    assert "no consistency proof" in err or "not consistent" in err


def test_a_gap_in_the_indexes_is_reported() -> None:
    fill(10)
    with triggers_suspended():
        raw('DELETE FROM provenance_logentry WHERE "index" = 4', [])
    code, _, err = verify()

    assert code == 1
    assert "entry 4 is missing" in err


def test_a_forged_checkpoint_signature_is_reported() -> None:
    fill(5)
    checkpoint = services.checkpoint_issue()
    assert checkpoint is not None
    lines = checkpoint.note.split("\n")
    lines[1] = "5"  # claim a smaller tree under the old signature
    with triggers_suspended():
        raw("UPDATE provenance_checkpoint SET note = %s", ["\n".join(lines)])
    code, _, err = verify()

    assert code == 1
    assert "signature does not verify" in err
