"""Mirroring 1,000 model versions from a local MLflow store, against a bare client loop.

Baseline: ``MlflowClient.search_model_versions`` (paged) + ``get_run`` for every version, the
least any mirror must do. Measured: the registry's full sync into an empty database, then a
second sync with nothing changed. Target (issue 2): first sync at most 1.5x the baseline.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

VERSIONS = int(os.environ.get("BENCH_SYNC_VERSIONS", "1000"))
MODELS = 50
REPEAT = 3


def _populate(uri: str) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri, uri)
    for index in range(MODELS):
        client.create_registered_model(f"model-{index:03d}")
    for number in range(VERSIONS):
        run = client.create_run("0", tags={"mlflow.user": f"user-{number % 7}"})
        run_id = run.info.run_id
        client.log_param(run_id, "lr", str(0.001 * (number % 10 + 1)))
        client.log_metric(run_id, "auc", 0.8 + (number % 100) / 1000)
        client.set_terminated(run_id)
        name = f"model-{number % MODELS:03d}"
        client.create_model_version(name, f"runs:/{run_id}/model", run_id)
    for index in range(MODELS):
        client.set_registered_model_alias(f"model-{index:03d}", "production", "1")


def _baseline(uri: str) -> float:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri, uri)
    started = time.perf_counter()
    token = None
    seen = 0
    while True:
        page = client.search_model_versions(max_results=1000, page_token=token)
        for version in page:
            client.get_run(version.run_id or "")
            seen += 1
        token = page.token
        if not token:
            break
    assert seen == VERSIONS, seen
    return time.perf_counter() - started


def _reset_registry() -> None:
    from registry.models import (
        AliasHistory,
        Dataset,
        ModelAlias,
        ModelVersion,
        RegisteredModel,
        Run,
        RunInput,
        SyncRun,
    )  # fmt: skip

    for model in (
        AliasHistory,
        ModelAlias,
        RunInput,
        ModelVersion,
        Dataset,
        Run,
        RegisteredModel,
        SyncRun,
    ):
        model.objects.all().delete()


def _sync() -> tuple[float, int]:
    from registry import services
    from registry.choices import SyncTrigger

    started = time.perf_counter()
    report = services.mlflow_sync(trigger=SyncTrigger.MANUAL)
    return time.perf_counter() - started, report.changed


def run() -> None:
    from django.conf import settings

    from registry import mlflow_gateway

    root = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    settings.MLFLOW_TRACKING_URI = uri
    settings.MLFLOW_DEFAULT_ARTIFACT_ROOT = str(root / "artifacts")
    mlflow_gateway.ensure_local_store()
    started = time.perf_counter()
    _populate(uri)
    print(f"populated {VERSIONS} versions in {time.perf_counter() - started:.1f}s")

    baselines, firsts, seconds = [], [], []
    for _ in range(REPEAT):
        baselines.append(_baseline(uri))
        _reset_registry()
        first, changed = _sync()
        firsts.append(first)
        second, unchanged = _sync()
        seconds.append(second)
        assert unchanged == 0, unchanged
    base = statistics.median(baselines)
    first = statistics.median(firsts)
    second = statistics.median(seconds)
    print(f"baseline search_model_versions + get_run: {base * 1000:.0f} ms (median of {REPEAT})")
    print(
        f"registry first sync ({changed} changes): {first * 1000:.0f} ms"
        f"  ratio {first / base:.2f}x  (target <= 1.5x)"
    )
    print(f"registry second sync (no change): {second * 1000:.0f} ms  ratio {second / base:.2f}x")
