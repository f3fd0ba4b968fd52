"""Model versions hashed by the registry itself from the artifact store, and signed model.sig."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from celery.exceptions import Retry
from django.contrib.auth.models import User
from django.test import Client
from sklearn.linear_model import LogisticRegression

from compliance.models import SecurityRole
from compliance.services import role_grant
from provenance.model_manifest import ModelSignatureError, verify_model
from provenance.models import Artifact, LogEntry, ModelSignature, SigningKey
from registry import mlflow_gateway, services, tasks
from registry.choices import HashStatus, SyncTrigger
from registry.mlflow_gateway import MlflowUnavailable
from registry.models import ModelVersion
from tests.conftest import MlflowStore, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keys_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


def log_model(name: str = "fraud") -> ModelVersion:
    data = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0], "label": [0, 0, 1, 1]})
    with mlflow.start_run():
        model = LogisticRegression().fit(data[["amount"]], data["label"])
        mlflow.sklearn.log_model(model, name="model", registered_model_name=name)
    services.mlflow_sync(trigger=SyncTrigger.MANUAL)
    return ModelVersion.objects.filter(registered_model__name=name).order_by("-version")[0]


def artifact_dir(name: str, version: int, tmp_path: Path) -> Path:
    return mlflow_gateway.download_model_version(name, version, tmp_path / f"check-{version}")


def test_a_version_is_hashed_signed_and_verifiable_with_model_signing(
    mlflow_store: MlflowStore, tmp_path: Path
) -> None:
    version = log_model()

    hashed = services.model_version_hash(version_pk=version.pk)

    assert hashed is not None
    assert hashed.hash_status == HashStatus.HASHED
    assert hashed.hashed_at is not None
    artifact = hashed.model_artifact
    assert artifact is not None
    files = {f["path"] for f in artifact.manifest.files}
    assert "MLmodel" in files
    signature = ModelSignature.objects.get(artifact=artifact)
    model_dir = artifact_dir("fraud", version.version, tmp_path)
    (tmp_path / "model.sig").write_bytes(bytes(signature.bundle))
    verify_model(model_dir, tmp_path / "model.sig", signature.signing_key.public_pem.encode())
    bundle = json.loads(bytes(signature.bundle))
    assert bundle["mediaType"].startswith("application/vnd.dev.sigstore.bundle")


def test_the_model_sig_fails_for_a_changed_file(mlflow_store: MlflowStore, tmp_path: Path) -> None:
    version = log_model()
    services.model_version_hash(version_pk=version.pk)
    signature = ModelSignature.objects.get()
    model_dir = artifact_dir("fraud", version.version, tmp_path)
    (tmp_path / "model.sig").write_bytes(bytes(signature.bundle))
    with (model_dir / "MLmodel").open("a") as handle:
        handle.write("# tampered\n")

    with pytest.raises(ModelSignatureError):
        verify_model(model_dir, tmp_path / "model.sig", signature.signing_key.public_pem.encode())


def test_hashing_is_a_log_event_with_the_digest_as_evidence(mlflow_store: MlflowStore) -> None:
    version = log_model()

    hashed = services.model_version_hash(version_pk=version.pk)

    assert hashed is not None
    assert hashed.model_artifact is not None
    entry = json.loads(bytes(LogEntry.objects.get(event_type="model_version.hashed").entry))
    digest = f"sha256:{hashed.model_artifact.digest}"
    assert entry["object"] == {"type": "model_version", "id": f"fraud/{version.version}"}
    assert entry["after"]["digest"] == digest
    assert entry["evidence"] == [digest]


def test_hashing_again_an_unchanged_model_changes_nothing(mlflow_store: MlflowStore) -> None:
    version = log_model()
    services.model_version_hash(version_pk=version.pk)
    events = LogEntry.objects.count()

    services.model_version_hash(version_pk=version.pk)

    assert Artifact.objects.count() == 1
    assert ModelSignature.objects.count() == 1
    assert LogEntry.objects.count() == events


def test_a_changed_artifact_is_logged_as_a_digest_change(
    mlflow_store: MlflowStore, tmp_path: Path
) -> None:
    version = log_model()
    first = services.model_version_hash(version_pk=version.pk)
    assert first is not None
    assert first.model_artifact is not None
    location = mlflow_store.client.get_model_version_download_uri("fraud", str(version.version))
    with (Path(location) / "MLmodel").open("a") as handle:
        handle.write("# swapped behind the registry's back\n")

    second = services.model_version_hash(version_pk=version.pk)

    assert second is not None
    assert second.model_artifact is not None
    assert second.model_artifact.digest != first.model_artifact.digest
    entry = json.loads(bytes(LogEntry.objects.get(event_type="model_version.digest_changed").entry))
    assert entry["before"] == {"digest": f"sha256:{first.model_artifact.digest}"}
    assert entry["after"]["digest"] == f"sha256:{second.model_artifact.digest}"


def test_mlflow_down_marks_the_version_failed_and_raises_for_a_retry(
    mlflow_store: MlflowStore, settings: Any, unused_port: int
) -> None:
    version = log_model()
    settings.MLFLOW_TRACKING_URI = f"http://127.0.0.1:{unused_port}"

    with pytest.raises(MlflowUnavailable):
        services.model_version_hash(version_pk=version.pk)

    version.refresh_from_db()
    assert version.hash_status == HashStatus.FAILED
    assert "MLflow is unavailable" in version.hash_error
    assert version.model_artifact is None


def test_the_task_retries_with_backoff_when_mlflow_is_unavailable(
    mlflow_store: MlflowStore, settings: Any, unused_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = log_model()
    settings.MLFLOW_TRACKING_URI = f"http://127.0.0.1:{unused_port}"
    retries: list[dict[str, Any]] = []

    def retry(**kwargs: Any) -> None:
        retries.append(kwargs)
        raise Retry(exc=kwargs.get("exc"))

    monkeypatch.setattr(tasks.model_version_hash, "retry", retry)
    # Full jitter draws the delay from [0, backoff]: pin the draw to its top so the backoff shows.
    monkeypatch.setattr(random, "randrange", lambda stop: stop - 1)

    result = tasks.model_version_hash.apply(args=(version.pk,))

    assert result.state == "RETRY"
    assert isinstance(retries[0]["exc"], MlflowUnavailable)
    assert retries[0]["countdown"] == 10  # retry_backoff=10 for the first retry


def test_a_version_being_hashed_is_not_hashed_twice(mlflow_store: MlflowStore) -> None:
    version = log_model()
    ModelVersion.objects.filter(pk=version.pk).update(hash_status=HashStatus.HASHING)

    assert services.model_version_hash(version_pk=version.pk) is None


def test_sync_queues_hashing_for_new_versions_only(
    mlflow_store: MlflowStore,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    batches: list[list[int]] = []
    monkeypatch.setattr(tasks.model_versions_hash_queue, "delay", batches.append)
    mlflow_store.version("fraud")
    mlflow_store.version("fraud")
    with django_capture_on_commit_callbacks(execute=True):
        services.mlflow_sync(trigger=SyncTrigger.MANUAL)
    mlflow_store.version("fraud")
    with django_capture_on_commit_callbacks(execute=True):
        services.mlflow_sync(trigger=SyncTrigger.MANUAL)
    with django_capture_on_commit_callbacks(execute=True):
        services.mlflow_sync(trigger=SyncTrigger.MANUAL)

    pks = dict(ModelVersion.objects.values_list("version", "pk"))
    assert [sorted(batch) for batch in batches] == [sorted([pks[1], pks[2]]), [pks[3]]]


def test_the_queue_task_fans_out_one_hashing_task_per_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(tasks.model_version_hash, "delay", queued.append)

    assert tasks.model_versions_hash_queue.apply(args=([4, 5, 6],)).get() == 3
    assert queued == [4, 5, 6]


def test_manifest_and_model_sig_api(mlflow_store: MlflowStore, client: Client) -> None:
    version = log_model()
    services.model_version_hash(version_pk=version.pk)
    client.force_login(reader())
    base = f"/api/v1/models/fraud/versions/{version.version}"

    manifest = client.get(f"{base}/manifest").json()
    signature = client.get(f"{base}/model.sig")

    version.refresh_from_db()
    assert version.model_artifact is not None
    assert manifest["digest"] == {"sha256": version.model_artifact.digest}
    assert {f["path"] for f in manifest["files"]} >= {"MLmodel"}
    assert signature.status_code == 200
    assert signature.content == bytes(ModelSignature.objects.get().bundle)


def test_manifest_api_before_hashing_is_404_with_a_code(
    mlflow_store: MlflowStore, client: Client
) -> None:
    mlflow_store.version("fraud")
    services.mlflow_sync(trigger=SyncTrigger.MANUAL)
    client.force_login(reader())

    response = client.get("/api/v1/models/fraud/versions/1/manifest")

    assert response.status_code == 404
    assert response.json()["code"] == "not_hashed"


def reader() -> User:
    """Someone who may read every model through the API (a role held globally)."""
    user = make_user("compliance")
    role_grant(
        user=user,
        role=SecurityRole.objects.get(key="compliance_officer"),
        acting_user=None,
        actor_name="test",
    )
    return user


def test_manifest_of_a_model_one_may_not_see_is_not_found(
    mlflow_store: MlflowStore, client: Client
) -> None:
    version = log_model()
    services.model_version_hash(version_pk=version.pk)
    client.force_login(make_user("outsider"))

    for endpoint in ("manifest", "model.sig"):
        response = client.get(f"/api/v1/models/fraud/versions/{version.version}/{endpoint}")
        assert response.status_code == 404
        assert response.json()["code"] == "version_not_found"


def test_manifest_api_needs_a_sign_in(client: Client) -> None:
    assert client.get("/api/v1/models/fraud/versions/1/manifest").status_code == 403


def test_the_version_page_shows_the_measured_digest(
    mlflow_store: MlflowStore, client: Client
) -> None:
    version = log_model()
    hashed = services.model_version_hash(version_pk=version.pk)
    assert hashed is not None
    assert hashed.model_artifact is not None
    client.force_login(reader())

    page = client.get(f"/models/fraud/versions/{version.version}/").content.decode()

    assert f"sha256:{hashed.model_artifact.digest}" in page
    assert SigningKey.objects.count() == 1
