"""Promotion requests over the API: list and detail narrowed to what one may see, requesting,
approving to a quorum, rejecting, withdrawing, break-glass — and every refusal with its code.

The version is authored by ``zed``, who holds no role, so separation of duties only comes in
where a test says so. The policies are the default catalogue: ``fraud`` is unclassified, hence
high risk, so ``staging`` needs a Model Validator and a Security Architect or Security
Operations, and ``production`` adds a Compliance Officer and a Risk Owner.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from compliance import promotions, tasks, tokens
from compliance.choices import IncidentKind, PromotionStatus
from compliance.models import ApiToken, Approval, Incident, PromotionRequest, SecurityRole
from compliance.policies import DEFAULT_POLICIES
from compliance.services import role_revoke
from provenance.models import Artifact, ArtifactKind, LogEntry
from registry.models import ModelVersion, RegisteredModel
from tests.api.conftest import bearer, grant, signed_in
from tests.conftest import PERSONAS, make_user

pytestmark = pytest.mark.django_db

PROMOTIONS = "/api/v1/promotions"
REASON = "better recall on the holdout set"
COMMENT = "checked the evaluation report"


def make_version(
    name: str = "fraud", number: int = 1, digest: str = "ab" * 32, author: str = "zed"
) -> ModelVersion:
    artifact = Artifact.objects.create(
        digest=digest, kind=ArtifactKind.MODEL, name=f"{name}/{number}", size=1,
        created_at=timezone.now(),
    )  # fmt: skip
    model, _ = RegisteredModel.objects.get_or_create(name=name)
    return ModelVersion.objects.create(
        registered_model=model, version=number, user_id=author, model_artifact=artifact
    )


@pytest.fixture
def version(personas: dict[str, User]) -> ModelVersion:
    return make_version()


@pytest.fixture
def pending(personas: dict[str, User], version: ModelVersion) -> PromotionRequest:
    """fraud v1 → staging, requested by grace (MLOps Engineer)."""
    return request_by(personas["grace"], version)


@pytest.fixture
def execution() -> Iterator[mock.MagicMock]:
    with mock.patch.object(tasks.promotion_execute, "delay") as delay:
        yield delay


def request_by(user: User, version: ModelVersion, alias: str = "staging") -> PromotionRequest:
    return promotions.promotion_request_create(
        version=version, alias=alias, reason=REASON, requester=user
    )


def password_of(user: User) -> str:
    return f"{user.username}-Pa55word!"


def url(promotion: PromotionRequest, action: str = "") -> str:
    return f"{PROMOTIONS}/{promotion.pk}" + (f"/{action}" if action else "")


def post(client: Client, path: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(path, body, content_type="application/json", headers=headers)


def decide(
    client: Client,
    promotion: PromotionRequest,
    user: User,
    action: str = "approve",
    password: str | None = None,
    **headers: str,
) -> Any:
    body = {"comment": COMMENT, "password": password or password_of(user)}
    return post(client, url(promotion, action), body, **headers)


def refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert body["detail"]


def logged(event_type: str) -> int:
    return LogEntry.objects.filter(event_type=event_type).count()


# --- the list ---------------------------------------------------------------------------


def test_the_list_shows_requests_newest_first_with_their_progress(
    client: Client, personas: dict[str, User], pending: PromotionRequest
) -> None:
    promotions.promotion_request_decide(
        request_id=pending.pk, approver=personas["bob"], decision="approve", comment=COMMENT,
        password=password_of(personas["bob"]),
    )  # fmt: skip
    newer = request_by(personas["grace"], make_version("churn", 1, "cd" * 32))

    listed = signed_in(client, personas["dave"]).get(PROMOTIONS).json()

    assert [row["id"] for row in listed["results"]] == [newer.pk, pending.pk]
    row = listed["results"][1]
    assert row["model"] == "fraud"
    assert row["version"] == 1
    assert row["alias"] == "staging"
    assert row["status"] == "pending"
    assert row["digest"] == f"sha256:{'ab' * 32}"
    assert row["requested_by"] == "grace"
    assert row["progress"] == {
        "counted": 1,
        "required": 2,
        "missing": ["1 more security_architect or security_operations"],
        "summary": "1 of 2 approvals",
    }
    assert row["url"].endswith(f"/api/v1/promotions/{pending.pk}")


def test_an_outsider_lists_nothing(
    client: Client, pending: PromotionRequest, outsider: User
) -> None:
    response = signed_in(client, outsider).get(PROMOTIONS)

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_a_role_on_one_model_lists_that_models_requests_only(
    client: Client, personas: dict[str, User], pending: PromotionRequest
) -> None:
    request_by(personas["grace"], make_version("churn", 1, "cd" * 32))
    viewer = make_user("vera")
    grant(viewer, "model_validator", RegisteredModel.objects.get(name="churn"))

    listed = signed_in(client, viewer).get(PROMOTIONS).json()["results"]

    assert [row["model"] for row in listed] == ["churn"]


def test_the_requester_keeps_seeing_their_request_after_losing_their_role(
    client: Client, personas: dict[str, User], version: ModelVersion
) -> None:
    requester = make_user("ivan")
    grant(requester, "mlops_engineer", version.registered_model)
    promotion = request_by(requester, version)
    role_revoke(
        user=requester,
        role=SecurityRole.objects.get(key="mlops_engineer"),
        registered_model=version.registered_model,
        acting_user=None,
        actor_name="test",
    )
    signed_in(client, requester)

    assert [row["id"] for row in client.get(PROMOTIONS).json()["results"]] == [promotion.pk]
    assert client.get(url(promotion)).status_code == 200  # as on the request's web page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["churn", "fraud-production", "fraud-staging"]),
        ({"status": "withdrawn"}, ["fraud-staging"]),
        ({"status": "pending"}, ["fraud-production"]),
        ({"status": "approved"}, ["churn"]),
        ({"model": "fraud"}, ["fraud-production", "fraud-staging"]),
        ({"alias": "production"}, ["fraud-production"]),
        ({"break_glass": "true"}, ["churn"]),
        ({"break_glass": "false"}, ["fraud-production", "fraud-staging"]),
        ({"model": "nope"}, []),
    ],
)
def test_the_list_is_filtered(
    client: Client,
    personas: dict[str, User],
    *,
    version: ModelVersion,
    execution: mock.MagicMock,
    query: dict[str, str],
    expected: list[str],
) -> None:
    staging = request_by(personas["grace"], version)
    promotions.promotion_request_withdraw(request_id=staging.pk, user=personas["grace"], reason="")
    request_by(personas["grace"], version, "production")
    churn = make_version("churn", 1, "cd" * 32)
    promotions.promotion_break_glass(
        version=churn, alias="staging", reason="outage", user=personas["heidi"],
        password=password_of(personas["heidi"]),
    )  # fmt: skip
    names = {"fraud": lambda row: f"fraud-{row['alias']}", "churn": lambda row: "churn"}

    listed = signed_in(client, personas["dave"]).get(PROMOTIONS, query).json()["results"]

    assert sorted(names[row["model"]](row) for row in listed) == expected


def test_a_bad_filter_value_is_refused_with_the_field(
    client: Client, personas: dict[str, User]
) -> None:
    response = signed_in(client, personas["dave"]).get(PROMOTIONS, {"status": "done"})

    refused(response, 400, "invalid")
    assert "status" in response.json()["errors"]


def test_the_list_is_cursor_paginated(client: Client, personas: dict[str, User]) -> None:
    made = [
        request_by(personas["grace"], make_version(f"m{n}", 1, f"{n:064x}")).pk for n in range(3)
    ]
    signed_in(client, personas["dave"])

    first = client.get(PROMOTIONS, {"page_size": 2}).json()
    second = client.get(first["next"]).json()

    assert [row["id"] for row in first["results"] + second["results"]] == made[::-1]
    assert second["next"] is None
    refused(client.get(PROMOTIONS, {"cursor": "bogus"}), 400, "invalid_cursor")


def test_the_list_query_count_does_not_grow_with_requests(
    client: Client, personas: dict[str, User], django_assert_max_num_queries: Any
) -> None:
    signed_in(client, personas["dave"])

    def requests(count: int) -> None:
        start = PromotionRequest.objects.count()
        for n in range(start, start + count):
            promotion = request_by(personas["grace"], make_version(f"m{n}", 1, f"{n:064x}"))
            promotions.promotion_request_decide(
                request_id=promotion.pk, approver=personas["carol"], decision="approve",
                comment=COMMENT, password=password_of(personas["carol"]),
            )  # fmt: skip

    requests(1)
    with django_assert_max_num_queries(10) as few:
        client.get(PROMOTIONS)
    requests(5)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(PROMOTIONS)
    assert len(response.json()["results"]) == 6


# --- one request ------------------------------------------------------------------------


def test_the_detail_shows_policy_approvals_missing_gates_timeline_and_links(
    client: Client, personas: dict[str, User], pending: PromotionRequest
) -> None:
    bob = personas["bob"]
    promotions.promotion_request_decide(
        request_id=pending.pk, approver=bob, decision="approve", comment=COMMENT,
        password=password_of(bob),
    )  # fmt: skip

    body = signed_in(client, personas["grace"]).get(url(pending)).json()

    assert body["status"] == "pending"
    assert (body["model"], body["version"], body["alias"]) == ("fraud", 1, "staging")
    assert body["digest"] == f"sha256:{'ab' * 32}"
    assert body["risk_tier"] == "high"  # unclassified
    assert body["reason"] == REASON
    assert body["policy"]["approvals"] == [
        {"roles": ["model_validator"], "count": 1},
        {"roles": ["security_architect", "security_operations"], "count": 1},
    ]
    [approval] = body["approvals"]
    assert approval["approver"] == "bob"
    assert approval["decision"] == "approve"
    assert approval["roles"] == ["model_validator"]
    assert approval["counts_toward"] == 0
    assert approval["comment"] == COMMENT
    assert approval["voided_at"] is None
    assert approval["digest"] == f"sha256:{'ab' * 32}"
    assert "/api/v1/attestations/" in approval["attestation_url"]
    assert body["progress"]["missing"] == ["1 more security_architect or security_operations"]
    assert {gate["gate"] for gate in body["gates"]} >= {"model_digest_unchanged", "scan_clean"}
    assert [event["event_type"] for event in body["timeline"]] == [
        "promotion.requested",
        "promotion.submitted",
        "promotion.approved",
    ]
    assert body["timeline"][2]["actor"] == "bob"
    assert body["you_may"] == {"decide": False, "withdraw": True}  # grace requested it
    assert body["web_url"].endswith(f"/governance/promotions/{pending.pk}/")
    assert body["version_url"].endswith("/api/v1/models/fraud/versions/1")
    assert body["approve_url"].endswith(f"/api/v1/promotions/{pending.pk}/approve")
    assert body["withdraw_url"].endswith(f"/api/v1/promotions/{pending.pk}/withdraw")


def test_an_approver_is_told_they_may_decide(
    client: Client, personas: dict[str, User], pending: PromotionRequest
) -> None:
    body = signed_in(client, personas["carol"]).get(url(pending)).json()

    assert body["you_may"] == {"decide": True, "withdraw": False}


def test_a_request_one_may_not_see_is_not_found_like_one_that_does_not_exist(
    client: Client, personas: dict[str, User], pending: PromotionRequest, outsider: User
) -> None:
    viewer = make_user("vera")
    grant(viewer, "model_validator", make_version("churn", 1, "cd" * 32).registered_model)
    missing = pending.pk + 1000

    for who in (outsider, viewer):
        signed_in(client, who)
        hidden = client.get(url(pending))
        unknown = client.get(f"{PROMOTIONS}/{missing}")
        refused(hidden, 404, "promotion_not_found")
        refused(unknown, 404, "promotion_not_found")
        assert hidden.json()["detail"] == unknown.json()["detail"].replace(
            str(missing), str(pending.pk)
        )


@pytest.mark.parametrize("action", ["approve", "reject", "withdraw"])
def test_an_outsider_cannot_act_on_a_request_and_learns_nothing(
    client: Client, pending: PromotionRequest, outsider: User, action: str
) -> None:
    response = decide(signed_in(client, outsider), pending, outsider, action, password="wrong")

    refused(response, 404, "promotion_not_found")
    assert logged("promotion.step_up_failed") == 0  # not even the password was looked at
    pending.refresh_from_db()
    assert pending.status == PromotionStatus.PENDING
    assert not Approval.objects.exists()


# --- requesting -------------------------------------------------------------------------


def test_a_request_is_made_with_an_approve_token(
    client: Client, personas: dict[str, User], version: ModelVersion
) -> None:
    grace = personas["grace"]
    body = {"model": "fraud", "version": 1, "alias": "staging", "reason": REASON}

    response = post(client, PROMOTIONS, body, **bearer(grace, "approve"))

    assert response.status_code == 201, response.content
    created = PromotionRequest.objects.get()
    assert response.json()["id"] == created.pk
    assert response.json()["status"] == "pending"
    assert response.json()["requested_by"] == "grace"
    assert created.model_digest == "ab" * 32
    assert (logged("promotion.requested"), logged("promotion.submitted")) == (1, 1)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"alias": "latest"}, 400, "promotion_bad_alias"),
        ({"alias": "canary"}, 400, "no_policy"),
        ({"reason": "   "}, 400, "reason_required"),
        ({"reason": None}, 400, "reason_required"),  # left out
        ({"version": "one"}, 400, "invalid"),
        ({"version": 9}, 404, "version_not_found"),
        ({"model": "churn"}, 404, "version_not_found"),
        ({"version": 2}, 409, "not_hashed"),
        ({"who": "zed"}, 403, "sod_requester_is_author"),
        ({"who": "mallory"}, 404, "version_not_found"),  # no role: may not see the model
        ({"busy": True}, 409, "promotion_open"),
    ],
)
def test_requests_that_cannot_be_made_write_nothing(
    client: Client,
    personas: dict[str, User],
    *,
    version: ModelVersion,
    outsider: User,
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    ModelVersion.objects.create(registered_model=version.registered_model, version=2)
    who = change.pop("who", "grace")
    requester = personas.get(who) or User.objects.filter(username=who).first()
    if requester is None:
        requester = make_user(who)
        grant(requester, "mlops_engineer")
    if change.pop("busy", False):
        request_by(personas["grace"], version)
    before = PromotionRequest.objects.count()
    body = {"model": "fraud", "version": 1, "alias": "staging", "reason": REASON, **change}
    body = {key: value for key, value in body.items() if value is not None}

    response = post(signed_in(client, requester), PROMOTIONS, body)

    refused(response, status, code)
    assert PromotionRequest.objects.count() == before


# --- deciding ---------------------------------------------------------------------------


def test_approvals_reach_the_quorum_and_queue_the_execution(
    client: Client,
    personas: dict[str, User],
    pending: PromotionRequest,
    django_capture_on_commit_callbacks: Any,
) -> None:
    bob, carol = personas["bob"], personas["carol"]

    first = decide(client, pending, bob, **bearer(bob, "approve"))
    assert first.status_code == 200, first.content
    assert first.json()["status"] == "pending"
    assert first.json()["progress"]["summary"] == "1 of 2 approvals"
    with (
        mock.patch.object(tasks.promotion_execute, "delay") as execute,
        django_capture_on_commit_callbacks(execute=True),
    ):
        second = decide(client, pending, carol, **bearer(carol, "approve"))

    assert second.status_code == 200, second.content
    assert second.json()["status"] == "approved"
    assert second.json()["progress"]["missing"] == []
    execute.assert_called_once_with(pending.pk)
    pending.refresh_from_db()
    assert pending.status == PromotionStatus.APPROVED
    assert [a.approver_name for a in pending.approvals.all()] == ["bob", "carol"]
    assert (logged("promotion.approved"), logged("promotion.quorum_met")) == (2, 1)


def test_a_rejection_ends_the_request(
    client: Client, personas: dict[str, User], pending: PromotionRequest
) -> None:
    bob = personas["bob"]

    response = decide(signed_in(client, bob), pending, bob, "reject")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "rejected"
    assert response.json()["approvals"][0]["decision"] == "reject"
    assert logged("promotion.rejected") == 1
    carol = personas["carol"]
    refused(decide(signed_in(client, carol), pending, carol), 409, "promotion_wrong_state")


def test_a_wrong_password_is_refused_logged_and_records_no_decision(
    client: Client, personas: dict[str, User], pending: PromotionRequest
) -> None:
    bob = personas["bob"]

    response = decide(client, pending, bob, password="not-my-password", **bearer(bob, "approve"))

    refused(response, 403, "step_up_failed")
    assert "not-my-password" not in response.content.decode()
    assert not Approval.objects.exists()
    assert logged("promotion.step_up_failed") == 1
    pending.refresh_from_db()
    assert pending.status == PromotionStatus.PENDING


def test_a_decision_needs_the_password_field(
    client: Client, personas: dict[str, User], pending: PromotionRequest
) -> None:
    response = post(signed_in(client, personas["bob"]), url(pending, "approve"), {"comment": "x"})

    refused(response, 400, "invalid")
    assert "password" in response.json()["errors"]
    assert not Approval.objects.exists()


@pytest.mark.parametrize(
    ("who", "comment", "status", "code"),
    [
        ("grace", COMMENT, 403, "sod_violation"),  # the requester approving her own request
        ("zed", COMMENT, 403, "sod_violation"),  # the version's author, holding a role to approve
        ("dave", COMMENT, 403, "not_an_approver"),  # Compliance Officer: not named for staging
        ("bob", "  ", 400, "comment_required"),
    ],
)
def test_decisions_that_are_refused_write_nothing(
    client: Client,
    personas: dict[str, User],
    *,
    pending: PromotionRequest,
    who: str,
    comment: str,
    status: int,
    code: str,
) -> None:
    user = personas.get(who) or make_user(who)
    if who == "zed":
        grant(user, "model_validator")

    body = {"comment": comment, "password": password_of(user)}
    response = post(signed_in(client, user), url(pending, "approve"), body)

    refused(response, status, code)
    assert not Approval.objects.exists()
    assert logged("promotion.approved") == 0


def test_deciding_twice_is_a_conflict(
    client: Client, personas: dict[str, User], pending: PromotionRequest
) -> None:
    bob = personas["bob"]
    signed_in(client, bob)
    assert decide(client, pending, bob).status_code == 200

    refused(decide(client, pending, bob, "reject"), 409, "already_decided")
    assert Approval.objects.count() == 1


def test_an_overdue_request_expires_instead_of_being_decided(
    client: Client, personas: dict[str, User], pending: PromotionRequest
) -> None:
    PromotionRequest.objects.filter(pk=pending.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    bob = personas["bob"]

    refused(decide(signed_in(client, bob), pending, bob), 409, "promotion_expired")
    pending.refresh_from_db()
    assert pending.status == PromotionStatus.EXPIRED
    assert not Approval.objects.exists()


# --- withdrawing ------------------------------------------------------------------------


def test_the_requester_withdraws_and_then_nothing_more_happens(
    client: Client, personas: dict[str, User], pending: PromotionRequest
) -> None:
    grace = personas["grace"]
    body = {"reason": "wrong version"}

    response = post(client, url(pending, "withdraw"), body, **bearer(grace, "approve"))

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "withdrawn"
    assert logged("promotion.withdrawn") == 1
    signed_in(client, grace)
    refused(post(client, url(pending, "withdraw"), {}), 409, "promotion_wrong_state")
    bob = personas["bob"]
    refused(decide(signed_in(client, bob), pending, bob), 409, "promotion_wrong_state")


def test_only_the_requester_withdraws(
    client: Client, personas: dict[str, User], pending: PromotionRequest
) -> None:
    response = post(signed_in(client, personas["carol"]), url(pending, "withdraw"), {})

    refused(response, 403, "not_requester")
    pending.refresh_from_db()
    assert pending.status == PromotionStatus.PENDING


def test_a_rejected_request_cannot_be_withdrawn(
    client: Client, personas: dict[str, User], pending: PromotionRequest
) -> None:
    bob = personas["bob"]
    decide(signed_in(client, bob), pending, bob, "reject")

    response = post(signed_in(client, personas["grace"]), url(pending, "withdraw"), {})

    refused(response, 409, "promotion_wrong_state")
    assert logged("promotion.withdrawn") == 0


# --- break-glass ------------------------------------------------------------------------


def test_break_glass_executes_at_once_and_opens_a_review(
    client: Client,
    personas: dict[str, User],
    version: ModelVersion,
    django_capture_on_commit_callbacks: Any,
) -> None:
    heidi = personas["heidi"]
    body = {
        "model": "fraud",
        "version": 1,
        "alias": "production",
        "reason": "roll back the bad model",
        "password": password_of(heidi),
    }
    with (
        mock.patch.object(tasks.promotion_execute, "delay") as execute,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = post(client, f"{PROMOTIONS}/break-glass", body, **bearer(heidi, "approve"))

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["break_glass"] is True
    assert created["status"] == "approved"
    assert created["progress"]["summary"] == "break-glass: no approvals needed"
    execute.assert_called_once_with(created["id"])
    assert Incident.objects.get().kind == IncidentKind.BREAK_GLASS
    assert logged("promotion.break_glass") == 1


@pytest.mark.parametrize(
    ("who", "password", "status", "code"),
    [
        ("heidi", "wrong", 403, "step_up_failed"),
        ("carol", None, 403, "not_security_operations"),
        ("mallory", None, 404, "version_not_found"),
    ],
)
def test_break_glass_refusals_write_nothing(
    client: Client,
    personas: dict[str, User],
    *,
    version: ModelVersion,
    outsider: User,
    who: str,
    password: str | None,
    status: int,
    code: str,
) -> None:
    user = personas.get(who, outsider)
    body = {
        "model": "fraud",
        "version": 1,
        "alias": "production",
        "reason": "outage",
        "password": password or password_of(user),
    }

    response = post(signed_in(client, user), f"{PROMOTIONS}/break-glass", body)

    refused(response, status, code)
    assert not PromotionRequest.objects.exists()
    assert not Incident.objects.exists()


# --- tokens -----------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["approve", "reject", "withdraw"])
def test_a_token_without_the_approve_scope_is_refused_and_nothing_is_written(
    client: Client, personas: dict[str, User], pending: PromotionRequest, action: str
) -> None:
    user = personas["grace"] if action == "withdraw" else personas["bob"]

    response = decide(client, pending, user, action, **bearer(user, "read", "attest"))

    refused(response, 403, "token_scope_missing")
    pending.refresh_from_db()
    assert pending.status == PromotionStatus.PENDING
    assert not Approval.objects.exists()


def test_a_token_without_the_approve_scope_cannot_request(
    client: Client, personas: dict[str, User], version: ModelVersion
) -> None:
    grace = personas["grace"]
    body = {"model": "fraud", "version": 1, "alias": "staging", "reason": REASON}

    refused(post(client, PROMOTIONS, body, **bearer(grace, "read")), 403, "token_scope_missing")
    assert not PromotionRequest.objects.exists()


def test_reading_needs_the_read_scope(
    client: Client, personas: dict[str, User], pending: PromotionRequest
) -> None:
    dave = personas["dave"]

    refused(client.get(url(pending), headers=bearer(dave, "approve")), 403, "token_scope_missing")
    assert client.get(url(pending), headers=bearer(dave, "read")).status_code == 200


@pytest.mark.parametrize("fate", ["expired", "revoked"])
def test_an_expired_or_revoked_token_is_refused(
    client: Client, personas: dict[str, User], pending: PromotionRequest, fate: str
) -> None:
    bob = personas["bob"]
    issued = tokens.api_token_create(
        user=bob, name="ci", scopes=["approve"], expires_in_days=1, acting_user=bob
    )
    if fate == "revoked":
        tokens.api_token_revoke(token=issued.token, acting_user=bob)
    else:
        now = timezone.now()
        ApiToken.objects.filter(pk=issued.token.pk).update(
            created_at=now - timedelta(days=2), expires_at=now - timedelta(seconds=1)
        )

    response = decide(client, pending, bob, Authorization=f"Bearer {issued.secret}")

    refused(response, 401, f"token_{fate}")
    assert not Approval.objects.exists()


# --- who may do what: every action, each role, and none ---------------------------------

_PRODUCTION_HIGH = next(
    policy
    for policy in DEFAULT_POLICIES
    if (policy["alias"], policy["risk_tier"]) == ("production", "high")
)
APPROVERS = {role for item in _PRODUCTION_HIGH["approvals"] for role in item["roles"]}
ROLE_OF = {**PERSONAS, "mallory": None}
ALLOWED = {"list": 200, "retrieve": 200, "create": 201, "approve": 200, "reject": 200,
           "withdraw": 200, "break_glass": 201}  # fmt: skip


def expected(action: str, role: str | None) -> tuple[int, str]:
    """What the default catalogue says: anyone holding a role sees and may request; the roles
    the production policy names decide; Security Operations alone breaks the glass; only the
    requester (ivan here) withdraws; someone holding no role sees nothing at all."""
    if role is None:
        return (200, "") if action == "list" else (404, "")
    refusal = {
        "approve": (role not in APPROVERS, "not_an_approver"),
        "reject": (role not in APPROVERS, "not_an_approver"),
        "withdraw": (True, "not_requester"),
        "break_glass": (role != "security_operations", "not_security_operations"),
    }.get(action, (False, ""))
    return (403, refusal[1]) if refusal[0] else (ALLOWED[action], "")


def test_the_matrix_reads_the_default_policy() -> None:
    assert sorted(APPROVERS) == [
        "compliance_officer",
        "model_validator",
        "risk_owner",
        "security_architect",
        "security_operations",
    ]


def act(client: Client, action: str, user: User, promotion: PromotionRequest | None) -> Any:
    headers = bearer(user, "read", "approve")
    create = {"model": "fraud", "version": 1, "alias": "production", "reason": REASON}
    if action == "list":
        return client.get(PROMOTIONS, headers=headers)
    if action == "create":
        return post(client, PROMOTIONS, create, **headers)
    if action == "break_glass":
        body = {**create, "password": password_of(user)}
        return post(client, f"{PROMOTIONS}/break-glass", body, **headers)
    assert promotion is not None
    if action == "retrieve":
        return client.get(url(promotion), headers=headers)
    return decide(client, promotion, user, action, **headers)


@pytest.mark.parametrize("who", list(ROLE_OF))
@pytest.mark.parametrize("action", list(ALLOWED))
def test_permission_matrix(
    client: Client,
    personas: dict[str, User],
    *,
    version: ModelVersion,
    outsider: User,
    execution: mock.MagicMock,
    action: str,
    who: str,
) -> None:
    promotion = None
    if action not in ("create", "break_glass"):
        requester = make_user("ivan")
        grant(requester, "mlops_engineer")
        promotion = request_by(requester, version, "production")
    user = personas.get(who, outsider)
    status, code = expected(action, ROLE_OF[who])

    response = act(client, action, user, promotion)

    assert response.status_code == status, response.content
    if code:
        assert response.json()["code"] == code
    if action == "list":
        assert len(response.json()["results"]) == (0 if ROLE_OF[who] is None else 1)
    if action in ("approve", "reject"):
        assert Approval.objects.filter(approver=user).exists() is (status == 200)
