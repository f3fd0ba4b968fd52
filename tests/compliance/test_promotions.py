"""The promotion workflow: policies, separation of duties, quorum, digest binding, execution."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from compliance import promotions, tasks
from compliance.choices import IncidentKind, PromotionStatus
from compliance.models import (
    Approval,
    Incident,
    ModelRiskTier,
    Notification,
    PromotionRequest,
    SecurityRole,
)
from compliance.policies import policy_save
from compliance.services import role_grant
from config.errors import Conflict, Forbidden, InvalidInput
from provenance import predicates
from provenance.log_format import Actor
from provenance.models import Artifact, ArtifactKind, Attestation, LineageEdge, LogEntry
from registry import mlflow_gateway, services
from registry.choices import AliasChangeSource, SyncTrigger
from registry.mlflow_gateway import MlflowUnavailable
from registry.models import AliasHistory, ModelVersion, RegisteredModel
from tests.conftest import MlflowStore
from tests.registry.test_hashing import log_model

pytestmark = pytest.mark.django_db
STAGING: dict[str, Any] = {
    "alias": "staging",
    "risk_tier": "high",
    "approvals": [
        {"roles": ["model_validator"], "count": 1},
        {"roles": ["security_architect", "security_operations"], "count": 1},
    ],
    "gates": {"require_scan_clean": False},
}


@pytest.fixture(autouse=True)
def _keys_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


@pytest.fixture
def staging_policy() -> None:
    policy_save(document=STAGING, actor=Actor.system("test"))


@pytest.fixture
def version(personas: dict[str, User]) -> ModelVersion:
    """fraud v1, authored by alice (the model developer), hashed by the registry."""
    artifact = Artifact.objects.create(
        digest="ab" * 32, kind=ArtifactKind.MODEL, name="fraud/1", size=1, created_at=timezone.now()
    )
    model = RegisteredModel.objects.create(name="fraud")
    return ModelVersion.objects.create(
        registered_model=model, version=1, user_id="alice", model_artifact=artifact
    )


def request_by(user: User, version: ModelVersion, alias: str = "staging") -> PromotionRequest:
    return promotions.promotion_request_create(
        version=version, alias=alias, reason="better recall on holdout", requester=user
    )


def decide(request: PromotionRequest, user: User, decision: str = "approve") -> Approval:
    return promotions.promotion_request_decide(
        request_id=request.pk,
        approver=user,
        decision=decision,
        comment="checked the evaluation report",
        password=f"{user.username}-Pa55word!",
    )


def events(kind: str) -> list[dict[str, Any]]:
    return [json.loads(bytes(e.entry)) for e in LogEntry.objects.filter(event_type=kind)]


# --- requesting ---------------------------------------------------------------------------


def test_a_request_snapshots_the_policy_and_binds_the_digest(
    personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)

    assert request.status == PromotionStatus.PENDING
    assert request.model_digest == "ab" * 32
    assert request.risk_tier == "high"  # unclassified models are treated as high risk
    assert request.policy["approvals"] == STAGING["approvals"]
    assert [e["after"]["status"] for e in events("promotion.submitted")] == ["pending"]
    policy_save(
        document={**STAGING, "approvals": STAGING["approvals"][:1]}, actor=Actor.system("t")
    )
    request.refresh_from_db()
    assert len(request.policy["approvals"]) == 2


def test_the_author_may_not_request_their_own_version(
    personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    with pytest.raises(Forbidden) as refused:
        request_by(personas["alice"], version)
    assert refused.value.code == "sod_requester_is_author"
    assert not PromotionRequest.objects.exists()


@pytest.mark.parametrize(
    ("setup", "error", "code"),
    [
        ("no_role", Forbidden, "no_role"),
        ("not_hashed", Conflict, "not_hashed"),
        ("no_policy", InvalidInput, "no_policy"),
        ("bad_alias", InvalidInput, "promotion_bad_alias"),
        ("busy", Conflict, "promotion_open"),
    ],
)
def test_requests_that_cannot_be_made(
    personas: dict[str, User],
    *,
    version: ModelVersion,
    staging_policy: None,
    outsider: User,
    setup: str,
    error: type[Exception],
    code: str,
) -> None:
    requester, alias = personas["grace"], "staging"
    if setup == "no_role":
        requester = outsider
    elif setup == "not_hashed":
        ModelVersion.objects.update(model_artifact=None)
    elif setup == "no_policy":
        alias = "canary"
    elif setup == "bad_alias":
        alias = "latest"
    elif setup == "busy":
        request_by(personas["grace"], version)
    before = PromotionRequest.objects.count()

    with pytest.raises(error) as refused:
        request_by(requester, version, alias)

    assert getattr(refused.value, "code", None) == code
    assert PromotionRequest.objects.count() == before


def test_approvers_are_notified(
    personas: dict[str, User],
    version: ModelVersion,
    staging_policy: None,
    django_capture_on_commit_callbacks: Any,
    mailoutbox: list[Any],
) -> None:
    personas["bob"].email = "bob@example.org"
    personas["bob"].save()
    with (
        mock.patch.object(tasks.notifications_email, "delay") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        request_by(personas["grace"], version)

    notified = set(Notification.objects.values_list("user__username", flat=True))
    # validators and security people; not the requester, not the author
    assert notified == {"bob", "carol", "heidi"}
    assert mailoutbox == []  # e-mail goes out from the worker, not from the request
    [(ids,)] = [call.args for call in queued.call_args_list]
    tasks.notifications_email(ids)  # as the Celery worker runs it
    assert [m.to for m in mailoutbox] == [["bob@example.org"]]


# --- deciding -----------------------------------------------------------------------------


def test_quorum_of_two_roles_approves_and_queues_execution(
    personas: dict[str, User],
    version: ModelVersion,
    staging_policy: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    request = request_by(personas["grace"], version)
    decide(request, personas["bob"])
    request.refresh_from_db()
    assert request.status == PromotionStatus.PENDING

    with (
        mock.patch.object(tasks.promotion_execute, "delay") as execute,
        django_capture_on_commit_callbacks(execute=True),
    ):
        decide(request, personas["carol"])

    request.refresh_from_db()
    assert request.status == PromotionStatus.APPROVED
    execute.assert_called_once_with(request.pk)
    assert promotions.quorum_of(request).met


def test_one_person_counts_once_whatever_roles_they_hold(
    personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    bob = personas["bob"]
    role_grant(
        user=bob,
        role=SecurityRole.objects.get(key="security_architect"),
        acting_user=None,
        actor_name="test",
    )
    request = request_by(personas["grace"], version)

    decide(request, bob)

    request.refresh_from_db()
    assert request.status == PromotionStatus.PENDING
    assert promotions.quorum_of(request).describe_missing() == [
        "1 more security_architect or security_operations"
    ]


def test_each_decision_is_a_signed_attestation_bound_to_the_digest(
    personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)

    approval = decide(request, personas["bob"])

    attestation = Attestation.objects.get(envelope_digest=approval.attestation_digest)
    assert attestation.predicate_type == predicates.PREDICATE_APPROVAL
    assert attestation.signing_key is not None
    assert attestation.statement["subject"][0]["digest"] == {"sha256": "ab" * 32}
    predicate = attestation.statement["predicate"]
    assert predicate["approver"]["roles"] == ["model_validator"]
    assert predicate["decision"] == "approve"
    [logged] = events("promotion.approved")
    assert logged["actor"]["name"] == "bob"
    assert f"sha256:{attestation.envelope_digest}" in logged["evidence"]


def test_a_rejection_ends_the_request(
    personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)

    decide(request, personas["carol"], "reject")

    request.refresh_from_db()
    assert request.status == PromotionStatus.REJECTED
    with pytest.raises(Conflict):
        decide(request, personas["bob"])


@pytest.mark.parametrize(
    ("who", "password", "comment", "code"),
    [
        ("bob", "wrong", "ok", "step_up_failed"),
        ("bob", None, "  ", "comment_required"),
        ("grace", None, "ok", "sod_violation"),  # the requester
        ("dave", None, "ok", "not_an_approver"),  # compliance officer: not in this policy
    ],
)
def test_decisions_that_are_refused(
    personas: dict[str, User],
    *,
    version: ModelVersion,
    staging_policy: None,
    who: str,
    password: str | None,
    comment: str,
    code: str,
) -> None:
    request = request_by(personas["grace"], version)
    user = personas[who]

    with pytest.raises((Forbidden, InvalidInput)) as refused:
        promotions.promotion_request_decide(
            request_id=request.pk,
            approver=user,
            decision="approve",
            comment=comment,
            password=password or f"{who}-Pa55word!",
        )

    assert refused.value.code == code
    assert not Approval.objects.exists()
    if code == "step_up_failed":
        assert events("promotion.step_up_failed")[0]["actor"]["name"] == "bob"


def test_the_versions_author_may_not_approve(
    personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    role_grant(
        user=personas["alice"],
        role=SecurityRole.objects.get(key="model_validator"),
        acting_user=None,
        actor_name="test",
    )
    request = request_by(personas["grace"], version)
    with pytest.raises(Forbidden) as refused:
        decide(request, personas["alice"])
    assert refused.value.code == "sod_violation"


def test_a_changed_digest_voids_approvals_and_fails_the_request(
    personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)
    decide(request, personas["bob"])

    promotions.approvals_void_for_digest(version=version, digest="cd" * 32)

    request.refresh_from_db()
    assert request.status == PromotionStatus.FAILED
    assert "sha256:" + "cd" * 32 in request.failure_reason
    assert Approval.objects.get().void_reason == "model digest changed"


def test_requests_and_approvals_expire(
    personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)
    decide(request, personas["bob"])
    Approval.objects.update(decided_at=timezone.now() - timedelta(hours=73))

    promotions.promotion_requests_expire()
    assert Approval.objects.get().voided_at is not None
    PromotionRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert promotions.promotion_requests_expire() == 1

    request.refresh_from_db()
    assert request.status == PromotionStatus.EXPIRED


def test_withdrawal_is_the_requesters(
    personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)
    with pytest.raises(Forbidden):
        promotions.promotion_request_withdraw(
            request_id=request.pk, user=personas["bob"], reason=""
        )
    promotions.promotion_request_withdraw(request_id=request.pk, user=personas["grace"], reason="x")
    request.refresh_from_db()
    assert request.status == PromotionStatus.WITHDRAWN


def test_break_glass_is_for_security_operations_and_opens_a_review(
    personas: dict[str, User],
    version: ModelVersion,
    staging_policy: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with pytest.raises(Forbidden):
        promotions.promotion_break_glass(
            version=version,
            alias="staging",
            reason="outage",
            user=personas["grace"],
            password="grace-Pa55word!",
        )
    with (
        mock.patch.object(tasks.promotion_execute, "delay") as execute,
        django_capture_on_commit_callbacks(execute=True),
    ):
        request = promotions.promotion_break_glass(
            version=version,
            alias="staging",
            reason="roll back the bad model",
            user=personas["heidi"],
            password="heidi-Pa55word!",
        )

    assert request.break_glass
    assert request.status == PromotionStatus.APPROVED
    execute.assert_called_once_with(request.pk)
    incident = Incident.objects.get()
    assert incident.kind == IncidentKind.BREAK_GLASS
    assert events("promotion.break_glass")[0]["actor"]["name"] == "heidi"


# --- execution against a real MLflow store ------------------------------------------------


@pytest.fixture
def mlflow_version(mlflow_store: MlflowStore, personas: dict[str, User]) -> ModelVersion:
    version = log_model()
    hashed = services.model_version_hash(version_pk=version.pk)
    assert hashed is not None
    ModelVersion.objects.filter(pk=version.pk).update(user_id="alice")
    ModelRiskTier.objects.create(
        registered_model=version.registered_model,
        tier="high",
        set_by_name="t",
        set_at=timezone.now(),
    )
    policy_save(document=STAGING, actor=Actor.system("test"))
    return ModelVersion.objects.select_related("run").get(pk=version.pk)


def approved(personas: dict[str, User], version: ModelVersion) -> PromotionRequest:
    if version.run is not None:
        # the MLflow run's user is an author too; the test runner's login is not a persona
        assert version.run.user not in personas
    request = request_by(personas["grace"], version)
    with mock.patch.object(tasks.promotion_execute, "delay"):
        decide(request, personas["bob"])
        decide(request, personas["carol"])
    request.refresh_from_db()
    assert request.status == PromotionStatus.APPROVED
    return request


def test_execution_sets_the_alias_in_mlflow_and_records_everything(
    mlflow_store: MlflowStore, mlflow_version: ModelVersion, personas: dict[str, User]
) -> None:
    request = approved(personas, mlflow_version)

    promotions.promotion_execute(request_id=request.pk)

    request.refresh_from_db()
    assert request.status == PromotionStatus.PROMOTED
    assert mlflow_gateway.alias_version("fraud", "staging") == 1
    history = AliasHistory.objects.get(alias="staging")
    assert history.source == AliasChangeSource.REGISTRY
    assert history.changed_by == "grace"
    promotion = Attestation.objects.get(predicate_type=predicates.PREDICATE_PROMOTION)
    assert [a["approver"] for a in promotion.statement["predicate"]["approvals"]] == [
        "bob",
        "carol",
    ]
    edge = LineageEdge.objects.get(attestation=promotion)
    assert (edge.upstream.key, edge.relation, edge.downstream.key) == (
        "fraud/1",
        "promoted-to",
        "fraud@staging",
    )
    services.mlflow_sync(trigger=SyncTrigger.MANUAL)  # sees the alias: the registry's own move
    assert not Incident.objects.exists()
    assert AliasHistory.objects.count() == 1


def test_execution_waits_while_mlflow_is_down(
    mlflow_store: MlflowStore, mlflow_version: ModelVersion, personas: dict[str, User]
) -> None:
    request = approved(personas, mlflow_version)

    with (
        mock.patch.object(mlflow_gateway, "alias_set", side_effect=MlflowUnavailable("down")),
        pytest.raises(MlflowUnavailable),
    ):
        promotions.promotion_execute(request_id=request.pk)
    request.refresh_from_db()
    assert request.status == PromotionStatus.EXECUTING
    assert mlflow_gateway.alias_version("fraud", "staging") is None

    promotions.promotion_execute(request_id=request.pk)  # the retry, MLflow back
    request.refresh_from_db()
    assert request.status == PromotionStatus.PROMOTED


def test_files_changed_before_execution_fail_it(
    mlflow_store: MlflowStore, mlflow_version: ModelVersion, personas: dict[str, User]
) -> None:
    request = approved(personas, mlflow_version)
    location = mlflow_store.client.get_model_version_download_uri("fraud", "1")
    with (Path(location) / "MLmodel").open("a") as handle:
        handle.write("# swapped\n")

    promotions.promotion_execute(request_id=request.pk)

    request.refresh_from_db()
    assert request.status == PromotionStatus.FAILED
    assert "re-verification failed" in request.failure_reason
    assert mlflow_gateway.alias_version("fraud", "staging") is None


def test_an_alias_moved_in_mlflow_directly_is_an_incident_and_can_be_reverted(
    mlflow_store: MlflowStore,
    mlflow_version: ModelVersion,
    personas: dict[str, User],
    django_capture_on_commit_callbacks: Any,
) -> None:
    policy_save(document={**STAGING, "revert_out_of_band": True}, actor=Actor.system("t"))
    mlflow_store.client.set_registered_model_alias("fraud", "staging", "1")

    with (
        mock.patch.object(tasks.alias_revert, "delay") as revert,
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.mlflow_sync(trigger=SyncTrigger.MANUAL)

    incident = Incident.objects.get()
    assert incident.kind == IncidentKind.OUT_OF_BAND_ALIAS
    assert incident.details["to_version"] == 1
    assert events("incident.opened")[0]["after"]["revert"] is True
    revert.assert_called_once_with("fraud", "staging", None, incident.pk)
    assert set(Notification.objects.values_list("user__username", flat=True)) == {"heidi"}

    promotions.alias_revert(
        model_name="fraud", alias="staging", version=None, incident_id=incident.pk
    )

    assert mlflow_gateway.alias_version("fraud", "staging") is None
    services.mlflow_sync(trigger=SyncTrigger.MANUAL)
    assert Incident.objects.count() == 1  # the revert is the registry's own move


def test_deciding_on_an_overdue_request_expires_it_for_good(
    personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)
    PromotionRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(Conflict) as refused:
        decide(request, personas["bob"])

    assert refused.value.code == "promotion_expired"
    request.refresh_from_db()
    assert request.status == PromotionStatus.EXPIRED
    assert len(events("promotion.expired")) == 1


def test_break_glass_supersedes_open_requests_and_notifies_reviewers_not_approvers(
    personas: dict[str, User],
    version: ModelVersion,
    staging_policy: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    pending = request_by(personas["grace"], version)
    Notification.objects.all().delete()

    with (
        mock.patch.object(tasks.promotion_execute, "delay"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        promotions.promotion_break_glass(
            version=version,
            alias="staging",
            reason="the production model leaks data",
            user=personas["heidi"],
            password="heidi-Pa55word!",
        )

    pending.refresh_from_db()
    assert pending.status == PromotionStatus.WITHDRAWN
    assert pending.failure_reason == "superseded by a break-glass promotion"
    notified = set(Notification.objects.values_list("user__username", flat=True))
    assert notified == {"heidi", "dave"}  # security operations and compliance: the reviewers
    assert events("incident.opened")[0]["after"]["kind"] == "break_glass"


def test_incidents_are_resolved_by_reviewers_only(
    personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    from compliance.incidents import incident_resolve

    incident = Incident.objects.create(
        kind=IncidentKind.OUT_OF_BAND_ALIAS,
        registered_model=version.registered_model,
        summary="moved",
        opened_at=timezone.now(),
    )
    with pytest.raises(Forbidden):
        incident_resolve(incident_id=incident.pk, user=personas["bob"], resolution="fine")

    incident_resolve(incident_id=incident.pk, user=personas["dave"], resolution="approved after")

    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert incident.resolved_by_name == "dave"
