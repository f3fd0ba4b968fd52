"""manage.py sync_mlflow and mlflow_webhook_register."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from registry.models import ModelVersion
from tests.conftest import MlflowStore

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_sync_mlflow_mirrors_and_says_what_changed(
    mlflow_store: MlflowStore, capsys: pytest.CaptureFixture[str]
) -> None:
    mlflow_store.version("fraud")
    mlflow_store.version("fraud")

    out, _ = run("sync_mlflow")

    assert "versions_created=2" in out
    assert ModelVersion.objects.count() == 2
    progress = capsys.readouterr().err
    assert "MLflow versions" in progress  # the tqdm progress bar


def test_a_second_sync_mlflow_says_nothing_changed(mlflow_store: MlflowStore) -> None:
    mlflow_store.version("fraud")
    run("sync_mlflow", "--no-progress")

    out, _ = run("sync_mlflow", "--no-progress")

    assert out.strip() == "In sync: nothing changed."


def test_sync_mlflow_for_one_model(mlflow_store: MlflowStore) -> None:
    mlflow_store.version("fraud")
    mlflow_store.version("churn")

    run("sync_mlflow", "--model", "churn", "--no-progress")

    assert list(ModelVersion.objects.values_list("registered_model__name", flat=True)) == ["churn"]


def test_sync_mlflow_with_mlflow_down_fails_with_the_reason(mlflow_down: str) -> None:
    with pytest.raises(CommandError, match="MLflow is unavailable"):
        run("sync_mlflow", "--no-progress")


def test_registering_the_webhook_needs_a_secret(settings: Any) -> None:
    settings.MLFLOW_WEBHOOK_SECRET = ""

    with pytest.raises(CommandError) as raised:
        run("mlflow_webhook_register", "https://registry.example.org/webhooks/mlflow")

    assert raised.value.returncode == 2
    assert "MLFLOW_WEBHOOK_SECRET" in str(raised.value)
