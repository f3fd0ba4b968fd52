"""Every hashed version is scanned for embedded code from the artifact store, signed, logged."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from django.test import Client
from safetensors.numpy import save_file

from provenance import model_scan
from provenance.attestation_verify import PREDICATE_TEST_RESULT
from provenance.models import LineageNode, LogEntry, ModelScan, NodeKind
from registry import selectors, services, tasks
from registry.choices import ScanStatus, SyncTrigger
from registry.models import ModelVersion
from tests.conftest import MlflowStore
from tests.registry.test_hashing import log_model, reader

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keys_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


class Payload:
    """Unpickling this would run a shell command: the scanners must say so without doing it."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch /tmp/secmlops-pwned",))


def register_files(store: MlflowStore, tmp_path: Path, files: dict[str, bytes]) -> ModelVersion:
    """A version whose artifacts are exactly ``files`` (plus an MLmodel file), hashed."""
    directory = tmp_path / "upload"
    directory.mkdir()
    (directory / "MLmodel").write_text("artifact_path: model\nflavors: {}\n")
    for name, content in files.items():
        (directory / name).write_bytes(content)
    run_id = store.run()
    store.client.log_artifacts(run_id, str(directory), "model")
    store.version("fraud", run_id=run_id)
    services.mlflow_sync(trigger=SyncTrigger.MANUAL)
    version = ModelVersion.objects.get(registered_model__name="fraud")
    with mock.patch.object(tasks.model_version_scan, "delay"):
        hashed = services.model_version_hash(version_pk=version.pk)
    assert hashed is not None
    return hashed


def safetensors_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "weights.safetensors"
    save_file({"w": np.ones((4, 4), dtype=np.float32)}, str(path))
    return path.read_bytes()


def test_a_malicious_pickle_is_unsafe_signed_and_logged(
    mlflow_store: MlflowStore, tmp_path: Path
) -> None:
    version = register_files(mlflow_store, tmp_path, {"model.pkl": pickle.dumps(Payload())})

    scan = services.model_version_scan(version_pk=version.pk)

    assert scan is not None
    assert scan.verdict == "unsafe"
    [bad] = [f for f in scan.report["files"] if f["path"] == "model.pkl"]
    assert "posix.system" in {finding["operator"] for finding in bad["findings"]}
    assert not Path("/tmp/secmlops-pwned").exists()  # noqa: S108  (the payload's marker)
    statement = scan.attestation.statement
    assert statement["predicateType"] == PREDICATE_TEST_RESULT
    assert statement["subject"] == [
        {"name": "fraud/1", "digest": {"sha256": version.model_artifact.digest}}  # type: ignore[union-attr]
    ]
    assert statement["predicate"]["result"] == "FAILED"
    assert scan.attestation.signing_key is not None
    logged = json.loads(bytes(LogEntry.objects.get(event_type="scan.finished").entry))
    assert logged["after"]["verdict"] == "unsafe"
    assert "model.pkl: posix.system" in logged["after"]["findings"]
    assert {s["name"] for s in scan.scanners} >= {"modelscan", "picklescan"}
    version.refresh_from_db()
    assert version.scan_status == ScanStatus.SCANNED
    assert selectors.scan_verdict(version=version) == "unsafe"
    assert not LineageNode.objects.filter(kind=NodeKind.EVALUATION).exists()


def test_a_safetensors_model_is_clean(mlflow_store: MlflowStore, tmp_path: Path) -> None:
    version = register_files(
        mlflow_store, tmp_path, {"model.safetensors": safetensors_bytes(tmp_path)}
    )

    scan = services.model_version_scan(version_pk=version.pk)

    assert scan is not None
    assert scan.verdict == "clean"
    assert scan.attestation.statement["predicate"]["result"] == "PASSED"


def test_a_pickle_importing_unlisted_code_is_unknown_until_allowed(
    mlflow_store: MlflowStore, tmp_path: Path, settings: Any
) -> None:
    import decimal

    model = pickle.dumps({"threshold": decimal.Decimal("0.42"), "weights": [0.1, 0.2]})
    version = register_files(mlflow_store, tmp_path, {"model.pkl": model})

    strict = services.model_version_scan(version_pk=version.pk)
    settings.SCAN_EXTRA_ALLOWED_IMPORTS = ["decimal.*"]
    allowed = services.model_version_scan(version_pk=version.pk)

    assert strict is not None
    assert allowed is not None
    assert strict.verdict == "unknown"
    assert allowed.verdict == "warning"  # a pickle with no finding still warns
    assert selectors.scan_verdict(version=version) == "warning"  # the latest scan counts


def test_mlflows_default_sklearn_format_is_scanned_inside(mlflow_store: MlflowStore) -> None:
    version = log_model()
    with mock.patch.object(tasks.model_version_scan, "delay"):
        services.model_version_hash(version_pk=version.pk)

    scan = services.model_version_scan(version_pk=version.pk)

    assert scan is not None
    paths = {f["path"] for f in scan.report["files"]}
    assert "MLmodel" in paths
    assert any("!/" in path for path in paths)  # the archive's members were opened


def test_hashing_queues_the_scan(
    mlflow_store: MlflowStore, django_capture_on_commit_callbacks: Any
) -> None:
    version = log_model()
    with (
        mock.patch.object(tasks.model_version_scan, "delay") as scan,
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.model_version_hash(version_pk=version.pk)
    scan.assert_called_once_with(version.pk)


def test_files_changed_during_the_scan_are_not_recorded(
    mlflow_store: MlflowStore, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    version = register_files(mlflow_store, tmp_path, {"w.safetensors": safetensors_bytes(tmp_path)})
    run = mlflow_store.client.get_run(str(version.mlflow_run_id))
    with (Path(run.info.artifact_uri) / "model" / "MLmodel").open("a") as handle:
        handle.write("# swapped\n")

    with (
        mock.patch.object(tasks.model_version_hash, "delay") as rehash,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert services.model_version_scan(version_pk=version.pk) is None

    assert not ModelScan.objects.exists()
    rehash.assert_called_once_with(version.pk)
    version.refresh_from_db()
    assert version.scan_status == ScanStatus.FAILED


def test_a_scanner_upgrade_makes_scans_outdated(mlflow_store: MlflowStore, tmp_path: Path) -> None:
    version = register_files(mlflow_store, tmp_path, {"w.safetensors": safetensors_bytes(tmp_path)})
    assert services.versions_with_outdated_scans() == [version.pk]  # never scanned
    services.model_version_scan(version_pk=version.pk)
    assert services.versions_with_outdated_scans() == []

    upgraded = tuple(
        model_scan.ScannerInfo(s.name, s.version + ".post1") if s.name == "picklescan" else s
        for s in model_scan.scanner_versions()
    )
    with mock.patch.object(model_scan, "scanner_versions", return_value=upgraded):
        assert services.versions_with_outdated_scans() == [version.pk]


def test_a_scanner_failure_marks_the_scan_failed(mlflow_store: MlflowStore, tmp_path: Path) -> None:
    version = register_files(mlflow_store, tmp_path, {"w.safetensors": safetensors_bytes(tmp_path)})
    with (
        mock.patch.object(model_scan, "scan_directory", side_effect=RuntimeError("boom")),
        pytest.raises(RuntimeError),
    ):
        services.model_version_scan(version_pk=version.pk)
    version.refresh_from_db()
    assert version.scan_status == ScanStatus.FAILED
    assert selectors.scan_verdict(version=version) is None  # no result: the gate fails closed


def test_the_version_page_shows_findings_and_rescans(
    mlflow_store: MlflowStore,
    tmp_path: Path,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    version = register_files(mlflow_store, tmp_path, {"model.pkl": pickle.dumps(Payload())})
    services.model_version_scan(version_pk=version.pk)
    client.force_login(reader())

    page = client.get("/models/fraud/versions/1/").content.decode()
    assert "Unsafe" in page
    assert "posix.system" in page

    with (
        mock.patch.object(tasks.model_version_scan, "delay") as scan,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert client.post("/models/fraud/versions/1/rescan").status_code == 302
    scan.assert_called_once_with(version.pk)


def test_the_scan_api_shows_the_latest_result_to_those_who_may_see_the_model(
    mlflow_store: MlflowStore,
    *,
    tmp_path: Path,
    client: Client,
    personas: dict[str, Any],
    outsider: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    version = register_files(mlflow_store, tmp_path, {"model.pkl": pickle.dumps(Payload())})
    url = "/api/v1/models/fraud/versions/1/scan"
    client.force_login(personas["heidi"])
    missing = client.get(url)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_scanned"

    services.model_version_scan(version_pk=version.pk)
    body = client.get(url).json()

    assert body["verdict"] == "unsafe"
    assert body["model_digest"] == f"sha256:{version.model_artifact.digest}"  # type: ignore[union-attr]
    assert any(f["path"] == "model.pkl" for f in body["files"])
    assert body["attestation"].startswith("http://testserver/api/v1/attestations/")
    with (
        mock.patch.object(tasks.model_version_scan, "delay") as scan,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert client.post(url).status_code == 202
    scan.assert_called_once_with(version.pk)
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
