"""In a real browser (Debian's Chromium, headless, driven by Playwright) against a live server:

- grace asks for a promotion from the version page, bob and carol approve it after re-entering
  their passwords, and the request is approved and queued for execution;
- against a real MLflow store, four people take a version to production (grace asks; a model
  validator, a security architect and a risk owner approve), the execution runs, and MLflow
  itself then has the alias;
- the requester and the version's authors are refused, with the reason on the page;
- a failing gate is shown with its reason and fails the execution: MLflow's alias stays put.

Every person has their own browser context (their own cookies), signs in through the login
form, and acts only through what the pages offer. Screenshots are saved when a test fails.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import mlflow.sklearn
import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from compliance import tasks
from compliance.choices import PromotionStatus
from compliance.models import Approval, PromotionRequest
from compliance.policies import policy_save
from provenance.log_format import Actor
from provenance.models import Artifact, ArtifactKind
from registry import services as registry_services
from registry import tasks as registry_tasks
from registry.choices import SyncTrigger
from registry.models import ModelVersion, RegisteredModel
from tests.conftest import MlflowStore

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"Debian's chromium is not installed at {CHROMIUM}"
    ),
]
STAGING = {
    "alias": "staging",
    "risk_tier": "high",
    "approvals": [
        {"roles": ["model_validator"], "count": 1},
        {"roles": ["security_architect", "security_operations"], "count": 1},
    ],
    "gates": {"require_scan_clean": False},
}
TIMEOUT_MS = 10_000

Page = Any  # playwright.sync_api.Page, imported lazily (the module is skipped without Chromium)


@pytest.fixture(autouse=True)
def _keys_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


@pytest.fixture
def fraud_v1(personas: dict[str, User]) -> ModelVersion:
    """fraud v1, authored by alice and hashed, and the staging policy for high-risk models."""
    artifact = Artifact.objects.create(
        digest="ab" * 32, kind=ArtifactKind.MODEL, name="fraud/1", size=1, created_at=timezone.now()
    )
    model = RegisteredModel.objects.create(name="fraud")
    policy_save(document=STAGING, actor=Actor.system("test"))
    return ModelVersion.objects.create(
        registered_model=model, version=1, user_id="alice", model_artifact=artifact
    )


@pytest.fixture
def sign_in(
    live_server: Any,
    personas: dict[str, User],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Callable[[str], Page]]:
    """``sign_in("bob")``: a fresh browser context in which bob (a persona) has signed in."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # plain synchronous code all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    pages: dict[str, Page] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)

        def signed_in(username: str) -> Page:
            page = browser.new_context(base_url=live_server.url).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto("/login/")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password").fill(f"{username}-Pa55word!")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/models/")
            pages[username] = page
            return page

        try:
            yield signed_in
        finally:
            _screenshots_on_failure(request, pages, tmp_path / "screenshots")
            browser.close()


def _screenshots_on_failure(
    request: pytest.FixtureRequest, pages: dict[str, Page], folder: Path
) -> None:
    report = getattr(request.node, "rep_call", None)
    if report is None or not report.failed:
        return
    folder.mkdir(exist_ok=True)
    for username, page in pages.items():
        path = folder / f"{username}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot of {username}'s page ({page.url}): {path}")  # noqa: T201


def decide(page: Page, *, password: str, comment: str = "checked the evaluation report") -> None:
    page.get_by_label("Approve", exact=True).check()
    page.get_by_label("Comment (required: what you checked)").fill(comment)
    page.get_by_label("Your password (entered again to sign this decision)").fill(password)
    page.get_by_role("button", name="Submit decision").click()
    page.wait_for_load_state()


def test_a_request_is_approved_by_two_roles_in_the_browser(
    sign_in: Callable[[str], Page], fraud_v1: ModelVersion
) -> None:
    from playwright.sync_api import expect

    grace = sign_in("grace")
    grace.goto("/models/fraud/versions/1/")
    grace.get_by_label("Alias").fill("staging")
    grace.get_by_label("Why this version should be promoted").fill("better recall on holdout")
    grace.get_by_role("button", name="Request promotion").click()
    # Ids come from the database's sequence, which PostgreSQL does not rewind between tests.
    expect(grace.locator("h1")).to_have_text(re.compile(r"^Promotion request #\d+$"))
    request = PromotionRequest.objects.get()
    expect(grace.locator("h1")).to_have_text(f"Promotion request #{request.pk}")
    expect(grace.locator("#status")).to_have_text("Pending approval")
    assert request.requested_by.username == "grace"

    bob = sign_in("bob")
    bob.goto("/governance/promotions/")
    bob.locator("#waiting + table").get_by_role("link", name=f"#{request.pk}", exact=True).click()
    expect(bob.locator("#missing")).to_contain_text("1 more model_validator")
    decide(bob, password="not-bobs-password")
    expect(bob.locator(".messages")).to_have_text("the password is not correct")
    assert not Approval.objects.exists()
    decide(bob, password="bob-Pa55word!")
    expect(bob.locator(".messages")).to_contain_text(f"You approved request #{request.pk}")
    expect(bob.get_by_role("heading", name="Your decision")).to_have_count(0)

    carol = sign_in("carol")
    with mock.patch.object(tasks.promotion_execute, "delay") as execute:
        carol.goto(f"/governance/promotions/{request.pk}/")
        decide(carol, password="carol-Pa55word!", comment="threat model unchanged")
        expect(carol.locator("#status")).to_have_text("Approved")
    expect(carol.locator("#missing")).to_have_text("Quorum met")

    execute.assert_called_once_with(request.pk)
    request.refresh_from_db()
    assert request.status == PromotionStatus.APPROVED
    assert sorted(a.approver_name for a in request.approvals.all()) == ["bob", "carol"]
    grace.reload()
    expect(grace.locator("#status")).to_have_text("Approved")


# --------------------------------------------------------------------------
# Against a real MLflow store: a logged model, hashed and scanned by the registry
# --------------------------------------------------------------------------

PRODUCTION = {
    "alias": "production",
    "risk_tier": "high",
    "approvals": [
        {"roles": ["model_validator"], "count": 1},
        {"roles": ["security_architect"], "count": 1},
        {"roles": ["risk_owner"], "count": 1},
    ],
    "gates": {"require_scan_clean": True, "require_no_open_incident": True},
}
STRICT_STAGING = {
    **STAGING,
    "gates": {"require_scan_clean": True, "require_evaluation_passed": True},
}


def log_model_as(author: str, name: str = "fraud") -> int:
    """Log and register a small sklearn model in MLflow, trained by ``author`` (the run's user)."""
    model = LogisticRegression().fit([[1.0], [2.0], [3.0], [4.0]], [0, 0, 1, 1])
    with mlflow.start_run(tags={"mlflow.user": author}):
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name)
    return int(info.registered_model_version)


class ShellOnUnpickle:
    """Unpickling this would run a command: the registry's scan must call the file unsafe."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("true",))


def log_unsafe_model_as(author: str, store: MlflowStore, tmp_path: Path) -> int:
    """Register a version of fraud whose files hold a pickle that runs a shell command."""
    files = tmp_path / "unsafe-model"
    files.mkdir()
    (files / "MLmodel").write_text("artifact_path: model\nflavors: {}\n")
    (files / "model.pkl").write_bytes(pickle.dumps(ShellOnUnpickle()))
    run_id = store.run(user=author)
    store.client.log_artifacts(run_id, str(files), "model")
    return store.version("fraud", run_id=run_id)


def mirrored(name: str, version: int) -> ModelVersion:
    """Sync MLflow into the registry, then hash and scan ``version`` here, not in a worker."""
    with (
        mock.patch.object(registry_tasks.model_versions_hash_queue, "delay"),
        mock.patch.object(registry_tasks.model_version_scan, "delay"),
    ):
        registry_services.mlflow_sync(trigger=SyncTrigger.MANUAL)
        found = ModelVersion.objects.get(registered_model__name=name, version=version)
        assert registry_services.model_version_hash(version_pk=found.pk) is not None
        assert registry_services.model_version_scan(version_pk=found.pk) is not None
    return ModelVersion.objects.select_related("run", "model_artifact").get(pk=found.pk)


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Run the execution task in-process when it is queued (after the approving commit), as a
    worker would; the request ids it ran for."""
    ran: list[int] = []

    def execute_now(request_id: int) -> None:
        ran.append(request_id)
        tasks.promotion_execute.apply(args=(request_id,), throw=True)

    monkeypatch.setattr(tasks.promotion_execute, "delay", execute_now)
    return ran


def request_promotion(page: Page, version: ModelVersion, *, alias: str) -> PromotionRequest:
    """Ask for ``alias`` on the version's page; the request the registry made of it."""
    from playwright.sync_api import expect

    page.goto(f"/models/{version.registered_model.name}/versions/{version.version}/")
    page.get_by_label("Alias", exact=True).fill(alias)
    page.get_by_label("Why this version should be promoted").fill("better recall on holdout")
    page.get_by_role("button", name="Request promotion").click()
    expect(page.locator("h1")).to_have_text(re.compile(r"^Promotion request #\d+$"))
    # Ids come from the database's sequence, which PostgreSQL does not rewind between tests.
    request_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    expect(page.locator("h1")).to_have_text(f"Promotion request #{request_id}")
    return PromotionRequest.objects.get(pk=request_id, version=version, alias=alias)


def gate_row(page: Page, gate: str) -> Any:
    return (
        page.locator("#gates ~ table")
        .first.locator("tbody tr")
        .filter(has=page.locator("code", has_text=re.compile(f"^{re.escape(gate)}$")))
    )


def alias_in_mlflow(store: MlflowStore, name: str, alias: str) -> int | None:
    """Where ``alias`` points according to MLflow itself (not the registry's mirror)."""
    client = MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)
    if alias not in client.get_registered_model(name).aliases:
        return None
    return int(client.get_model_version_by_alias(name, alias).version)


def test_four_people_take_a_version_to_production_and_mlflow_has_the_alias(
    sign_in: Callable[[str], Page], mlflow_store: MlflowStore, executions: list[int]
) -> None:
    from playwright.sync_api import expect

    version = mirrored("fraud", log_model_as("alice"))
    policy_save(document=PRODUCTION, actor=Actor.system("test"))

    grace = sign_in("grace")
    request = request_promotion(grace, version, alias="production")
    expect(grace.locator("#status")).to_have_text("Pending approval")
    expect(gate_row(grace, "scan_clean")).to_contain_text("pass")
    expect(gate_row(grace, "scan_clean")).to_contain_text("scan verdict: clean")
    expect(grace.locator("#gates ~ table").first.get_by_text("FAIL")).to_have_count(0)
    expect(grace.locator("#missing")).to_have_text(
        "Still missing: 1 more model_validator; 1 more security_architect; 1 more risk_owner."
    )
    assert alias_in_mlflow(mlflow_store, "fraud", "production") is None

    bob = sign_in("bob")
    bob.goto("/governance/promotions/")
    bob.locator("#waiting + table").get_by_role("link", name=f"#{request.pk}", exact=True).click()
    decide(bob, password="bob-Pa55word!")
    expect(bob.locator(".messages")).to_contain_text(f"You approved request #{request.pk}")

    carol = sign_in("carol")
    carol.goto(f"/governance/promotions/{request.pk}/")
    decide(carol, password="carol-Pa55word!", comment="threat model unchanged")
    expect(carol.locator("#missing")).to_have_text("Still missing: 1 more risk_owner.")
    expect(carol.locator("#status")).to_have_text("Pending approval")
    assert executions == []

    erin = sign_in("erin")  # finds the request in her inbox, like every eligible approver
    erin.goto("/governance/inbox/")
    erin.get_by_role(
        "link", name=f"Approval needed: fraud v1 → production (request #{request.pk})"
    ).click()
    decide(erin, password="erin-Pa55word!", comment="residual risk accepted")
    expect(erin.locator("#status")).to_have_text("Promoted")
    expect(erin.locator("#missing")).to_have_text("Quorum met")
    expect(erin.get_by_role("heading", name="Your decision")).to_have_count(0)

    assert executions == [request.pk]
    assert alias_in_mlflow(mlflow_store, "fraud", "production") == version.version
    request.refresh_from_db()
    assert request.status == PromotionStatus.PROMOTED
    assert request.requested_by.username == "grace"
    assert {a.approver_name: a.roles for a in request.approvals.all()} == {
        "bob": ["model_validator"],
        "carol": ["security_architect"],
        "erin": ["risk_owner"],
    }
    grace.reload()
    expect(grace.locator("#status")).to_have_text("Promoted")
    expect(grace.locator("dl.facts")).to_contain_text("Executed in MLflow")
    grace.goto("/governance/inbox/")
    told = f"Request #{request.pk} (fraud v1 → production) is now promoted"
    expect(grace.get_by_role("link", name=told).first).to_be_visible()
    grace.goto("/models/fraud/")
    history = grace.locator("h2:text-is('Alias history') + table tbody tr")
    expect(history).to_have_count(1)
    expect(history.locator("td")).to_have_text(
        [re.compile(r"\d"), "production", "—", "v1", "grace", "Registry promotion"]
    )


def post_decision_not_offered(page: Page, request_id: int, *, password: str) -> None:
    """Post an approval the page does not offer, as a hand-made form would: the server must
    refuse it as well as hide it. The CSRF token comes from the page's sign-out form."""
    action = reverse("compliance:promotion-decide", args=[request_id])
    with page.expect_navigation():
        page.evaluate(
            """([action, password]) => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = action;
                const fields = {
                    csrfmiddlewaretoken:
                        document.querySelector("input[name=csrfmiddlewaretoken]").value,
                    decision: "approve",
                    comment: "looks fine to me",
                    password: password,
                };
                for (const [name, value] of Object.entries(fields)) {
                    const input = document.createElement("input");
                    input.type = "hidden";
                    input.name = name;
                    input.value = value;
                    form.append(input);
                }
                document.body.append(form);
                form.submit();
            }""",
            [action, password],
        )


def test_the_requester_and_the_versions_authors_may_not_approve(
    sign_in: Callable[[str], Page], mlflow_store: MlflowStore
) -> None:
    """Each of them holds a role the policy asks for, and is refused all the same."""
    from playwright.sync_api import expect

    version = mirrored("fraud", log_model_as("bob"))  # bob, a model validator, trained it
    assert version.run is not None
    assert version.run.user == "bob"
    # The version's own user (whoever registered it in MLflow) is an author too: heidi.
    ModelVersion.objects.filter(pk=version.pk).update(user_id="heidi")
    policy_save(document=STAGING, actor=Actor.system("test"))
    refusal = "separation of duties: the requester and the version's author may not decide"

    bob = sign_in("bob")
    bob.goto("/models/fraud/versions/1/")
    bob.get_by_label("Alias", exact=True).fill("staging")
    bob.get_by_label("Why this version should be promoted").fill("my model is ready")
    bob.get_by_role("button", name="Request promotion").click()
    expect(bob.locator(".messages .error")).to_have_text(
        "separation of duties: the version's author may not request its promotion"
    )
    assert not PromotionRequest.objects.exists()

    carol = sign_in("carol")  # a security architect asks for it
    request = request_promotion(carol, version, alias="staging")
    expect(carol.get_by_role("heading", name="Your decision")).to_have_count(0)
    expect(carol.get_by_role("note")).to_have_text(
        "Separation of duties: you requested this promotion, so you may not approve or reject it."
    )
    post_decision_not_offered(carol, request.pk, password="carol-Pa55word!")
    expect(carol.locator(".messages .error")).to_have_text(refusal)

    for author, page in (("bob", bob), ("heidi", sign_in("heidi"))):
        page.goto(f"/governance/promotions/{request.pk}/")
        expect(page.get_by_role("heading", name="Your decision")).to_have_count(0)
        expect(page.get_by_role("note")).to_have_text(
            "Separation of duties: you are an author of fraud v1, so you may not approve or "
            "reject its promotion."
        )
        post_decision_not_offered(page, request.pk, password=f"{author}-Pa55word!")
        expect(page.locator(".messages .error")).to_have_text(refusal)

    assert not Approval.objects.exists()
    request.refresh_from_db()
    assert request.status == PromotionStatus.PENDING
    expect(carol.locator("#status")).to_have_text("Pending approval")


def test_a_failing_gate_is_shown_with_its_reason_and_blocks_the_promotion(
    sign_in: Callable[[str], Page],
    mlflow_store: MlflowStore,
    executions: list[int],
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    log_model_as("alice")
    mlflow_store.client.set_registered_model_alias("fraud", "staging", "1")
    version = mirrored("fraud", log_unsafe_model_as("alice", mlflow_store, tmp_path))
    assert version.version == 2
    policy_save(document=STRICT_STAGING, actor=Actor.system("test"))

    grace = sign_in("grace")
    request = request_promotion(grace, version, alias="staging")
    expect(grace.locator("dl.facts")).to_contain_text("v1 when requested")
    expect(gate_row(grace, "model_digest_unchanged")).to_contain_text("pass")
    for gate, reason in (
        ("scan_clean", "scan verdict: unsafe"),
        ("evaluation_passed", "no verified evaluation that PASSED"),
    ):
        expect(gate_row(grace, gate)).to_contain_text("FAIL")
        expect(gate_row(grace, gate)).to_contain_text(reason)

    bob = sign_in("bob")
    bob.goto(f"/governance/promotions/{request.pk}/")
    decide(bob, password="bob-Pa55word!", comment="metrics look right")
    carol = sign_in("carol")
    carol.goto(f"/governance/promotions/{request.pk}/")
    decide(carol, password="carol-Pa55word!", comment="threat model unchanged")
    # The quorum is met; the gates are checked again before execution, and fail it.
    expect(carol.locator("#status")).to_have_text("Failed")
    expect(carol.locator("dl.facts dd.error")).to_have_text(
        "gate scan_clean failed: scan verdict: unsafe; "
        "gate evaluation_passed failed: no verified evaluation that PASSED"
    )

    assert executions == [request.pk]
    request.refresh_from_db()
    assert request.status == PromotionStatus.FAILED
    assert alias_in_mlflow(mlflow_store, "fraud", "staging") == 1
    grace.reload()
    expect(grace.locator("#status")).to_have_text("Failed")
    expect(gate_row(grace, "scan_clean")).to_contain_text("FAIL")
    grace.goto("/models/fraud/")
    history = grace.locator("h2:text-is('Alias history') + table tbody tr")
    expect(history).to_have_count(1)  # only MLflow's alias as first seen: nothing moved it
    expect(history.locator("td")).to_have_text(
        [re.compile(r"\d"), "staging", "—", "v1", "not reported by MLflow", "Manual sync"]
    )
