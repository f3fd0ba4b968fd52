"""GET /healthz: 200 only when the database, MLflow and the broker all answer."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from config import health
from tests.conftest import MlflowStore

pytestmark = pytest.mark.django_db


def test_all_reachable_is_200(client: Client, mlflow_store: MlflowStore) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "mlflow": "ok",
        "broker": "ok",
    }
    assert "last_success_at" in body["last_sync"]


def test_mlflow_down_is_503_with_the_reason(client: Client, mlflow_down: str) -> None:
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["mlflow"]["status"] == "error"
    assert "MLflow is unavailable" in body["checks"]["mlflow"]["detail"]
    assert body["checks"]["database"]["status"] == "ok"


def test_broker_down_is_503(
    client: Client, mlflow_store: MlflowStore, settings: Any, unused_port: int
) -> None:
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{unused_port}/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["status"] == "error"


def test_database_down_is_503(
    client: Client, mlflow_store: MlflowStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> None:
        raise ConnectionError("could not connect to server")

    monkeypatch.setattr(health, "_check_database", refuse)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["database"]["detail"].startswith("ConnectionError")


def test_credentials_never_appear_in_the_answer(
    client: Client, settings: Any, unused_port: int
) -> None:
    settings.MLFLOW_TRACKING_URI = f"http://user:s3cret@127.0.0.1:{unused_port}"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert "s3cret" not in response.content.decode()


def test_last_sync_failure_is_reported(client: Client, mlflow_down: str) -> None:
    from registry import services
    from registry.choices import SyncTrigger
    from registry.mlflow_gateway import MlflowUnavailable

    with pytest.raises(MlflowUnavailable):
        services.mlflow_sync(trigger=SyncTrigger.SCHEDULE)

    body = client.get("/healthz").json()

    assert body["last_sync"]["last_success_at"] is None
    assert "MLflow is unavailable" in body["last_sync"]["last_error"]


def test_credentials_in_any_failing_check_are_scrubbed(
    client: Client, mlflow_store: MlflowStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> None:
        raise ConnectionError("could not reach postgres://registry:s3cret@db:5432/registry\nmore")

    monkeypatch.setattr(health, "_check_database", refuse)

    detail = client.get("/healthz").json()["checks"]["database"]["detail"]

    assert "s3cret" not in detail
    assert detail == "ConnectionError: could not reach postgres://***@db:5432/registry"
