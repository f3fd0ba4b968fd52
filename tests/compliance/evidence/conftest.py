"""Fixtures of the evidence tests: isolated keys and storage, and a version with a story."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from compliance import promotions, tasks
from compliance.choices import IncidentKind
from compliance.models import Incident, ModelRiskTier
from compliance.policies import policy_save
from provenance import predicates
from provenance.attestation_verify import (
    PREDICATE_SLSA_PROVENANCE_V1,
    PREDICATE_TEST_RESULT,
    generate_signing_key,
    sign_statement,
    signer_from_pem,
)
from provenance.log_format import Actor
from provenance.models import Artifact, ArtifactKind
from provenance.services import attestation_ingest, trusted_signer_add, version_node_ensure
from registry.models import ModelVersion, RegisteredModel

ACTOR = Actor.system("test")
MODEL = "ab" * 32
RAW_DATA = "01" * 32
TRAINING_DATA = "02" * 32
STAGING: dict[str, Any] = {
    "alias": "staging",
    "risk_tier": "high",
    "approvals": [
        {"roles": ["model_validator"], "count": 1},
        {"roles": ["security_architect", "security_operations"], "count": 1},
    ],
    "gates": {"require_scan_clean": False},
}


@pytest.fixture(autouse=True)
def _isolated(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""
    settings.LOG_SIGNING_KEY_FILE = ""
    settings.EVIDENCE_TSA_URL = ""
    settings.STORAGES = {
        **settings.STORAGES,
        "evidence": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "evidence")},
        },
    }


def _dependency(digest: str, name: str) -> dict[str, Any]:
    return {"name": name, "digest": {"sha256": digest}}


def _provenance(subject: tuple[str, str], invocation: str, dependency: dict[str, Any]) -> Any:
    return predicates.statement(
        subjects=[subject],
        predicate_type=PREDICATE_SLSA_PROVENANCE_V1,
        predicate={
            "buildDefinition": {
                "buildType": "https://example.org/train/v1",
                "externalParameters": {},
                "resolvedDependencies": [dependency],
            },
            "runDetails": {
                "builder": {"id": "https://ci.example/train"},
                "metadata": {"invocationId": invocation},
            },
        },
    )


@pytest.fixture
def fraud(personas: dict[str, User]) -> ModelVersion:
    """fraud v1 with its datasets' and training's provenance, an evaluation, an approved
    promotion and an open incident: a version's whole story."""
    artifact = Artifact.objects.create(
        digest=MODEL, kind=ArtifactKind.MODEL, name="fraud/1", size=1, created_at=timezone.now()
    )
    model = RegisteredModel.objects.create(name="fraud")
    version = ModelVersion.objects.create(
        registered_model=model, version=1, user_id="alice", model_artifact=artifact
    )
    version_node_ensure(name="fraud", version=1, artifact=artifact)
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="pipeline",
        public_key=public_key,
        predicate_types=[PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_TEST_RESULT],
        may_register_datasets=True,
        actor=ACTOR,
    )
    pipeline = signer_from_pem(private_pem)
    statements = [
        _provenance(
            ("transactions-clean", TRAINING_DATA), "etl-7", _dependency(RAW_DATA, "s3://raw")
        ),
        _provenance(("fraud/1", MODEL), "run-1", _dependency(TRAINING_DATA, "transactions")),
        predicates.statement(
            subjects=[("fraud/1", MODEL)],
            predicate_type=PREDICATE_TEST_RESULT,
            predicate={"result": "PASSED", "configuration": [], "metrics": {"auc": 0.93}},
        ),
    ]
    for statement in statements:
        raw = sign_statement(statement, pipeline)
        attestation_ingest(raw=raw, media_type="application/json", actor=ACTOR)
    ModelRiskTier.objects.create(
        registered_model=model, tier="high", set_by_name="t", set_at=timezone.now()
    )
    policy_save(document=STAGING, actor=ACTOR)
    request = promotions.promotion_request_create(
        version=version, alias="staging", reason="better recall", requester=personas["grace"]
    )
    with mock.patch.object(tasks.promotion_execute, "delay"):
        for approver in ("bob", "carol"):
            promotions.promotion_request_decide(
                request_id=request.pk,
                approver=personas[approver],
                decision="approve",
                comment="checked the evaluation report",
                password=f"{approver}-Pa55word!",
            )
    Incident.objects.create(
        kind=IncidentKind.SECURITY,
        registered_model=model,
        version=version,
        summary="drift alarm",
        opened_at=timezone.now(),
    )
    return version
