"""Twenty callers at once on one promotion request (PostgreSQL, real threads, real commits).

Each thread has its own database connection, as web processes and Celery workers do, and
closes it when done. A barrier releases them together so their transactions really overlap.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from django.utils import timezone

from compliance import promotions, tasks
from compliance.choices import PromotionStatus
from compliance.models import Approval, ModelRiskTier, PromotionRequest
from compliance.policies import policy_save
from config.errors import Conflict
from provenance import predicates
from provenance.log_format import Actor
from provenance.models import Artifact, ArtifactKind, Attestation
from registry import mlflow_gateway, services
from registry.models import ModelVersion, RegisteredModel
from tests.compliance.test_promotions import STAGING, approved, events, request_by
from tests.conftest import MlflowStore
from tests.registry.test_hashing import log_model

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 20


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        if os.environ.get("REQUIRE_REAL_SERVICES"):
            pytest.fail("REQUIRE_REAL_SERVICES is set but DATABASE_URL is not PostgreSQL")
        pytest.skip("needs PostgreSQL (DATABASE_URL): SQLite runs one writer at a time")


@pytest.fixture(autouse=True)
def _keys_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


class Recorder:
    """A stand-in (or wrapper) that records its calls from many threads."""

    def __init__(self, wrapped: Callable[..., Any] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._wrapped = wrapped
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        with self._lock:
            self.calls.append(args)
        return self._wrapped(*args) if self._wrapped else None


def all_at_once(calls: list[Callable[[], Any]]) -> tuple[list[Any], list[BaseException]]:
    """Run each call in its own thread, released together; their results and errors."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=60)
            results.append(call())
        except BaseException as exc:  # reported to the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not any(thread.is_alive() for thread in threads), "a thread is still running"
    return results, errors


# --- deciding -----------------------------------------------------------------------------


@pytest.fixture
def pending(personas: dict[str, User]) -> PromotionRequest:
    """fraud v1 (by alice), asked for staging by grace: bob and carol must both approve."""
    artifact = Artifact.objects.create(
        digest="ab" * 32, kind=ArtifactKind.MODEL, name="fraud/1", size=1, created_at=timezone.now()
    )
    model = RegisteredModel.objects.create(name="fraud")
    version = ModelVersion.objects.create(
        registered_model=model, version=1, user_id="alice", model_artifact=artifact
    )
    policy_save(document=STAGING, actor=Actor.system("test"))
    return request_by(personas["grace"], version)


def decision_by(username: str, request_id: int) -> Callable[[], Approval]:
    def decide() -> Approval:
        approver = User.objects.get(username=username)  # in this thread's own connection
        return promotions.promotion_request_decide(
            request_id=request_id,
            approver=approver,
            decision="approve",
            comment="checked the evaluation report",
            password=f"{username}-Pa55word!",
        )

    return decide


def test_simultaneous_decisions_count_each_person_once_and_queue_execution_once(
    pending: PromotionRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued = Recorder()
    monkeypatch.setattr(tasks.promotion_execute, "delay", queued)
    approvers = ["bob", "carol"] * (THREADS // 2)  # each of the two, ten times over

    approvals, errors = all_at_once([decision_by(name, pending.pk) for name in approvers])

    assert sorted(a.approver_name for a in approvals) == ["bob", "carol"]
    assert len(errors) == THREADS - 2
    refused = {e.code for e in errors if isinstance(e, Conflict)}
    assert refused <= {"already_decided", "promotion_wrong_state"}, errors
    assert all(isinstance(e, Conflict) for e in errors), errors
    live = Approval.objects.filter(request=pending, voided_at__isnull=True)
    assert sorted(live.values_list("approver_name", flat=True)) == ["bob", "carol"]
    pending.refresh_from_db()
    assert pending.status == PromotionStatus.APPROVED
    assert pending.decided_at is not None
    assert sorted(e["actor"]["name"] for e in events("promotion.approved")) == ["bob", "carol"]
    assert len(events("promotion.quorum_met")) == 1
    assert Attestation.objects.filter(predicate_type=predicates.PREDICATE_APPROVAL).count() == 2
    assert queued.calls == [(pending.pk,)]


# --- executing ----------------------------------------------------------------------------


@pytest.fixture
def approved_request(mlflow_store: MlflowStore, personas: dict[str, User]) -> PromotionRequest:
    """fraud v1 logged to a real MLflow store and hashed; bob and carol approved staging."""
    version = log_model()
    assert services.model_version_hash(version_pk=version.pk) is not None
    ModelVersion.objects.filter(pk=version.pk).update(user_id="alice")
    ModelRiskTier.objects.create(
        registered_model=version.registered_model,
        tier="high",
        set_by_name="t",
        set_at=timezone.now(),
    )
    policy_save(document=STAGING, actor=Actor.system("test"))
    return approved(personas, ModelVersion.objects.select_related("run").get(pk=version.pk))


def test_simultaneous_executions_set_the_alias_once_and_the_others_do_nothing(
    approved_request: PromotionRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    alias_set = Recorder(mlflow_gateway.alias_set)
    monkeypatch.setattr(mlflow_gateway, "alias_set", alias_set)
    request_id = approved_request.pk

    outcomes, errors = all_at_once(
        [lambda: promotions.promotion_execute(request_id=request_id)] * THREADS
    )

    assert errors == []
    executed = [outcome for outcome in outcomes if outcome is not None]
    assert [r.status for r in executed] == [PromotionStatus.PROMOTED]
    assert outcomes.count(None) == THREADS - 1
    assert alias_set.calls == [("fraud", "staging", 1)]
    assert mlflow_gateway.alias_version("fraud", "staging") == 1
    approved_request.refresh_from_db()
    assert approved_request.status == PromotionStatus.PROMOTED
    assert approved_request.attempts == 1
    assert Attestation.objects.filter(predicate_type=predicates.PREDICATE_PROMOTION).count() == 1
    assert len(events("promotion.executing")) == 1
    assert len(events("promotion.promoted")) == 1
    assert len(events("model_version.reverified")) == 1  # only the executor re-checked
