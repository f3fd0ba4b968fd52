"""A small registry to query: two models sharing a training dataset, with real signed
attestations (so the lineage is derived exactly as in production), and the people who look.

    raw ──etl-7──▶ shared ──run-fraud-1──▶ fraud/1 ──▶ fraud@production, an evaluation
                      └─────run-churn-1──▶ churn/1 ──▶ churn@production
                  churn-only ──┘

``fraud/2`` exists but was never hashed. ``fraud_reader`` holds a role on ``fraud`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from compliance import tokens
from compliance.models import SecurityRole
from compliance.services import role_grant
from provenance import predicates
from provenance.attestation_verify import (
    PREDICATE_SLSA_PROVENANCE_V1,
    PREDICATE_TEST_RESULT,
    generate_signing_key,
    signer_from_pem,
)
from provenance.log_format import Actor
from provenance.models import Artifact, ArtifactKind, Attestation, ModelManifest
from provenance.services import trusted_signer_add, version_node_ensure
from registry.choices import AliasChangeSource, HashStatus
from registry.models import (
    AliasHistory,
    Dataset,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    Run,
    RunInput,
)
from tests.conftest import make_user
from tests.provenance.test_lineage import dependency, ingest, observe, provenance

ACTOR = Actor.system("test")
RAW = "01" * 32
SHARED = "02" * 32
CHURN_ONLY = "05" * 32
FRAUD_1 = "aa" * 32
CHURN_1 = "bb" * 32


@pytest.fixture(autouse=True)
def _keys_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


@dataclass
class World:
    models: dict[str, RegisteredModel]
    versions: dict[str, ModelVersion]
    datasets: dict[str, Dataset]
    attestations: dict[str, Attestation]


def _model_artifact(digest: str, name: str) -> Artifact:
    """A model the registry hashed: its digest and its manifest of files."""
    artifact = Artifact.objects.create(
        digest=digest, kind=ArtifactKind.MODEL, name=name, size=10, created_at=timezone.now()
    )
    ModelManifest.objects.create(
        artifact=artifact,
        files=[
            {"path": "MLmodel", "size": 4, "sha256": "0c" * 32},
            {"path": "model.pkl", "size": 6, "sha256": "0d" * 32},
        ],
        computed_at=timezone.now(),
    )
    return artifact


def _version(model: RegisteredModel, number: int, run: Run, digest: str | None) -> ModelVersion:
    artifact = _model_artifact(digest, f"{model.name}/{number}") if digest else None
    version = ModelVersion.objects.create(
        registered_model=model,
        version=number,
        run=run,
        mlflow_run_id=run.run_id,
        model_artifact=artifact,
        hash_status=HashStatus.HASHED if artifact else HashStatus.PENDING,
        source=f"runs:/{run.run_id}/model",
    )
    version_node_ensure(name=model.name, version=number, artifact=artifact)
    return version


def _alias(version: ModelVersion, alias: str) -> None:
    now = timezone.now()
    model = version.registered_model
    ModelAlias.objects.create(registered_model=model, alias=alias, version=version, updated_at=now)
    AliasHistory.objects.create(
        registered_model=model,
        alias=alias,
        to_version=version,
        changed_at=now - timedelta(minutes=5),
        source=AliasChangeSource.RECONCILE,
    )


def _dataset(name: str, digest: str, runs: list[Run]) -> Dataset:
    dataset = Dataset.objects.create(name=name, digest=digest[:8], source=f"s3://data/{name}")
    for run in runs:
        RunInput.objects.create(run=run, dataset=dataset, context="training")
    return dataset


@pytest.fixture
def pipeline(db: None) -> Any:
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="pipeline",
        public_key=public_key,
        predicate_types=[PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_TEST_RESULT],
        may_register_datasets=True,
        actor=ACTOR,
    )
    return signer_from_pem(private_pem)


@pytest.fixture
def world(pipeline: Any) -> World:
    fraud = RegisteredModel.objects.create(name="fraud", description="card fraud")
    churn = RegisteredModel.objects.create(name="churn")
    runs = {
        run_id: Run.objects.create(run_id=run_id, user=user, experiment_id="1")
        for run_id, user in [
            ("run-fraud-1", "alice"),
            ("run-fraud-2", "alice"),
            ("run-churn-1", "zed"),
        ]
    }
    versions = {
        "fraud/1": _version(fraud, 1, runs["run-fraud-1"], FRAUD_1),
        "fraud/2": _version(fraud, 2, runs["run-fraud-2"], None),
        "churn/1": _version(churn, 1, runs["run-churn-1"], CHURN_1),
    }
    attestations = {
        "etl": ingest(
            provenance(
                [("transactions-clean", SHARED)],
                invocation="etl-7",
                dependencies=[dependency(RAW, "s3://raw/transactions.csv")],
            ),
            pipeline,
        ),
        "train-fraud": ingest(
            provenance(
                [("fraud/1", FRAUD_1)],
                invocation="run-fraud-1",
                dependencies=[dependency(SHARED, "transactions-clean")],
            ),
            pipeline,
        ),
        "train-churn": ingest(
            provenance(
                [("churn/1", CHURN_1)],
                invocation="run-churn-1",
                dependencies=[
                    dependency(SHARED, "transactions-clean"),
                    dependency(CHURN_ONLY, "churn-events"),
                ],
            ),
            pipeline,
        ),
        "eval-fraud": ingest(
            predicates.statement(
                subjects=[("fraud/1", FRAUD_1)],
                predicate_type=PREDICATE_TEST_RESULT,
                predicate={"result": "PASSED", "configuration": [{"name": "holdout"}]},
            ),
            pipeline,
        ),
        "observe-fraud": observe("fraud", 1, aliases=["production"], digest=FRAUD_1),
        "observe-churn": observe("churn", 1, aliases=["production"], digest=CHURN_1),
    }
    _alias(versions["fraud/1"], "production")
    _alias(versions["churn/1"], "production")
    datasets = {
        "transactions": _dataset(
            "transactions", SHARED, [runs["run-fraud-1"], runs["run-churn-1"]]
        ),
        "churn-events": _dataset("churn-events", CHURN_ONLY, [runs["run-churn-1"]]),
    }
    Dataset.objects.filter(pk=datasets["transactions"].pk).update(
        artifact=Artifact.objects.get(digest=SHARED)
    )
    Dataset.objects.filter(pk=datasets["churn-events"].pk).update(
        artifact=Artifact.objects.get(digest=CHURN_ONLY)
    )
    return World(
        models={"fraud": fraud, "churn": churn},
        versions=versions,
        datasets={name: Dataset.objects.get(pk=d.pk) for name, d in datasets.items()},
        attestations=attestations,
    )


def grant(user: User, role: str, model: RegisteredModel | None = None) -> None:
    role_grant(
        user=user,
        role=SecurityRole.objects.get(key=role),
        registered_model=model,
        acting_user=None,
        actor_name="test",
    )


@pytest.fixture
def fraud_reader(world: World) -> User:
    """Holds one role, on the ``fraud`` model only."""
    user = make_user("fiona")
    grant(user, "model_validator", world.models["fraud"])
    return user


@pytest.fixture
def reader(personas: dict[str, User]) -> User:
    """Holds a role globally: sees everything."""
    return personas["dave"]


def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def bearer(user: User, *scopes: str) -> dict[str, str]:
    issued = tokens.api_token_create(
        user=user, name="test", scopes=scopes or ("read",), expires_in_days=1, acting_user=user
    )
    return {"Authorization": f"Bearer {issued.secret}"}
