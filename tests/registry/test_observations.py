"""What the registry observes in MLflow it signs; it re-verifies versions; datasets get digests."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from provenance import predicates
from provenance.attestation_verify import (
    PREDICATE_SLSA_PROVENANCE_V1,
    generate_signing_key,
    sign_statement,
    signer_from_pem,
)
from provenance.log_format import Actor
from provenance.models import (
    Artifact,
    ArtifactKind,
    Attestation,
    LineageEdge,
    LogEntry,
)
from provenance.services import trusted_signer_add
from registry import mlflow_gateway as gateway
from registry import services, tasks
from registry.choices import SyncTrigger
from registry.mlflow_gateway import MlflowUnavailable
from registry.models import Dataset, ModelVersion
from tests.conftest import MlflowStore
from tests.registry.test_hashing import log_model, reader

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("test")


@pytest.fixture(autouse=True)
def _keys_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


def observations(name: str = "fraud/1") -> list[Attestation]:
    return list(
        Attestation.objects.filter(
            predicate_type=predicates.PREDICATE_OBSERVATION, subjects__name=name
        ).order_by("received_at", "pk")
    )


def tamper(store: MlflowStore, version: int = 1) -> None:
    location = store.client.get_model_version_download_uri("fraud", str(version))
    with (Path(location) / "MLmodel").open("a") as handle:
        handle.write("# swapped behind the registry's back\n")


def hashed(name: str = "fraud") -> ModelVersion:
    version = log_model(name)
    result = services.model_version_hash(version_pk=version.pk)
    assert result is not None
    return result


def test_hashing_signs_what_mlflow_reported_about_the_version(mlflow_store: MlflowStore) -> None:
    version = hashed()

    [observation] = observations()
    statement = observation.statement
    assert observation.signing_key is not None
    assert version.model_artifact is not None
    assert statement["subject"][0]["digest"]["sha256"] == version.model_artifact.digest
    reported = statement["predicate"]["modelVersion"]
    assert reported["runId"] == version.mlflow_run_id
    assert reported["source"] == version.source
    assert reported["aliases"] == []
    assert statement["predicate"]["run"]["runId"] == version.mlflow_run_id
    produced = LineageEdge.objects.get(relation="produced")
    assert (produced.upstream.key, produced.downstream.key) == (version.mlflow_run_id, "fraud/1")
    assert produced.attestation == observation


def test_an_unchanged_version_is_not_observed_twice(mlflow_store: MlflowStore) -> None:
    version = hashed()

    services.model_version_hash(version_pk=version.pk)
    services.model_version_observe(version_pk=version.pk)

    assert len(observations()) == 1


def test_alias_moves_in_mlflow_are_observed_and_signed(mlflow_store: MlflowStore) -> None:
    hashed()
    log_model()
    services.model_version_hash(version_pk=ModelVersion.objects.get(version=2).pk)
    mlflow_store.client.set_registered_model_alias("fraud", "production", "1")
    services.mlflow_sync(trigger=SyncTrigger.MANUAL)

    assert observations()[-1].statement["predicate"]["modelVersion"]["aliases"] == ["production"]
    mlflow_store.client.set_registered_model_alias("fraud", "production", "2")
    services.mlflow_sync(trigger=SyncTrigger.MANUAL)

    assert observations("fraud/1")[-1].statement["predicate"]["modelVersion"]["aliases"] == []
    assert observations("fraud/2")[-1].statement["predicate"]["modelVersion"]["aliases"] == [
        "production"
    ]
    active = LineageEdge.objects.get(relation="promoted-to", ended_at__isnull=True)
    assert (active.upstream.key, active.downstream.key) == ("fraud/2", "fraud@production")
    assert LineageEdge.objects.filter(relation="promoted-to", ended_at__isnull=False).count() == 1


def test_reverification_passes_for_an_untouched_version(mlflow_store: MlflowStore) -> None:
    version = hashed()

    attestation = services.model_version_reverify(version_pk=version.pk, actor=ACTOR)

    assert attestation is not None
    predicate = attestation.statement["predicate"]
    assert predicate["result"] == "PASSED"
    assert predicate["rehash"]["match"] is True
    assert [a["predicateType"] for a in predicate["attestations"]] == [
        predicates.PREDICATE_OBSERVATION
    ]
    event = LogEntry.objects.get(event_type="model_version.reverified")
    assert json.loads(bytes(event.entry))["after"]["result"] == "PASSED"


def test_the_callers_checks_run_while_the_files_are_hashed(mlflow_store: MlflowStore) -> None:
    """The download waits for the caller's ``alongside`` checks: run one after the other, the
    two would wait for each other until the timeout."""
    version = hashed()
    checks_running, download_done = threading.Event(), threading.Event()
    download = gateway.download_model_version
    threads: set[str] = set()

    def slow_download(*args: Any, **kwargs: Any) -> Path:
        threads.add(threading.current_thread().name)
        assert checks_running.wait(timeout=10), "the caller's checks did not run meanwhile"
        try:
            return download(*args, **kwargs)
        finally:
            download_done.set()

    def checks() -> None:
        checks_running.set()
        assert not download_done.is_set()
        assert version.registered_model.name == "fraud"  # the database works on this thread
        assert ModelVersion.objects.filter(pk=version.pk).exists()

    with mock.patch.object(gateway, "download_model_version", slow_download):
        attestation = services.model_version_reverify(
            version_pk=version.pk, actor=ACTOR, alongside=checks
        )

    assert attestation is not None
    assert attestation.statement["predicate"]["result"] == "PASSED"
    assert threading.current_thread().name not in threads


def test_mlflow_down_during_the_rehash_is_raised_to_the_caller(mlflow_store: MlflowStore) -> None:
    version = hashed()
    ran: list[str] = []

    with (
        mock.patch.object(
            gateway, "download_model_version", side_effect=MlflowUnavailable("MLflow is down")
        ),
        pytest.raises(MlflowUnavailable),
    ):
        services.model_version_reverify(
            version_pk=version.pk, actor=ACTOR, alongside=lambda: ran.append("checks")
        )

    assert ran == ["checks"]
    assert not LogEntry.objects.filter(event_type="model_version.reverified").exists()


def test_a_file_changed_in_the_artifact_store_fails_reverification(
    mlflow_store: MlflowStore,
) -> None:
    version = hashed()
    tamper(mlflow_store)

    attestation = services.model_version_reverify(version_pk=version.pk, actor=ACTOR)

    assert attestation is not None
    predicate = attestation.statement["predicate"]
    assert predicate["result"] == "FAILED"
    assert predicate["rehash"]["match"] is False
    version.refresh_from_db()
    assert version.model_artifact is not None
    assert predicate["rehash"]["expected"]["sha256"] == version.model_artifact.digest


def test_reverify_command_exit_codes(
    mlflow_store: MlflowStore, capsys: pytest.CaptureFixture[str]
) -> None:
    version = hashed()
    call_command("reverify_model_version", "fraud", "1")
    assert "fraud/1: PASSED" in capsys.readouterr().out

    tamper(mlflow_store)
    with pytest.raises(SystemExit) as failed:
        call_command("reverify_model_version", "fraud", "1")
    assert failed.value.code == 1
    assert "FAIL files hash to sha256:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as missing:
        call_command("reverify_model_version", "fraud", "9")
    assert missing.value.code == 2
    ModelVersion.objects.filter(pk=version.pk).update(model_artifact=None)
    with pytest.raises(SystemExit) as unhashed:
        call_command("reverify_model_version", "fraud", "1")
    assert unhashed.value.code == 2


# --- datasets -----------------------------------------------------------------------------


@pytest.fixture
def pipeline() -> Any:
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="training",
        public_key=public_key,
        predicate_types=[PREDICATE_SLSA_PROVENANCE_V1],
        may_register_datasets=True,
        actor=ACTOR,
    )
    return signer_from_pem(private_pem)


@pytest.fixture
def trained(mlflow_store: MlflowStore) -> ModelVersion:
    """A version whose run logged two datasets, given a model digest without hashing."""
    mlflow_store.version(
        "fraud",
        datasets=[("transactions", "d41d8cd9", "training"), ("holdout", "0cc175b9", "eval")],
    )
    services.mlflow_sync(trigger=SyncTrigger.MANUAL)
    artifact = Artifact.objects.create(
        digest="ab" * 32, kind=ArtifactKind.MODEL, name="fraud/1", size=1, created_at=timezone.now()
    )
    ModelVersion.objects.update(model_artifact=artifact)
    return ModelVersion.objects.select_related("run").get()


def training_provenance(run_id: str, dependencies: list[dict[str, Any]]) -> dict[str, Any]:
    return predicates.statement(
        subjects=[("fraud/1", "ab" * 32)],
        predicate_type=PREDICATE_SLSA_PROVENANCE_V1,
        predicate={
            "buildDefinition": {"buildType": "x", "resolvedDependencies": dependencies},
            "runDetails": {"metadata": {"invocationId": run_id}},
        },
    )


def submit(statement: dict[str, Any], signer: Any) -> Attestation:
    raw = sign_statement(statement, signer)
    return services.attestation_submit(
        raw=raw, media_type="application/json", actor=ACTOR
    ).attestation


def test_training_provenance_gives_mlflow_datasets_their_digests(
    trained: ModelVersion, pipeline: Any
) -> None:
    assert trained.run is not None
    statement = training_provenance(
        trained.run.run_id,
        [
            {"uri": "s3://data/transactions.parquet", "digest": {"sha256": "11" * 32}},
            {
                "name": "holdout",
                "digest": {"sha256": "22" * 32},
                "annotations": {"mlflowDataset": {"name": "holdout", "digest": "0cc175b9"}},
            },
        ],
    )
    # MLflow records the source as JSON ({"uri": ...}); a pipeline names the URI inside it.

    attestation = submit(statement, pipeline)

    linked = {
        d.name: d.artifact.digest if d.artifact else None
        for d in Dataset.objects.select_related("artifact")
    }
    assert linked == {"transactions": "11" * 32, "holdout": "22" * 32}
    assert set(Dataset.objects.values_list("linked_by", flat=True)) == {attestation.pk}
    assert LogEntry.objects.filter(event_type="dataset.linked").count() == 2


def test_a_second_digest_for_a_linked_dataset_is_a_logged_conflict(
    trained: ModelVersion, pipeline: Any
) -> None:
    assert trained.run is not None

    def named(digest: str) -> dict[str, Any]:
        return {
            "digest": {"sha256": digest},
            "annotations": {"mlflowDataset": {"name": "holdout", "digest": "0cc175b9"}},
        }

    submit(training_provenance(trained.run.run_id, [named("22" * 32)]), pipeline)
    submit(training_provenance(trained.run.run_id, [named("33" * 32)]), pipeline)

    assert Dataset.objects.get(name="holdout").artifact.digest == "22" * 32  # type: ignore[union-attr]
    assert LogEntry.objects.filter(event_type="dataset.link_conflict").count() == 1


def test_provenance_for_another_run_links_nothing(trained: ModelVersion, pipeline: Any) -> None:
    submit(
        training_provenance(
            "not-an-mlflow-run", [{"name": "holdout", "digest": {"sha256": "22" * 32}}]
        ),
        pipeline,
    )
    assert not Dataset.objects.filter(artifact__isnull=False).exists()


# --- the version page ---------------------------------------------------------------------


def test_the_version_page_shows_lineage_and_reverification(
    mlflow_store: MlflowStore, client: Client
) -> None:
    version = hashed()
    services.model_version_reverify(version_pk=version.pk, actor=ACTOR)
    client.force_login(reader())

    page = client.get("/models/fraud/versions/1/").content.decode()

    assert "Provenance" in page
    assert "PASSED" in page
    assert "produced" in page
    assert predicates.PREDICATE_OBSERVATION in page


def test_asking_for_reverification_queues_the_task(
    mlflow_store: MlflowStore, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    version = hashed()
    user = reader()
    client.force_login(user)

    with (
        mock.patch.object(tasks.model_version_reverify, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post("/models/fraud/versions/1/reverify")

    assert response.status_code == 302
    delay.assert_called_once_with(version.pk, user.pk)


def test_reverification_needs_a_sign_in_and_a_post(client: Client) -> None:
    assert client.post("/models/fraud/versions/1/reverify").status_code == 302
    client.force_login(reader())
    assert client.get("/models/fraud/versions/1/reverify").status_code == 405
    assert client.post("/models/fraud/versions/1/reverify").status_code == 404
