"""Mirroring MLflow into the registry: what appears, idempotency, aliases, deletions, failures."""

from __future__ import annotations

from typing import Any

import mlflow
import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from registry import services
from registry.choices import AliasChangeSource, SyncStatus, SyncTrigger, VersionStatus
from registry.mlflow_gateway import MlflowUnavailable
from registry.models import (
    AliasHistory,
    Dataset,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    Run,
    RunInput,
    SyncRun,
)
from tests.conftest import MlflowStore

pytestmark = pytest.mark.django_db


def sync(model_name: str | None = None) -> services.SyncReport:
    return services.mlflow_sync(trigger=SyncTrigger.MANUAL, model_name=model_name)


def test_version_registered_with_the_client_appears_with_its_run_and_datasets(
    mlflow_store: MlflowStore,
) -> None:
    run_id = mlflow_store.run(
        user="alice",
        params={"lr": "0.01", "epochs": "5"},
        metrics={"auc": 0.93},
        datasets=[("transactions", "a1b2c3d4", "training"), ("holdout", "99887766", "eval")],
    )
    number = mlflow_store.version("fraud-detector", run_id=run_id)

    report = sync()

    version = ModelVersion.objects.select_related("registered_model", "run").get()
    assert (version.registered_model.name, version.version) == ("fraud-detector", number)
    assert version.source == f"runs:/{run_id}/model"
    assert version.mlflow_run_id == run_id
    assert version.status == VersionStatus.REGISTERED
    assert version.mlflow_status == "READY"
    assert version.run is not None
    assert version.run.user == "alice"
    assert version.run.params == {"lr": "0.01", "epochs": "5"}
    assert version.run.metrics == {"auc": 0.93}
    assert version.run.status == "FINISHED"
    inputs = {i.dataset.name: i for i in RunInput.objects.select_related("dataset")}
    assert set(inputs) == {"transactions", "holdout"}
    assert inputs["transactions"].context == "training"
    assert inputs["transactions"].dataset.digest == "a1b2c3d4"
    assert inputs["transactions"].dataset.source_type == "s3"
    assert inputs["transactions"].dataset.schema == {
        "mlflow_colspec": [{"type": "double", "name": "amount"}]
    }
    assert report.counts["versions_created"] == 1
    assert report.counts["datasets_created"] == 2


def test_log_model_and_register_model_both_appear_with_the_logged_model_id(
    mlflow_store: MlflowStore,
) -> None:
    class Echo(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
        def predict(self, context: Any, model_input: list[Any]) -> list[Any]:
            return model_input

    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(
            name="model", python_model=Echo(), registered_model_name="churn"
        )
    mlflow.register_model(f"runs:/{run.info.run_id}/model", "churn-copy")

    sync()

    churn = ModelVersion.objects.get(registered_model__name="churn")
    assert churn.logged_model_id == info.model_id
    assert churn.mlflow_run_id == run.info.run_id
    assert ModelVersion.objects.filter(registered_model__name="churn-copy").exists()


def test_a_second_sync_changes_nothing(mlflow_store: MlflowStore) -> None:
    for name in ("a", "b"):
        mlflow_store.version(name, datasets=[("d", "deadbeef", "training")])
    mlflow_store.client.set_registered_model_alias("a", "production", "1")
    sync()
    tables = [RegisteredModel, ModelVersion, Run, Dataset, RunInput, ModelAlias, AliasHistory]
    before = {
        t.__name__: [model_to_dict(row) for row in t._default_manager.order_by("pk")]
        for t in tables
    }

    report = sync()

    after = {
        t.__name__: [model_to_dict(row) for row in t._default_manager.order_by("pk")]
        for t in tables
    }
    assert report.changed == 0
    assert after == before


def test_changed_run_metrics_are_updated(mlflow_store: MlflowStore) -> None:
    run_id = mlflow_store.run(metrics={"auc": 0.8})
    mlflow_store.version("m", run_id=run_id)
    sync()
    mlflow_store.client.log_metric(run_id, "auc", 0.85)

    report = sync()

    assert report.counts["runs_updated"] == 1
    assert Run.objects.get().metrics == {"auc": 0.85}


def test_alias_moves_are_mirrored_and_kept_in_history(mlflow_store: MlflowStore) -> None:
    client = mlflow_store.client
    mlflow_store.version("m")
    mlflow_store.version("m")
    client.set_registered_model_alias("m", "production", "1")
    sync()
    client.set_registered_model_alias("m", "production", "2")
    sync()
    client.delete_registered_model_alias("m", "production")
    sync()

    assert not ModelAlias.objects.exists()
    moves = [
        (
            h.from_version.version if h.from_version else None,
            h.to_version.version if h.to_version else None,
        )
        for h in AliasHistory.objects.order_by("id")
    ]
    assert moves == [(None, 1), (1, 2), (2, None)]
    assert {h.source for h in AliasHistory.objects.all()} == {AliasChangeSource.MANUAL}
    assert all(h.alias == "production" for h in AliasHistory.objects.all())


def test_current_alias_points_at_its_version(mlflow_store: MlflowStore) -> None:
    mlflow_store.version("m")
    mlflow_store.version("m")
    mlflow_store.client.set_registered_model_alias("m", "staging", "2")
    sync()

    alias = ModelAlias.objects.select_related("version").get()
    assert (alias.alias, alias.version.version) == ("staging", 2)


def test_a_version_deleted_in_mlflow_is_marked_deleted_never_erased(
    mlflow_store: MlflowStore,
) -> None:
    mlflow_store.version("m")
    mlflow_store.version("m")
    sync()
    mlflow_store.client.delete_model_version("m", "1")

    report = sync()

    deleted = ModelVersion.objects.get(version=1)
    assert deleted.status == VersionStatus.DELETED
    assert deleted.deleted_at is not None
    assert ModelVersion.objects.get(version=2).status == VersionStatus.REGISTERED
    assert report.counts["versions_deleted"] == 1
    assert sync().changed == 0


def test_a_model_deleted_in_mlflow_is_marked_deleted_with_its_versions(
    mlflow_store: MlflowStore,
) -> None:
    mlflow_store.version("gone")
    mlflow_store.version("kept")
    sync()
    mlflow_store.client.delete_registered_model("gone")

    sync()

    assert RegisteredModel.objects.get(name="gone").deleted_at is not None
    assert ModelVersion.objects.get(registered_model__name="gone").status == VersionStatus.DELETED
    assert RegisteredModel.objects.get(name="kept").deleted_at is None


def test_syncing_one_model_leaves_the_others_alone(mlflow_store: MlflowStore) -> None:
    mlflow_store.version("a")
    sync()
    mlflow_store.version("b")

    report = sync(model_name="b")

    assert report.counts["models_created"] == 1
    assert RegisteredModel.objects.get(name="a").deleted_at is None
    assert set(RegisteredModel.objects.values_list("name", flat=True)) == {"a", "b"}


def test_mlflow_unreachable_raises_and_writes_nothing(mlflow_down: str) -> None:
    with pytest.raises(MlflowUnavailable) as raised:
        sync()

    assert raised.value.code == "mlflow_unavailable"
    assert not RegisteredModel.objects.exists()
    failed = SyncRun.objects.get()
    assert failed.status == SyncStatus.FAILED
    assert "MLflow is unavailable" in failed.error


def test_a_failure_while_writing_rolls_everything_back(
    mlflow_store: MlflowStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow_store.version("m", datasets=[("d", "deadbeef", "training")])

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(services.sync, "_sync_aliases", explode)
    with pytest.raises(RuntimeError):
        sync()

    assert not RegisteredModel.objects.exists()
    assert not Run.objects.exists()
    assert not Dataset.objects.exists()


def test_successful_sync_is_recorded(mlflow_store: MlflowStore) -> None:
    mlflow_store.version("m")
    sync()

    recorded = SyncRun.objects.get()
    assert recorded.status == SyncStatus.SUCCEEDED
    assert recorded.trigger == SyncTrigger.MANUAL
    assert recorded.changes["versions_created"] == 1


def test_an_older_read_applied_after_a_newer_one_changes_nothing(
    mlflow_store: MlflowStore,
) -> None:
    """Beat's reconcile and a webhook's sync overlap: the one that read MLflow first but
    writes last must not move the alias back."""
    from registry import mlflow_gateway

    mlflow_store.version("m")
    mlflow_store.version("m")
    mlflow_store.client.set_registered_model_alias("m", "production", "1")
    older_run = SyncRun.objects.create(trigger=SyncTrigger.SCHEDULE, started_at=timezone.now())
    older_snapshot = mlflow_gateway.fetch_snapshot()
    mlflow_store.client.set_registered_model_alias("m", "production", "2")
    sync(model_name="m")  # the newer read, applied first

    report = services.sync._apply_snapshot(
        older_snapshot, sync_run=older_run, trigger=SyncTrigger.SCHEDULE
    )

    assert report.superseded is False  # a full sync is only superseded for model m
    assert report.changed == 0
    assert ModelAlias.objects.get().version.version == 2
    assert AliasHistory.objects.count() == 1


def test_a_full_sync_superseded_by_a_newer_full_sync_writes_nothing(
    mlflow_store: MlflowStore,
) -> None:
    from registry import mlflow_gateway

    mlflow_store.version("m")
    sync()
    older_run = SyncRun.objects.create(trigger=SyncTrigger.SCHEDULE, started_at=timezone.now())
    older_snapshot = mlflow_gateway.fetch_snapshot()
    mlflow_store.client.delete_model_version("m", "1")
    sync()

    report = services.sync._apply_snapshot(
        older_snapshot, sync_run=older_run, trigger=SyncTrigger.SCHEDULE
    )

    assert report.superseded
    assert ModelVersion.objects.get().status == VersionStatus.DELETED
    older_run.refresh_from_db()
    assert older_run.changes == {"superseded": 1}
