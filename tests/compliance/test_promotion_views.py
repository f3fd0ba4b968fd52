"""The promotion pages: dashboard, request page and decision, new request, break-glass,
incidents and inbox — each for the persona who uses it, and refused to those who may not."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from compliance import promotions, tasks
from compliance.choices import IncidentKind, IncidentStatus, PromotionStatus
from compliance.models import Approval, Incident, Notification, PromotionRequest
from compliance.policies import policy_save
from compliance.promotion_selectors import LIST_LIMIT, quorum_prefetched
from provenance.log_format import Actor
from provenance.models import Artifact, ArtifactKind, LogEntry
from registry.models import ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db
STAGING = {
    "alias": "staging",
    "risk_tier": "high",
    "approvals": [
        {"roles": ["model_validator"], "count": 1},
        {"roles": ["security_architect", "security_operations"], "count": 1},
    ],
    "gates": {"require_scan_clean": False},
}
REASON = "better recall on holdout"


@pytest.fixture(autouse=True)
def _keys_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


@pytest.fixture
def staging_policy() -> None:
    policy_save(document=STAGING, actor=Actor.system("test"))


def make_version(name: str = "fraud", number: int = 1, digest: str = "ab" * 32) -> ModelVersion:
    """A version authored by alice (the model developer), hashed by the registry."""
    artifact = Artifact.objects.create(
        digest=digest, kind=ArtifactKind.MODEL, name=f"{name}/{number}", size=1,
        created_at=timezone.now(),
    )  # fmt: skip
    model, _ = RegisteredModel.objects.get_or_create(name=name)
    return ModelVersion.objects.create(
        registered_model=model, version=number, user_id="alice", model_artifact=artifact
    )


@pytest.fixture
def version(personas: dict[str, User]) -> ModelVersion:
    return make_version()


def request_by(user: User, version: ModelVersion, alias: str = "staging") -> PromotionRequest:
    return promotions.promotion_request_create(
        version=version, alias=alias, reason=REASON, requester=user
    )


def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def detail_url(request: PromotionRequest) -> str:
    return reverse("compliance:promotion-detail", args=[request.pk])


def decide_url(request: PromotionRequest) -> str:
    return reverse("compliance:promotion-decide", args=[request.pk])


def version_url(version: ModelVersion) -> str:
    return reverse("registry:version-detail", args=[version.registered_model.name, version.version])


def decision(user: User, choice: str = "approve", password: str | None = None) -> dict[str, str]:
    return {
        "decision": choice,
        "comment": "checked the evaluation report",
        "password": password or f"{user.username}-Pa55word!",
    }


def shown_messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- signing in ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/governance/promotions/",
        "/governance/promotions/1/",
        "/governance/incidents/",
        "/governance/inbox/",
    ],
)
def test_pages_need_a_sign_in(client: Client, url: str) -> None:
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize(
    "url",
    [
        "/governance/promotions/1/decide",
        "/governance/promotions/1/withdraw",
        "/governance/promotions/new/fraud/1",
        "/governance/promotions/break-glass/fraud/1",
        "/governance/incidents/1/resolve",
        "/governance/inbox/read",
    ],
)
def test_actions_are_posts_only(client: Client, personas: dict[str, User], url: str) -> None:
    assert signed_in(client, personas["bob"]).get(url).status_code == 405


# --- the dashboard ------------------------------------------------------------------------


def test_the_dashboard_shows_what_waits_for_an_approver(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)

    response = signed_in(client, personas["bob"]).get(reverse("compliance:promotions"))

    assert response.status_code == 200
    [waiting] = response.context["waiting"]
    assert waiting.request == request
    assert waiting.progress == "0 of 2 approvals"
    assert response.context["mine"] == []
    html = response.content.decode()
    assert "Waiting for you" in html
    assert "fraud v1</a> → <strong>staging</strong>" in html
    assert "Pending approval" in html


@pytest.mark.parametrize("who", ["grace", "alice", "dave"])  # requester, author, not in policy
def test_nothing_waits_for_those_who_may_not_decide(
    client: Client,
    personas: dict[str, User],
    version: ModelVersion,
    staging_policy: None,
    who: str,
) -> None:
    request_by(personas["grace"], version)

    response = signed_in(client, personas[who]).get(reverse("compliance:promotions"))

    assert response.context["waiting"] == []
    assert len(response.context["recent"]) == 1  # they hold a role on the model: they see it


def test_the_requester_sees_their_request_and_its_progress(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)
    promotions.promotion_request_decide(
        request_id=request.pk, approver=personas["bob"], **decision(personas["bob"])
    )

    response = signed_in(client, personas["grace"]).get(reverse("compliance:promotions"))

    [mine] = response.context["mine"]
    assert mine.progress == "1 of 2 approvals"
    assert mine.missing == ["1 more security_architect or security_operations"]
    bob = signed_in(Client(), personas["bob"]).get(reverse("compliance:promotions"))
    assert bob.context["waiting"] == []  # bob has decided


def test_break_glass_is_marked_on_the_dashboard(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    with mock.patch.object(tasks.promotion_execute, "delay"):
        promotions.promotion_break_glass(
            version=version,
            alias="staging",
            reason="outage",
            user=personas["heidi"],
            password="heidi-Pa55word!",
        )

    html = signed_in(client, personas["dave"]).get(reverse("compliance:promotions")).content
    assert b"BREAK-GLASS" in html
    assert b"break-glass: no approvals needed" in html


def test_outsiders_see_no_request(
    client: Client,
    personas: dict[str, User],
    version: ModelVersion,
    staging_policy: None,
    outsider: User,
) -> None:
    request_by(personas["grace"], version)

    response = signed_in(client, outsider).get(reverse("compliance:promotions"))

    assert response.status_code == 200
    assert response.context["recent"] == []
    assert b"fraud" not in response.content


def test_a_model_scoped_role_sees_only_that_models_requests(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    from compliance.models import SecurityRole
    from compliance.services import role_grant

    other = make_version("churn", 1, "cd" * 32)
    request_by(personas["grace"], version)
    request_by(personas["grace"], other)
    viewer = User.objects.create_user("vera", password="vera-Pa55word!")
    role_grant(
        user=viewer,
        role=SecurityRole.objects.get(key="model_validator"),
        registered_model=other.registered_model,
        acting_user=None,
        actor_name="test",
    )

    response = signed_in(client, viewer).get(reverse("compliance:promotions"))

    assert [r.request.registered_model.name for r in response.context["recent"]] == ["churn"]
    assert [r.request.registered_model.name for r in response.context["waiting"]] == ["churn"]


def test_dashboard_query_count_does_not_grow_with_requests(
    client: Client,
    personas: dict[str, User],
    staging_policy: None,
    django_assert_max_num_queries: Any,
) -> None:
    signed_in(client, personas["bob"])

    def requests(count: int) -> None:
        start = PromotionRequest.objects.count()
        for n in range(start, start + count):
            request = request_by(personas["grace"], make_version(f"m{n}", 1, f"{n:064x}"))
            promotions.promotion_request_decide(
                request_id=request.pk, approver=personas["carol"], **decision(personas["carol"])
            )

    requests(1)
    with django_assert_max_num_queries(12) as few:
        client.get(reverse("compliance:promotions"))
    requests(5)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("compliance:promotions"))
    assert len(response.context["waiting"]) == 6


def test_the_dashboard_keeps_the_newest_requests_past_its_limit_in_as_many_queries(
    client: Client,
    personas: dict[str, User],
    staging_policy: None,
    django_assert_max_num_queries: Any,
) -> None:
    grace = personas["grace"]
    signed_in(client, grace)

    def requests(count: int) -> list[PromotionRequest]:
        start = PromotionRequest.objects.count()
        return [
            request_by(grace, make_version(f"m{n}", 1, f"{n:064x}"))
            for n in range(start, start + count)
        ]

    made = requests(1)
    with django_assert_max_num_queries(12) as few:
        client.get(reverse("compliance:promotions"))
    made += requests(LIST_LIMIT + 4)
    promotions.promotion_request_withdraw(request_id=made[0].pk, user=grace, reason="superseded")

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("compliance:promotions"))

    newest = [request.pk for request in reversed(made)][:LIST_LIMIT]
    assert [row.request.pk for row in response.context["mine"]] == newest
    # the oldest request changed last: it leads the recent ones
    recent = [made[0].pk, *newest[: LIST_LIMIT - 1]]
    assert [row.request.pk for row in response.context["recent"]] == recent


# --- the request page ---------------------------------------------------------------------


def test_the_request_page_shows_policy_gates_and_timeline(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)

    response = signed_in(client, personas["grace"]).get(detail_url(request))

    assert response.status_code == 200
    html = response.content.decode()
    assert f"sha256:{'ab' * 32}" in html
    assert "Model Validator" in html
    assert "Still missing: 1 more model_validator; 1 more security_architect or " in html
    assert "<code>model_digest_unchanged</code>" in html
    assert "<code>no_open_incident</code>" in html
    timeline = [e.event_type for e in response.context["timeline"]]
    assert timeline == ["promotion.requested", "promotion.submitted"]
    assert not response.context["can_decide"]
    assert (
        'action="/governance/promotions/'
        not in html.split('id="withdraw"')[0].split('id="approvals"')[1]
    )  # no decision form for the requester
    assert response.context["can_withdraw"]


def test_a_failing_gate_is_shown_with_its_reason(
    client: Client, personas: dict[str, User], version: ModelVersion
) -> None:
    policy_save(document={**STAGING, "gates": {}}, actor=Actor.system("test"))
    request = request_by(personas["grace"], version)

    html = signed_in(client, personas["bob"]).get(detail_url(request)).content.decode()

    assert '<code>scan_clean</code></td>\n    <td><span class="tag warn">FAIL</span>' in html
    assert "the files have not been scanned" in html


@pytest.mark.parametrize(
    ("who", "offered"),
    [
        ("bob", True),  # model validator
        ("carol", True),  # security architect
        ("heidi", True),  # security operations
        ("grace", False),  # the requester
        ("dave", False),  # compliance officer: not named by this policy
        ("erin", False),  # risk owner: not named either
    ],
)
def test_the_decision_form_is_offered_only_to_eligible_approvers(
    client: Client,
    personas: dict[str, User],
    *,
    version: ModelVersion,
    staging_policy: None,
    who: str,
    offered: bool,
) -> None:
    request = request_by(personas["grace"], version)

    response = signed_in(client, personas[who]).get(detail_url(request))

    assert response.context["can_decide"] is offered
    assert (decide_url(request).encode() in response.content) is offered
    if offered:
        assert b'autocomplete="current-password"' in response.content


def test_the_author_is_not_offered_the_decision_form(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    from compliance.models import SecurityRole
    from compliance.services import role_grant

    role_grant(
        user=personas["alice"],
        role=SecurityRole.objects.get(key="model_validator"),
        acting_user=None,
        actor_name="test",
    )
    request = request_by(personas["grace"], version)

    response = signed_in(client, personas["alice"]).get(detail_url(request))

    assert response.context["can_decide"] is False


def test_a_wrong_password_is_refused_and_records_no_decision(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)
    bob = personas["bob"]

    response = signed_in(client, bob).post(
        decide_url(request), decision(bob, password="not-my-password"), follow=True
    )

    assert response.redirect_chain == [(detail_url(request), 302)]
    assert shown_messages(response) == ["the password is not correct"]
    assert b"the password is not correct" in response.content
    assert not Approval.objects.exists()
    request.refresh_from_db()
    assert request.status == PromotionStatus.PENDING
    assert LogEntry.objects.filter(event_type="promotion.step_up_failed").count() == 1


def test_a_decision_without_a_comment_is_refused(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)
    bob = personas["bob"]

    response = signed_in(client, bob).post(
        decide_url(request), {**decision(bob), "comment": ""}, follow=True
    )

    assert shown_messages(response) == ["comment: This field is required."]
    assert not Approval.objects.exists()


def test_approvals_by_two_roles_approve_and_queue_the_execution(
    client: Client,
    personas: dict[str, User],
    version: ModelVersion,
    staging_policy: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    request = request_by(personas["grace"], version)
    bob, carol = personas["bob"], personas["carol"]
    response = signed_in(client, bob).post(decide_url(request), decision(bob), follow=True)
    assert shown_messages(response) == [
        f"You approved request #{request.pk}; your decision is signed."
    ]
    assert b"1 more security_architect or security_operations" in response.content

    with (
        mock.patch.object(tasks.promotion_execute, "delay") as execute,
        django_capture_on_commit_callbacks(execute=True),
    ):
        signed_in(Client(), carol).post(decide_url(request), decision(carol))

    execute.assert_called_once_with(request.pk)
    request.refresh_from_db()
    assert request.status == PromotionStatus.APPROVED
    html = signed_in(client, personas["grace"]).get(detail_url(request)).content.decode()
    assert '<span id="status" class="tag">Approved</span>' in html
    assert "Quorum met" in html
    assert '<span class="tag ok">bob</span>' in html
    assert '<span class="tag ok">carol</span>' in html
    approval = Approval.objects.get(approver=bob)
    assert f"sha256:{approval.attestation_digest}" in html
    assert "log entry #" in html


def test_a_rejection_is_shown(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)
    carol = personas["carol"]

    signed_in(client, carol).post(decide_url(request), decision(carol, "reject"))

    request.refresh_from_db()
    assert request.status == PromotionStatus.REJECTED
    html = client.get(detail_url(request)).content.decode()
    assert "Rejected" in html
    assert not client.get(detail_url(request)).context["can_decide"]


def test_the_prefetched_quorum_agrees_with_the_service(
    personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)
    promotions.promotion_request_decide(
        request_id=request.pk, approver=personas["heidi"], **decision(personas["heidi"])
    )

    fetched = PromotionRequest.objects.prefetch_related("approvals").get(pk=request.pk)
    assert quorum_prefetched(fetched) == promotions.quorum_of(fetched)


def test_outsiders_get_404_on_a_request_and_its_actions(
    client: Client,
    personas: dict[str, User],
    version: ModelVersion,
    staging_policy: None,
    outsider: User,
) -> None:
    request = request_by(personas["grace"], version)
    signed_in(client, outsider)

    assert client.get(detail_url(request)).status_code == 404
    assert client.post(decide_url(request), decision(outsider)).status_code == 404
    withdraw = reverse("compliance:promotion-withdraw", args=[request.pk])
    assert client.post(withdraw).status_code == 404
    assert client.get(reverse("compliance:promotion-detail", args=[999])).status_code == 404
    assert not Approval.objects.exists()


def test_staff_see_every_request(
    client: Client,
    personas: dict[str, User],
    version: ModelVersion,
    staging_policy: None,
    superuser: User,
) -> None:
    request = request_by(personas["grace"], version)

    assert signed_in(client, superuser).get(detail_url(request)).status_code == 200


def test_the_requester_withdraws(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    request = request_by(personas["grace"], version)
    withdraw = reverse("compliance:promotion-withdraw", args=[request.pk])

    refused = signed_in(client, personas["bob"]).post(withdraw, {"reason": "no"}, follow=True)
    assert shown_messages(refused) == ["only the requester may withdraw a request"]
    signed_in(client, personas["grace"]).post(withdraw, {"reason": "wrong alias"})

    request.refresh_from_db()
    assert request.status == PromotionStatus.WITHDRAWN
    assert LogEntry.objects.filter(event_type="promotion.withdrawn").count() == 1


def test_a_promoted_request_offers_a_rollback_to_the_previous_version(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    newer = make_version("fraud", 2, "cd" * 32)
    request = request_by(personas["grace"], newer)
    # As if executed (execution needs MLflow, tested in test_promotions.py).
    PromotionRequest.objects.filter(pk=request.pk).update(
        status=PromotionStatus.PROMOTED, previous_version=version
    )

    response = signed_in(client, personas["grace"]).get(detail_url(request))

    rollback = response.context["rollback_url"]
    assert rollback.startswith("/models/fraud/versions/1/?alias=staging&reason=Roll+back")
    assert rollback.endswith("#request-promotion")
    page = client.get(rollback).content.decode()
    assert 'id="promotion-alias" name="alias" list="policy-aliases" value="staging"' in page
    assert "Roll back staging from v2" in page


def test_detail_query_count_does_not_grow_with_decisions(
    client: Client,
    personas: dict[str, User],
    version: ModelVersion,
    staging_policy: None,
    django_assert_max_num_queries: Any,
) -> None:
    policy_save(
        document={**STAGING, "approvals": [{"roles": ["model_validator"], "count": 3}]},
        actor=Actor.system("test"),
    )
    request = request_by(personas["grace"], version)
    signed_in(client, personas["grace"])
    with django_assert_max_num_queries(12) as few:
        client.get(detail_url(request))
    for name in ("validator1", "validator2"):
        from compliance.models import SecurityRole
        from compliance.services import role_grant

        user = User.objects.create_user(name, password=f"{name}-Pa55word!")
        role_grant(
            user=user,
            role=SecurityRole.objects.get(key="model_validator"),
            acting_user=None,
            actor_name="test",
        )
        promotions.promotion_request_decide(request_id=request.pk, approver=user, **decision(user))

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(detail_url(request))
    assert len(response.context["approvals"]) == 2


# --- asking for a promotion from the version page ------------------------------------------


def test_the_version_page_offers_a_request_form_with_policy_aliases(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    html = signed_in(client, personas["grace"]).get(version_url(version)).content.decode()

    assert 'action="/governance/promotions/new/fraud/1"' in html
    assert '<option value="production"><option value="staging">' in html
    assert "Break glass" not in html  # grace is no Security Operations


def test_a_request_from_the_version_page_lands_on_its_page(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    new = reverse("compliance:promotion-new", args=["fraud", 1])

    response = signed_in(client, personas["grace"]).post(
        new, {"alias": "staging", "reason": REASON}
    )

    request = PromotionRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail_url(request)
    assert request.requested_by == personas["grace"]
    assert request.reason == REASON


def test_a_refused_request_returns_to_the_version_page_with_what_was_typed(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    new = reverse("compliance:promotion-new", args=["fraud", 1])

    response = signed_in(client, personas["grace"]).post(
        new, {"alias": "canary", "reason": REASON}, follow=True
    )

    [(landed, _)] = response.redirect_chain
    assert landed.startswith(version_url(version) + "?alias=canary&reason=better+recall")
    [message] = shown_messages(response)
    assert message.startswith("no promotion policy for alias 'canary' at risk tier high")
    html = response.content.decode()
    assert message.replace("'", "&#x27;") in html
    assert 'value="canary"' in html
    assert f">{REASON}</textarea>" in html
    assert not PromotionRequest.objects.exists()


def test_the_author_cannot_request_and_is_told_why(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    new = reverse("compliance:promotion-new", args=["fraud", 1])

    response = signed_in(client, personas["alice"]).post(
        new, {"alias": "staging", "reason": REASON}, follow=True
    )

    assert shown_messages(response) == [
        "separation of duties: the version's author may not request its promotion"
    ]
    assert not PromotionRequest.objects.exists()


def test_a_request_for_an_unknown_version_is_404(client: Client, personas: dict[str, User]) -> None:
    new = reverse("compliance:promotion-new", args=["ghost", 1])
    response = signed_in(client, personas["grace"]).post(new, {"alias": "staging", "reason": "x"})

    assert response.status_code == 404


def test_outsiders_are_not_offered_the_request_form(
    client: Client, version: ModelVersion, staging_policy: None, outsider: User
) -> None:
    page = signed_in(client, outsider).get(version_url(version))

    # Without a role on fraud, its version page does not exist for them (as in the API).
    assert page.status_code == 404
    assert "/governance/promotions/new/" not in page.content.decode()


# --- break-glass ---------------------------------------------------------------------------


def test_break_glass_is_offered_to_security_operations_only(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    heidi = signed_in(client, personas["heidi"]).get(version_url(version)).content.decode()
    assert 'action="/governance/promotions/break-glass/fraud/1"' in heidi
    assert "emergency use only" in heidi

    for who in ("grace", "carol", "dave"):
        html = signed_in(Client(), personas[who]).get(version_url(version)).content.decode()
        assert "/governance/promotions/break-glass/" not in html


def test_a_forged_break_glass_is_refused(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    glass = reverse("compliance:promotion-break-glass", args=["fraud", 1])

    response = signed_in(client, personas["grace"]).post(
        glass,
        {"alias": "staging", "reason": "outage", "password": "grace-Pa55word!"},
        follow=True,
    )

    assert shown_messages(response) == ["break-glass is for Security Operations"]
    assert not PromotionRequest.objects.exists()
    assert not Incident.objects.exists()


def test_break_glass_by_security_operations_is_marked_and_opens_a_review(
    client: Client,
    personas: dict[str, User],
    version: ModelVersion,
    staging_policy: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    glass = reverse("compliance:promotion-break-glass", args=["fraud", 1])

    with (
        mock.patch.object(tasks.promotion_execute, "delay") as execute,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = signed_in(client, personas["heidi"]).post(
            glass,
            {
                "alias": "staging",
                "reason": "roll back the bad model",
                "password": "heidi-Pa55word!",
            },
            follow=True,
        )

    request = PromotionRequest.objects.get()
    execute.assert_called_once_with(request.pk)
    assert request.break_glass
    assert shown_messages(response)[0].startswith(f"BREAK-GLASS request #{request.pk}")
    assert b"<strong>BREAK-GLASS:</strong>" in response.content
    assert Incident.objects.get().kind == IncidentKind.BREAK_GLASS


def test_break_glass_with_a_wrong_password_is_refused(
    client: Client, personas: dict[str, User], version: ModelVersion, staging_policy: None
) -> None:
    glass = reverse("compliance:promotion-break-glass", args=["fraud", 1])

    response = signed_in(client, personas["heidi"]).post(
        glass, {"alias": "staging", "reason": "outage", "password": "guess"}, follow=True
    )

    assert shown_messages(response) == ["the password is not correct"]
    assert "guess" not in response.redirect_chain[0][0]
    assert not PromotionRequest.objects.exists()


# --- incidents -----------------------------------------------------------------------------


@pytest.fixture
def incident(version: ModelVersion) -> Incident:
    return Incident.objects.create(
        kind=IncidentKind.OUT_OF_BAND_ALIAS,
        registered_model=version.registered_model,
        version=version,
        summary="fraud@staging moved in MLflow from (unset) to v1 without the registry",
        opened_at=timezone.now(),
    )


def test_security_operations_resolve_an_incident(
    client: Client, personas: dict[str, User], incident: Incident
) -> None:
    page = signed_in(client, personas["heidi"]).get(reverse("compliance:incidents"))
    assert list(page.context["open"]) == [incident]
    resolve = reverse("compliance:incident-resolve", args=[incident.pk])
    assert resolve.encode() in page.content

    response = client.post(resolve, {"resolution": "set by the on-call, confirmed"}, follow=True)

    assert shown_messages(response) == [f"Incident #{incident.pk} is resolved."]
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolved_by_name == "heidi"
    assert list(response.context["resolved"]) == [incident]
    assert LogEntry.objects.filter(event_type="incident.resolved").count() == 1


@pytest.mark.parametrize("who", ["dave", "superuser"])
def test_compliance_officers_and_staff_may_resolve(
    client: Client,
    personas: dict[str, User],
    superuser: User,
    incident: Incident,
    who: str,
) -> None:
    user = superuser if who == "superuser" else personas[who]
    resolve = reverse("compliance:incident-resolve", args=[incident.pk])

    signed_in(client, user).post(resolve, {"resolution": "reviewed"})

    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED


def test_others_may_not_resolve_an_incident(
    client: Client, personas: dict[str, User], incident: Incident, outsider: User
) -> None:
    resolve = reverse("compliance:incident-resolve", args=[incident.pk])
    page = signed_in(client, personas["bob"]).get(reverse("compliance:incidents"))
    assert resolve.encode() not in page.content

    refused = client.post(resolve, {"resolution": "looks fine"}, follow=True)

    assert shown_messages(refused) == [
        "Only Security Operations or a Compliance Officer resolve these."
    ]
    assert signed_in(Client(), outsider).post(resolve, {"resolution": "x"}).status_code == 404
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.OPEN


def test_a_resolution_needs_words(
    client: Client, personas: dict[str, User], incident: Incident
) -> None:
    resolve = reverse("compliance:incident-resolve", args=[incident.pk])

    response = signed_in(client, personas["heidi"]).post(resolve, {"resolution": " "}, follow=True)

    assert shown_messages(response) == ["say how the incident was resolved"]
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.OPEN


# --- the inbox -----------------------------------------------------------------------------


def test_the_inbox_lists_notifications_and_marks_them_read(
    client: Client,
    personas: dict[str, User],
    version: ModelVersion,
    staging_policy: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        request = request_by(personas["grace"], version)
    signed_in(client, personas["bob"])

    page = client.get(reverse("compliance:inbox"))
    html = page.content.decode()
    assert f'<a href="{detail_url(request)}">Approval needed: fraud v1 → staging' in html
    assert '<span class="tag warn">1<span class="visually-hidden"> unread</span></span>' in html

    response = client.post(reverse("compliance:inbox-read"), follow=True)

    assert shown_messages(response) == ["Marked 1 notification read."]
    assert not Notification.objects.filter(user=personas["bob"], read_at__isnull=True).exists()
    assert Notification.objects.filter(user=personas["carol"], read_at__isnull=True).exists()
    assert b'visually-hidden"> unread' not in response.content
