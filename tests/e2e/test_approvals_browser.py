"""In a real browser (Debian's Chromium, headless, driven by Playwright) against a live server:
grace asks for a promotion from the version page, bob and carol approve it after re-entering
their passwords, and the request is approved and queued for execution.

Every person has their own browser context (their own cookies), signs in through the login
form, and acts only through what the pages offer. Screenshots are saved when a test fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from compliance import tasks
from compliance.choices import PromotionStatus
from compliance.models import Approval, PromotionRequest
from compliance.policies import policy_save
from provenance.log_format import Actor
from provenance.models import Artifact, ArtifactKind
from registry.models import ModelVersion, RegisteredModel

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


@pytest.fixture
def fraud_v1(personas: dict[str, User], settings: Any, tmp_path: Path) -> ModelVersion:
    """fraud v1, authored by alice and hashed, and the staging policy for high-risk models."""
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""
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
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Callable[[str], Page]]:
    """``sign_in("bob")``: a fresh browser context in which bob has signed in."""
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
