"""Faults during a promotion's execution, with real processes: an ``mlflow server`` that stops
and comes back, and Celery workers, one of them killed in the middle of the task.

The request waits in ``executing`` through every fault and is recorded exactly once: one
promotion attestation, one ``promotion.promoted`` event, the alias set in MLflow.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import pandas as pd
import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from kombu import Queue
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from compliance import tasks
from compliance.choices import PromotionStatus
from compliance.models import ModelRiskTier, PromotionRequest
from compliance.policies import policy_save
from config.celery import app as celery_app
from provenance import predicates
from provenance.log_format import Actor
from provenance.models import Attestation
from registry import services
from registry.choices import AliasChangeSource, SyncTrigger
from registry.models import AliasHistory, ExpectedAliasChange, ModelVersion
from tests.compliance.test_promotions import STAGING, approved, events
from tests.e2e.processes import (
    HoldingProxy,
    kill,
    start_celery_worker,
    start_mlflow_server,
    stop,
    wait_for,
)
from tests.e2e.test_real_processes import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@dataclass
class MlflowServer:
    """A real ``mlflow server`` that a test may stop and start again (same store, same port)."""

    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = start_mlflow_server(self.root, self.port)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def registry_on_server(mlflow_server: MlflowServer, settings: Any) -> Iterator[MlflowServer]:
    """The registry (and MLflow's client in this process) pointed at the running server."""
    mlflow_server.start()  # in case a test before stopped it and failed
    settings.MLFLOW_TRACKING_URI = mlflow_server.url
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server.url)
    mlflow.set_registry_uri(mlflow_server.url)
    yield mlflow_server
    mlflow.set_tracking_uri(previous)
    mlflow.set_registry_uri(previous)


@pytest.fixture
def queue() -> Iterator[str]:
    """This test's own Celery queue: its workers never take anyone else's tasks."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    # Whatever the stopped workers handed back (a retry still waiting out its back-off).
    with celery_app.connection_for_write() as broker:
        Queue(name, channel=broker.default_channel).purge()


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture
def start_worker(
    queue: str, test_database_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    """``start_worker(mlflow_uri)``: a real worker on this test's queue, stopped at the end."""
    started: list[Worker] = []

    def start(mlflow_uri: str, **env: str) -> Worker:
        log = tmp_path / f"worker-{len(started) + 1}.log"
        env = {**test_database_env, "MLFLOW_TRACKING_URI": mlflow_uri, **env}
        started.append(Worker(start_celery_worker(env, queue, log), log))
        return started[-1]

    yield start
    for worker in started:
        stop(worker.process)


def log_model(name: str) -> ModelVersion:
    """Log a small scikit-learn model to the server as ``name`` v1 and mirror it. Its
    requirements are given: MLflow would otherwise infer them in a subprocess (seconds)."""
    data = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0], "label": [0, 0, 1, 1]})
    model = LogisticRegression().fit(data[["amount"]], data["label"])
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model, name="model", registered_model_name=name, pip_requirements=["scikit-learn"]
        )
    services.mlflow_sync(trigger=SyncTrigger.MANUAL, model_name=name)
    return ModelVersion.objects.get(registered_model__name=name)


def approved_request(personas: dict[str, User]) -> tuple[PromotionRequest, str]:
    """A model of its own (the server outlives the test database) logged to the server,
    hashed, authored by alice; staging approved by bob and carol. The request and model name."""
    name = f"fraud-{uuid.uuid4().hex[:8]}"
    logged = log_model(name)
    assert services.model_version_hash(version_pk=logged.pk) is not None
    ModelVersion.objects.filter(pk=logged.pk).update(user_id="alice")
    ModelRiskTier.objects.create(
        registered_model=logged.registered_model,
        tier="high",
        set_by_name="t",
        set_at=timezone.now(),
    )
    policy_save(document=STAGING, actor=Actor.system("test"))
    version = ModelVersion.objects.select_related("run").get(pk=logged.pk)
    return approved(personas, version), name


def status_of(request: PromotionRequest) -> str:
    return PromotionRequest.objects.values_list("status", flat=True).get(pk=request.pk)


def alias_in_mlflow(server: MlflowServer, name: str) -> int:
    client = MlflowClient(server.url, server.url)
    return int(client.get_model_version_by_alias(name, "staging").version)


def resume(queue: str, settings: Any, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the beat's resume task now, as if the request had sat in ``executing`` too long,
    sending what it re-queues to this test's worker."""
    settings.PROMOTION_RESUME_AFTER = 0
    monkeypatch.setattr(
        tasks.promotion_execute,
        "delay",
        lambda request_id: tasks.promotion_execute.apply_async((request_id,), queue=queue),
    )
    return int(tasks.promotion_requests_resume())


def assert_recorded_once(request: PromotionRequest, name: str) -> None:
    request.refresh_from_db()
    assert request.status == PromotionStatus.PROMOTED
    assert request.attempts == 1  # one move to executing, however many tries
    promotions = Attestation.objects.filter(predicate_type=predicates.PREDICATE_PROMOTION)
    assert promotions.count() == 1
    assert len(events("promotion.executing")) == 1
    assert len(events("promotion.promoted")) == 1
    history = AliasHistory.objects.filter(registered_model__name=name, alias="staging")
    assert [h.source for h in history] == [AliasChangeSource.REGISTRY]
    assert not ExpectedAliasChange.objects.filter(consumed_at__isnull=True).exists()


def test_a_promotion_waits_while_mlflow_is_down_and_completes_when_it_is_back(
    registry_on_server: MlflowServer,
    personas: dict[str, User],
    *,
    queue: str,
    start_worker: Callable[..., Worker],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MLflow is down when the worker executes the request: the task retries with back-off
    and the request waits in ``executing``; MLflow restarts and the promotion completes."""
    server = registry_on_server
    worker = start_worker(server.url)  # boots while the model is logged and approved
    request, name = approved_request(personas)
    server.stop()

    tasks.promotion_execute.apply_async((request.pk,), queue=queue)
    wait_for(
        lambda: "retry: Retry in" in worker.log.read_text(),
        timeout=120,
        what="the task to fail on MLflow being down and be retried",
    )
    assert status_of(request) == PromotionStatus.EXECUTING
    server.start()
    # The retry's back-off grew while MLflow was down (5 s, doubled at each try): the beat's
    # resume re-queues the request without waiting for it. Of the two executions the one
    # that comes second does nothing (and finds nothing to resume if the retry came first).
    resumed = resume(queue, settings, monkeypatch)
    assert resumed == 1 or status_of(request) == PromotionStatus.PROMOTED
    wait_for(
        lambda: status_of(request) == PromotionStatus.PROMOTED,
        timeout=180,
        what="the promotion to complete once MLflow is back",
    )

    assert alias_in_mlflow(server, name) == 1
    assert_recorded_once(request, name)


def test_a_worker_killed_mid_execution_is_replaced_and_records_the_promotion_once(
    registry_on_server: MlflowServer,
    personas: dict[str, User],
    *,
    queue: str,
    start_worker: Callable[..., Worker],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed at the worst moment: MLflow has moved the alias, the registry has not recorded
    it yet. The workers reach MLflow through a proxy that holds that one answer."""
    server = registry_on_server
    proxy = HoldingProxy(
        server.url,
        hold=lambda method, path: method == "POST" and path.endswith("/registered-models/alias"),
    )
    try:
        # The held call must still be waiting when the worker is killed.
        first = start_worker(proxy.url, MLFLOW_HTTP_REQUEST_TIMEOUT="300")
        request, name = approved_request(personas)

        tasks.promotion_execute.apply_async((request.pk,), queue=queue)
        wait_for(proxy.held.is_set, timeout=120, what="the worker to set the alias in MLflow")
        kill(first.process)
        assert alias_in_mlflow(server, name) == 1
        assert status_of(request) == PromotionStatus.EXECUTING
        proxy.release()  # its answer goes nowhere now; the next worker is answered at once

        start_worker(proxy.url)
        assert resume(queue, settings, monkeypatch) == 1
        wait_for(
            lambda: status_of(request) == PromotionStatus.PROMOTED,
            timeout=180,
            what="the new worker to complete the promotion",
        )
    finally:
        proxy.close()

    assert alias_in_mlflow(server, name) == 1
    assert_recorded_once(request, name)


@pytest.fixture(autouse=True)
def _show_logs_on_failure(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for log in tmp_path.rglob("*.log"):
            print(f"--- {log}\n{log.read_text()[-4000:]}")  # noqa: T201
