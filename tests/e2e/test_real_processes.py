"""End to end against real processes: an ``mlflow server`` delivering signed webhooks to the
registry, and a real Celery worker running the reconcile (retrying while MLflow is down)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from registry import tasks
from registry.choices import SyncStatus, WebhookOutcome
from registry.models import ModelVersion, RegisteredModel, SyncRun, WebhookDelivery
from tests.conftest import MlflowStore
from tests.e2e.processes import start_celery_worker, start_mlflow_server, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SECRET = "e2e-webhook-secret-0123456789"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    process = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), port)
    yield f"http://127.0.0.1:{port}"
    stop(process)


def test_mlflow_server_webhooks_reach_the_registry_signed_and_sync_the_model(
    mlflow_server: str,
    live_server: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.MLFLOW_TRACKING_URI = mlflow_server
    settings.MLFLOW_WEBHOOK_SECRET = SECRET
    # Run the queued sync inline, in the live server's thread, instead of through a broker.
    monkeypatch.setattr(
        tasks.mlflow_sync_model, "delay", lambda *args: tasks.mlflow_sync_model.apply(args=args)
    )
    from registry import mlflow_gateway

    mlflow_gateway.webhook_ensure(
        name=f"registry-{uuid.uuid4().hex[:8]}",
        url=f"{live_server.url}/webhooks/mlflow",
        secret=SECRET,
        events=["registered_model.created", "model_version.created"],
    )
    client = MlflowClient(mlflow_server, mlflow_server)
    run = client.create_run("0", tags={"mlflow.user": "alice"})
    client.create_registered_model("webhooked")
    client.create_model_version("webhooked", f"runs:/{run.info.run_id}/model", run.info.run_id)

    wait_for(
        lambda: ModelVersion.objects.filter(registered_model__name="webhooked").exists(),
        timeout=60,
        what="the webhook-triggered sync to mirror the new version",
    )
    accepted = WebhookDelivery.objects.filter(outcome=WebhookOutcome.ACCEPTED)
    assert {d.event for d in accepted} >= {"model_version.created"}
    assert not WebhookDelivery.objects.filter(outcome=WebhookOutcome.REFUSED).exists()
    version = ModelVersion.objects.select_related("run").get(registered_model__name="webhooked")
    assert version.run is not None
    assert version.run.user == "alice"


def test_a_real_worker_runs_the_reconcile(
    mlflow_store: MlflowStore, test_database_env: dict[str, str], tmp_path: Path
) -> None:
    mlflow_store.version("from-the-worker", datasets=[("d", "0badc0de", "training")])
    queue = f"test-{uuid.uuid4().hex[:10]}"
    env = {**test_database_env, "MLFLOW_TRACKING_URI": mlflow_store.uri}
    worker = start_celery_worker(env, queue, tmp_path / "worker.log")
    try:
        tasks.mlflow_reconcile.apply_async(queue=queue)
        wait_for(
            lambda: ModelVersion.objects.filter(registered_model__name="from-the-worker").exists(),
            timeout=90,
            what="the worker to mirror the version",
        )
    finally:
        stop(worker)
    assert SyncRun.objects.get().status == SyncStatus.SUCCEEDED


def test_the_worker_retries_while_mlflow_is_down_and_completes_when_it_is_back(
    test_database_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    queue = f"test-{uuid.uuid4().hex[:10]}"
    env = {**test_database_env, "MLFLOW_TRACKING_URI": uri}
    worker = start_celery_worker(env, queue, tmp_path / "worker.log")
    server: subprocess.Popen[bytes] | None = None
    try:
        tasks.mlflow_reconcile.apply_async(queue=queue)
        wait_for(
            lambda: SyncRun.objects.filter(status=SyncStatus.FAILED).exists(),
            timeout=90,
            what="a failed attempt while MLflow is down",
        )
        assert not RegisteredModel.objects.exists()  # nothing half-written
        # The model is in MLflow's store before the server answers: created through the
        # server, it raced the retry, which could find MLflow back but still empty, succeed
        # with nothing to do, and leave the model to no one.
        store = tmp_path / "mlflow"
        store.mkdir()
        offline = f"sqlite:///{store / 'mlflow.db'}"
        MlflowClient(offline, offline).create_registered_model("after-outage")
        server = start_mlflow_server(store, port)
        wait_for(
            lambda: RegisteredModel.objects.filter(name="after-outage").exists(),
            timeout=300,
            what="the retried reconcile to succeed once MLflow is back",
        )
    finally:
        stop(worker)
        if server is not None:
            stop(server)
    failed = SyncRun.objects.filter(status=SyncStatus.FAILED)
    assert failed.count() >= 1
    assert all("MLflow is unavailable" in run.error for run in failed)
    assert SyncRun.objects.filter(status=SyncStatus.SUCCEEDED).count() == 1


@pytest.fixture(autouse=True)
def _show_logs_on_failure(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for log in tmp_path.rglob("*.log"):
            print(f"--- {log}\n{log.read_text()[-4000:]}")  # noqa: T201
