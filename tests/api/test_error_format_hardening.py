"""Every refusal under /api/ is JSON in the one error format, ``{"code", "detail"}``, whatever
refuses: the JSON parser given a body nested too deeply for it, Django refusing a request's
shape (too many fields) or size, or the server failing outright (with the request's id, which
ties the answer to the server's log). Outside /api/ a server error stays Django's HTML page."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.test import Client

from compliance import promotions, tasks
from compliance.choices import PromotionStatus
from compliance.evidence import selectors as evidence_selectors
from compliance.models import ApiToken, EvidenceBundle, PromotionRequest
from tests.api.conftest import World, bearer, signed_in

pytestmark = pytest.mark.django_db

DEPTH = 2000  # far past what json.loads recurses through
DEEP_OBJECT = b'{"a": ' * DEPTH + b"1" + b"}" * DEPTH
DEEP_ARRAY = b"[" * DEPTH + b"]" * DEPTH
WRITES = [
    "/api/v1/promotions",
    "/api/v1/promotions/break-glass",
    "/api/v1/evidence",
    "/api/v1/tokens",
]
FORM = "application/x-www-form-urlencoded"


def refused(response: Any, status: int, code: str) -> str:
    """The refusal's ``detail``, once it is JSON ``{"code": code, "detail": ...}``."""
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"code", "detail"}, body
    assert body["code"] == code, body
    detail = body["detail"]
    assert isinstance(detail, str)
    assert detail
    return detail


@pytest.fixture
def api(client: Client, superuser: User) -> Client:
    """Signed in as someone who may write everywhere; answering as a real server does."""
    client.raise_request_exception = False
    return signed_in(client, superuser)


def nothing_written() -> None:
    assert not PromotionRequest.objects.exists()
    assert not EvidenceBundle.objects.exists()
    assert not ApiToken.objects.exists()


# --- a body nested too deeply --------------------------------------------------------------------


@pytest.mark.parametrize("body", [DEEP_OBJECT, DEEP_ARRAY], ids=["objects", "arrays"])
@pytest.mark.parametrize("url", WRITES)
def test_a_body_nested_too_deeply_is_a_parse_error(api: Client, url: str, body: bytes) -> None:
    response = api.generic("POST", url, body, content_type="application/json")

    refused(response, 400, "parse_error")
    nothing_written()


def test_a_body_nested_too_deeply_approves_nothing(
    client: Client, world: World, personas: dict[str, User]
) -> None:
    client.raise_request_exception = False
    promotion = promotions.promotion_request_create(
        version=world.versions["fraud/1"], alias="staging", reason="r", requester=personas["grace"]
    )

    with mock.patch.object(tasks.promotion_execute, "delay") as execute:
        response = client.generic(
            "POST",
            f"/api/v1/promotions/{promotion.pk}/approve",
            DEEP_OBJECT,
            content_type="application/json",
            headers=bearer(personas["bob"], "approve"),
        )

    refused(response, 400, "parse_error")
    promotion.refresh_from_db()
    assert promotion.status == PromotionStatus.PENDING
    assert not promotion.approvals.exists()
    execute.assert_not_called()


def test_a_body_nested_a_hundred_deep_is_still_parsed_and_judged(api: Client) -> None:
    nested = b'{"a": ' * 100 + b"1" + b"}" * 100
    body = b'{"scope": ' + nested + b"}"

    response = api.generic("POST", "/api/v1/evidence", body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response.json()["code"] != "parse_error"
    nothing_written()


# --- Django refusing a request's shape or size ---------------------------------------------------


def too_many_fields(settings: Any) -> bytes:
    count = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1
    return "&".join(f"f{i}=1" for i in range(count)).encode()


@pytest.mark.parametrize("url", WRITES)
def test_too_many_form_fields_is_a_json_400(api: Client, settings: Any, url: str) -> None:
    response = api.generic("POST", url, too_many_fields(settings), content_type=FORM)

    refused(response, 400, "bad_request")
    nothing_written()


def test_too_many_form_fields_with_a_token_is_a_json_400(
    client: Client, superuser: User, settings: Any
) -> None:
    client.raise_request_exception = False
    response = client.generic(
        "POST",
        "/api/v1/promotions",
        too_many_fields(settings),
        content_type=FORM,
        headers=bearer(superuser, "approve"),
    )

    refused(response, 400, "bad_request")
    assert not PromotionRequest.objects.exists()


def test_too_many_form_fields_under_csrf_checks_is_a_json_400(
    superuser: User, settings: Any
) -> None:
    """A browser's session: the CSRF check reads the form first, and refuses it the same way."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(superuser)
    client.cookies["csrftoken"] = "a" * 32

    response = client.generic(
        "POST", "/api/v1/tokens", too_many_fields(settings), content_type=FORM
    )

    refused(response, 400, "bad_request")
    assert not ApiToken.objects.exists()


def test_too_many_query_parameters_is_a_json_400(api: Client, settings: Any) -> None:
    response = api.get(f"/api/v1/models?{too_many_fields(settings).decode()}")

    refused(response, 400, "bad_request")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [(FORM, b"reason=" + b"x" * 2048), ("application/json", b'{"reason": "' + b"x" * 2048 + b'"}')],
    ids=["form", "json"],
)
@pytest.mark.parametrize("url", WRITES)
def test_a_body_over_the_upload_limit_is_a_json_413(
    api: Client, settings: Any, url: str, content_type: str, body: bytes
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = api.generic("POST", url, body, content_type=content_type)

    refused(response, 413, "request_too_large")
    nothing_written()


# --- a server error -------------------------------------------------------------------------------


@pytest.fixture
def broken(monkeypatch: pytest.MonkeyPatch, superuser: User) -> Client:
    """The evidence bundles' selector failing, for the API and the pages alike."""

    def fail(**_: Any) -> Any:
        raise RuntimeError("the selector broke: secret internals")

    monkeypatch.setattr(evidence_selectors, "bundles_visible", fail)
    client = Client(raise_request_exception=False)
    client.force_login(superuser)
    return client


def test_a_server_error_under_api_is_json_naming_the_request(broken: Client) -> None:
    response = broken.get("/api/v1/evidence", headers={"X-Request-ID": "trace-0123456789"})

    detail = refused(response, 500, "server_error")
    assert response["X-Request-ID"] == "trace-0123456789"
    assert "(request trace-0123456789)" in detail
    assert "secret internals" not in response.content.decode()


def test_a_server_error_names_the_id_the_registry_gave_the_request(broken: Client) -> None:
    response = broken.get("/api/v1/evidence")

    detail = refused(response, 500, "server_error")
    request_id = response["X-Request-ID"]
    assert request_id
    assert f"(request {request_id})" in detail


def test_a_server_error_outside_the_api_is_still_the_html_page(broken: Client) -> None:
    response = broken.get("/governance/evidence/")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert b"Server Error (500)" in response.content
    assert b"secret internals" not in response.content
