"""The governance log: appends, canonical entries, checkpoints, events written with changes."""

from __future__ import annotations

import base64
import json
import os
import stat
from typing import Any

import pytest
import rfc8785
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from compliance import services as compliance_services
from compliance.models import SecurityRole
from provenance import log_keys, selectors, services
from provenance.log_format import Actor, Event
from provenance.merkle import leaf_hash, root_from_leaf_hashes, verify_consistency, verify_inclusion
from provenance.models import Checkpoint, LogEntry, LogKey, LogState, MerkleNode
from provenance.signed_note import NoteVerifier, open_note, parse_checkpoint
from registry import services as registry_services
from registry.choices import SyncTrigger
from tests.conftest import MlflowStore, make_user

pytestmark = pytest.mark.django_db


def event(number: int = 0, **overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "event_type": "test.event",
        "actor": Actor(user_id=7, name="dave", roles=("risk_owner", "compliance_officer")),
        "object_type": "thing",
        "object_id": str(number),
        "before": None,
        "after": {"n": number},
        "reason": "because",
        "evidence": ("sha256:" + "ab" * 32,),
    }
    fields.update(overrides)
    return Event(**fields)


def test_entries_get_gapless_indexes_from_zero() -> None:
    entries = [services.log_append(event(n)) for n in range(5)]

    assert [e.index for e in entries] == [0, 1, 2, 3, 4]
    assert LogState.objects.get().size == 5


def test_an_entry_is_canonical_json_with_every_field() -> None:
    entry = services.log_append(event(3))

    data = bytes(entry.entry)
    document = json.loads(data)
    assert rfc8785.dumps(document) == data
    assert document == {
        "index": 0,
        "type": "test.event",
        "time": document["time"],
        "actor": {"id": 7, "name": "dave", "roles": ["compliance_officer", "risk_owner"]},
        "request_id": "-",
        "object": {"type": "thing", "id": "3"},
        "before": None,
        "after": {"n": 3},
        "reason": "because",
        "evidence": ["sha256:" + "ab" * 32],
    }
    assert document["time"].endswith("Z")


def test_the_stored_tree_matches_the_rfc_definition() -> None:
    entries = [services.log_append(event(n)) for n in range(13)]

    leaves = [leaf_hash(bytes(e.entry)) for e in entries]
    stored_leaves = {
        i: bytes(h) for i, h in MerkleNode.objects.filter(level=0).values_list("index", "hash")
    }
    assert [stored_leaves[i] for i in range(13)] == leaves
    checkpoint = services.checkpoint_issue()  # appends the log key's creation first
    assert checkpoint is not None
    every_leaf = [leaf_hash(bytes(e.entry)) for e in LogEntry.objects.order_by("index")]
    assert every_leaf[:13] == leaves
    assert bytes(checkpoint.root_hash) == root_from_leaf_hashes(every_leaf)


def test_the_request_id_is_recorded(client: Any) -> None:
    from config.middleware import _current_request_id

    token = _current_request_id.set("req-0123456789")
    try:
        entry = services.log_append(event())
    finally:
        _current_request_id.reset(token)

    assert entry.request_id == "req-0123456789"
    assert json.loads(bytes(entry.entry))["request_id"] == "req-0123456789"


def test_non_finite_numbers_are_written_as_strings() -> None:
    entry = services.log_append(event(after={"loss": float("nan"), "cap": float("inf")}))

    assert json.loads(bytes(entry.entry))["after"] == {"loss": "nan", "cap": "inf"}


def test_an_event_rolls_back_with_the_change_it_records() -> None:
    def failing_change() -> None:
        with transaction.atomic():
            services.log_append(event())
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()

    assert not LogEntry.objects.exists()
    assert not MerkleNode.objects.exists()
    assert services.log_append(event()).index == 0


def test_an_append_inside_a_transaction_joins_it_without_a_savepoint() -> None:
    services.log_append(event(0))  # the state row exists from here on

    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        services.log_append(event(1))

    statements = [query["sql"].upper() for query in captured.captured_queries]
    assert not [sql for sql in statements if "SAVEPOINT" in sql]
    assert list(LogEntry.objects.order_by("index").values_list("index", flat=True)) == [0, 1]


def test_locking_the_state_row_is_one_query_once_it_exists() -> None:
    from provenance.services.log import _locked_state

    services.log_append(event(0))

    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        state = _locked_state()

    assert state.size == 1
    assert len(captured.captured_queries) == 1


def test_a_checkpoint_is_a_signed_note_that_verifies_with_the_published_key() -> None:
    for n in range(3):
        services.log_append(event(n))

    checkpoint = services.checkpoint_issue()

    assert checkpoint is not None
    key = LogKey.objects.get()
    body, signers = open_note(checkpoint.note, [NoteVerifier.from_verifier_key(key.verifier_key)])
    head = parse_checkpoint(body)
    assert signers == [key.name]
    assert head.size == checkpoint.tree_size == 4  # three events and the key's creation
    assert head.root_hash == bytes(checkpoint.root_hash)


def test_the_first_checkpoint_records_the_log_key_creation_in_the_log() -> None:
    services.log_append(event())
    services.checkpoint_issue()

    created = LogEntry.objects.get(event_type="log_key.created")
    after = json.loads(bytes(created.entry))["after"]
    assert after["verifier_key"] == LogKey.objects.get().verifier_key


def test_no_new_checkpoint_when_nothing_was_appended() -> None:
    services.log_append(event())
    first = services.checkpoint_issue()

    again = services.checkpoint_issue()

    assert again == first
    assert Checkpoint.objects.count() == 1


def test_a_new_logs_first_checkpoint_covers_the_key_creation() -> None:
    checkpoint = services.checkpoint_issue()

    assert checkpoint is not None
    assert checkpoint.tree_size == 1
    assert LogEntry.objects.get().event_type == "log_key.created"


def test_the_log_key_file_is_private(settings: Any, tmp_path: Any) -> None:
    settings.VAR_DIR = tmp_path
    log_keys.reset_cache()
    try:
        log_keys.log_signer()
        path = tmp_path / "keys" / "log" / "signer.key"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert "PRIVATE+KEY" in path.read_text()
    finally:
        log_keys.reset_cache()


def test_the_private_key_never_reaches_the_database() -> None:
    services.log_append(event())
    checkpoint = services.checkpoint_issue()
    assert checkpoint is not None
    secret = log_keys.log_signer().signer_key

    stored = (
        [k.verifier_key for k in LogKey.objects.all()]
        + [checkpoint.note]
        + [bytes(e.entry).decode() for e in LogEntry.objects.all()]
    )

    assert all("PRIVATE" not in text and secret not in text for text in stored)


def test_rotating_the_log_key_is_logged_and_old_checkpoints_still_verify(
    settings: Any, tmp_path: Any
) -> None:
    services.log_append(event())
    old = services.checkpoint_issue()
    settings.LOG_SIGNING_KEY_FILE = str(tmp_path / "new.key")
    from provenance.signed_note import NoteSigner

    (tmp_path / "new.key").write_text(NoteSigner.generate(settings.LOG_ORIGIN).signer_key)
    log_keys.reset_cache()
    try:
        services.log_append(event(1))
        new = services.checkpoint_issue()
    finally:
        log_keys.reset_cache()

    assert old is not None
    assert new is not None
    assert old.key_id != new.key_id
    assert LogEntry.objects.filter(event_type="log_key.rotated").exists()
    assert LogKey.objects.get(pk=old.key_id).retired_at is not None
    report = services.log_verify()
    assert report.ok, report.problems


def test_inclusion_and_consistency_proofs_from_the_database_verify() -> None:
    entries = [services.log_append(event(n)) for n in range(21)]
    leaves = [leaf_hash(bytes(e.entry)) for e in entries]

    for size in (1, 2, 7, 8, 13, 21):
        root = root_from_leaf_hashes(leaves[:size])
        for index in range(size):
            path = selectors.inclusion(index=index, tree_size=size)
            assert verify_inclusion(leaves[index], index, size, path, root)
        for older in range(1, size + 1):
            proof = selectors.consistency(first=older, second=size)
            assert verify_consistency(
                older, size, root_from_leaf_hashes(leaves[:older]), root, proof
            )


def test_granting_a_role_writes_a_log_entry_with_the_actors_roles() -> None:
    dave = make_user("dave")
    alice = make_user("alice")
    officer = SecurityRole.objects.get(key="compliance_officer")
    compliance_services.role_grant(user=dave, role=officer, acting_user=None, actor_name="setup")

    assignment = compliance_services.role_grant(
        user=alice,
        role=SecurityRole.objects.get(key="model_developer"),
        acting_user=dave,
        reason="new hire",
    )

    entry = LogEntry.objects.get(event_type="role.granted", object_id=str(assignment.pk))
    document = json.loads(bytes(entry.entry))
    assert document["actor"] == {"id": dave.pk, "name": "dave", "roles": ["compliance_officer"]}
    assert document["after"] == {
        "user": "alice",
        "role": "model_developer",
        "registered_model": None,
        "active": True,
    }
    assert document["reason"] == "new hire"


def test_revoking_a_role_writes_a_log_entry(superuser: User) -> None:
    alice = make_user("alice")
    role = SecurityRole.objects.get(key="model_developer")
    compliance_services.role_grant(user=alice, role=role, acting_user=superuser)

    compliance_services.role_revoke(user=alice, role=role, acting_user=superuser, reason="left")

    entry = LogEntry.objects.get(event_type="role.revoked")
    document = json.loads(bytes(entry.entry))
    assert document["before"]["active"] is True
    assert document["after"]["active"] is False
    assert document["reason"] == "left"


def test_a_refused_grant_writes_nothing_to_the_log(superuser: User) -> None:
    alice = make_user("alice")
    role = SecurityRole.objects.get(key="model_developer")
    compliance_services.role_grant(user=alice, role=role, acting_user=superuser)
    size = selectors.log_size()

    with pytest.raises(compliance_services.RoleAlreadyGranted):
        compliance_services.role_grant(user=alice, role=role, acting_user=superuser)

    assert selectors.log_size() == size


def test_mlflow_sync_changes_are_logged(mlflow_store: MlflowStore) -> None:
    mlflow_store.version("fraud", datasets=[("transactions", "abcd1234", "training")])
    mlflow_store.client.set_registered_model_alias("fraud", "production", "1")

    registry_services.mlflow_sync(trigger=SyncTrigger.MANUAL)

    types = list(LogEntry.objects.values_list("event_type", flat=True))
    assert types.count("mlflow.registered_model.created") == 1
    assert types.count("mlflow.model_version.created") == 1
    assert types.count("mlflow.run.created") == 1
    assert types.count("mlflow.dataset.created") == 1
    assert types.count("mlflow.run_input.created") == 1
    moved = LogEntry.objects.get(event_type="mlflow.alias.moved")
    document = json.loads(bytes(moved.entry))
    assert document["object"] == {"type": "alias", "id": "fraud@production"}
    assert (document["before"], document["after"]) == (None, {"version": 1})
    assert document["actor"]["name"] == "mlflow-sync:manual"


def test_an_unchanged_sync_logs_nothing(mlflow_store: MlflowStore) -> None:
    mlflow_store.version("fraud")
    registry_services.mlflow_sync(trigger=SyncTrigger.MANUAL)
    size = selectors.log_size()

    registry_services.mlflow_sync(trigger=SyncTrigger.MANUAL)

    assert selectors.log_size() == size


def test_an_updated_run_logs_before_and_after(mlflow_store: MlflowStore) -> None:
    run_id = mlflow_store.run(metrics={"auc": 0.8})
    mlflow_store.version("fraud", run_id=run_id)
    registry_services.mlflow_sync(trigger=SyncTrigger.MANUAL)
    mlflow_store.client.log_metric(run_id, "auc", 0.9)

    registry_services.mlflow_sync(trigger=SyncTrigger.MANUAL)

    document = json.loads(bytes(LogEntry.objects.get(event_type="mlflow.run.updated").entry))
    assert document["before"] == {"metrics": {"auc": 0.8}}
    assert document["after"] == {"metrics": {"auc": 0.9}}


def test_checkpoint_roots_are_base64_in_the_note() -> None:
    services.log_append(event())
    checkpoint = services.checkpoint_issue()
    assert checkpoint is not None
    lines = checkpoint.note.split("\n")
    assert base64.b64decode(lines[2]) == bytes(checkpoint.root_hash)


def test_a_checkpoint_is_queued_every_n_entries(
    settings: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from provenance import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.log_checkpoint, "delay", lambda: queued.append(1))
    settings.LOG_CHECKPOINT_EVERY_ENTRIES = 5
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(12):
            services.log_append(event(n))

    assert len(queued) == 2


def test_beat_issues_checkpoints_periodically(settings: Any) -> None:
    schedule = settings.CELERY_BEAT_SCHEDULE["log-checkpoint"]
    assert schedule["task"] == "provenance.tasks.log_checkpoint"
    assert schedule["schedule"] == settings.LOG_CHECKPOINT_INTERVAL


def test_the_checkpoint_task_signs_the_current_head() -> None:
    from provenance import tasks

    services.log_append(event())

    assert tasks.log_checkpoint.apply().get() == 2
