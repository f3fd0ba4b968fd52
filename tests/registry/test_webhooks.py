"""MLflow webhook deliveries: signed the way MLflow signs them, refused when anything is off."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client
from mlflow.webhooks.delivery import _generate_hmac_signature

from registry import tasks
from registry.choices import WebhookOutcome
from registry.models import WebhookDelivery
from registry.webhooks import WebhookRefused, expected_signature, verify_delivery

SECRET = "whsec-test-0123456789"
URL = "/webhooks/mlflow"
PAYLOAD = {
    "entity": "model_version",
    "action": "created",
    "timestamp": "2026-11-22T00:00:00+00:00",
    "data": {"name": "fraud-detector", "version": "3", "source": "models:/m-1", "run_id": "r"},
}


def signed_headers(
    body: str, *, secret: str = SECRET, timestamp: int | None = None, delivery_id: str | None = None
) -> dict[str, str]:
    """Headers exactly as MLflow's own delivery code builds them."""
    delivery_id = delivery_id or str(uuid.uuid4())
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    return {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": _generate_hmac_signature(secret, delivery_id, stamp, body),
    }


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.mlflow_sync_model, "delay", lambda *args: calls.append(args))
    return calls


@pytest.fixture
def post(
    client: Client, settings: Any, django_capture_on_commit_callbacks: Any
) -> Callable[..., Any]:
    settings.MLFLOW_WEBHOOK_SECRET = SECRET

    def send(body: str, headers: dict[str, str]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(URL, data=body, content_type="application/json", headers=headers)

    return send


def test_our_signature_matches_mlflows_own() -> None:
    body = json.dumps(PAYLOAD)
    assert expected_signature(SECRET, "id-1", "1700000000", body.encode()) == (
        _generate_hmac_signature(SECRET, "id-1", "1700000000", body)
    )


@pytest.mark.django_db
def test_a_signed_delivery_is_accepted_and_syncs_the_model_it_names(
    post: Callable[..., Any], queued: list[tuple[Any, ...]]
) -> None:
    body = json.dumps(PAYLOAD)
    headers = signed_headers(body)

    response = post(body, headers)

    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookOutcome.ACCEPTED
    assert delivery.delivery_id == headers["X-MLflow-Delivery-Id"]
    assert delivery.event == "model_version.created"
    assert queued == [("fraud-detector", "webhook")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("tamper", "status", "code"),
    [
        ("wrong_secret", 401, "webhook_signature_invalid"),
        ("no_signature", 401, "webhook_signature_missing"),
        ("body_changed", 401, "webhook_signature_invalid"),
        ("stale", 400, "webhook_stale"),
        ("future", 400, "webhook_stale"),
        ("no_timestamp", 400, "webhook_headers_missing"),
    ],
)
def test_a_bad_delivery_is_refused_recorded_and_changes_nothing(
    post: Callable[..., Any],
    queued: list[tuple[Any, ...]],
    tamper: str,
    status: int,
    code: str,
) -> None:
    body = json.dumps(PAYLOAD)
    now = int(time.time())
    headers = signed_headers(
        body,
        secret="not-the-secret" if tamper == "wrong_secret" else SECRET,
        timestamp={"stale": now - 3600, "future": now + 3600}.get(tamper, now),
    )
    if tamper == "no_signature":
        del headers["X-MLflow-Signature"]
    if tamper == "no_timestamp":
        del headers["X-MLflow-Timestamp"]
    sent = body.replace("fraud-detector", "other-model") if tamper == "body_changed" else body

    response = post(sent, headers)

    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert queued == []
    refusal = WebhookDelivery.objects.get()
    assert refusal.outcome == WebhookOutcome.REFUSED
    assert refusal.reason == response.json()["detail"]


@pytest.mark.django_db
def test_a_replayed_delivery_is_refused(
    post: Callable[..., Any], queued: list[tuple[Any, ...]]
) -> None:
    body = json.dumps(PAYLOAD)
    headers = signed_headers(body)
    assert post(body, headers).status_code == 202

    replay = post(body, headers)

    assert replay.status_code == 409
    assert replay.json()["code"] == "webhook_replayed"
    assert len(queued) == 1
    assert WebhookDelivery.objects.filter(outcome=WebhookOutcome.REFUSED).count() == 1


@pytest.mark.django_db
def test_webhooks_are_refused_when_no_secret_is_configured(
    client: Client, settings: Any, queued: list[tuple[Any, ...]]
) -> None:
    settings.MLFLOW_WEBHOOK_SECRET = ""
    body = json.dumps(PAYLOAD)

    response = client.post(
        URL, data=body, content_type="application/json", headers=signed_headers(body)
    )

    assert response.status_code == 503
    assert response.json()["code"] == "webhook_not_configured"
    assert queued == []


@pytest.mark.django_db
def test_a_signed_body_that_is_not_json_is_refused(
    post: Callable[..., Any], queued: list[tuple[Any, ...]]
) -> None:
    response = post("not json", signed_headers("not json"))

    assert response.status_code == 400
    assert response.json()["code"] == "webhook_payload_invalid"
    assert queued == []


@pytest.mark.django_db
def test_get_is_not_allowed(client: Client) -> None:
    assert client.get(URL).status_code == 405


def test_verify_accepts_any_of_several_signatures() -> None:
    body = json.dumps(PAYLOAD).encode()
    stamp = str(int(time.time()))
    good = expected_signature(SECRET, "d1", stamp, body)
    headers = {
        "X-MLflow-Signature": f"v1,AAAA {good}",
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Delivery-Id": "d1",
    }

    payload = verify_delivery(
        body=body, headers=headers, secret=SECRET, now=datetime.now(UTC), tolerance_seconds=300
    )

    assert payload["data"]["name"] == "fraud-detector"


def test_verify_rejects_a_non_numeric_timestamp() -> None:
    body = b"{}"
    headers = {
        "X-MLflow-Signature": expected_signature(SECRET, "d1", "soon", body),
        "X-MLflow-Timestamp": "soon",
        "X-MLflow-Delivery-Id": "d1",
    }
    with pytest.raises(WebhookRefused) as refused:
        verify_delivery(
            body=body, headers=headers, secret=SECRET, now=datetime.now(UTC), tolerance_seconds=300
        )
    assert refused.value.code == "webhook_timestamp_invalid"


@pytest.mark.django_db
def test_a_malformed_content_length_is_refused_not_a_crash(client: Client, settings: Any) -> None:
    settings.MLFLOW_WEBHOOK_SECRET = SECRET

    response = client.post(
        URL, data="{}", content_type="application/json", headers={"Content-Length": "lots"}
    )

    assert response.status_code == 413
    assert response.json()["code"] == "webhook_too_large"
