"""The model inventory's compliance columns: risk tier (high by default), aliases with their
versions, open incidents, the scan verdict behind each alias and whether it got there through an
approved promotion; narrowed to what the reader may see, in a fixed number of queries."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.choices import IncidentKind, IncidentStatus, PromotionStatus
from compliance.models import Incident, PromotionRequest
from compliance.risk import risk_tier_set
from provenance.log_format import Actor
from provenance.models import Artifact, ArtifactKind, Attestation, ModelScan
from registry.choices import AliasChangeSource
from registry.models import AliasHistory, ModelAlias, ModelVersion, RegisteredModel
from tests.api import conftest as api_world
from tests.api.conftest import CHURN_1, FRAUD_1, World, signed_in
from tests.registry.test_views import build_model

pytestmark = pytest.mark.django_db

# The small registry of tests/api/conftest.py: two models sharing a dataset, real attestations.
world = api_world.world
pipeline = api_world.pipeline
reader = api_world.reader
fraud_reader = api_world.fraud_reader

INVENTORY = "/models/"


@pytest.fixture(autouse=True)
def _keys_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


def row_of(page: str, model: str) -> str:
    """The inventory's table row for ``model``."""
    for row in re.findall(r"<tr>.*?</tr>", page, re.DOTALL):
        if f'href="/models/{model}/"' in row:
            return str(row)
    raise AssertionError(f"no row for {model}")


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def scan(digest: str, verdict: str, proof: Attestation, *, ago: int = 0) -> None:
    ModelScan.objects.create(
        artifact=Artifact.objects.get(digest=digest),
        verdict=verdict,
        policy="strict",
        scanners=[{"name": "modelscan", "version": "0.8"}],
        report={"files": []},
        counts={},
        attestation=proof,
        scanned_at=timezone.now() - timedelta(minutes=ago),
    )


def promoted(version: ModelVersion, alias: str, *, by: User, break_glass: bool = False) -> int:
    """A promotion executed onto ``alias``, and the alias history the registry recorded."""
    now = timezone.now()
    request = PromotionRequest.objects.create(
        registered_model=version.registered_model,
        version=version,
        alias=alias,
        status=PromotionStatus.PROMOTED,
        model_digest=version.model_artifact.digest if version.model_artifact else "",
        risk_tier="high",
        reason="ready",
        requested_by=by,
        requested_at=now,
        expires_at=now + timedelta(days=1),
        updated_at=now,
        executed_at=now,
        break_glass=break_glass,
    )
    moved(version, alias, AliasChangeSource.REGISTRY)
    return request.pk


def moved(version: ModelVersion, alias: str, source: str) -> None:
    AliasHistory.objects.create(
        registered_model=version.registered_model,
        alias=alias,
        to_version=version,
        changed_at=timezone.now(),
        source=source,
    )


def incident(model: RegisteredModel, status: str = IncidentStatus.OPEN) -> None:
    Incident.objects.create(
        kind=IncidentKind.OUT_OF_BAND_ALIAS,
        status=status,
        registered_model=model,
        summary="moved in MLflow",
        opened_at=timezone.now(),
    )


def test_each_model_shows_its_tier_aliases_and_state(
    client: Client, world: World, reader: User
) -> None:
    risk_tier_set(
        registered_model=world.models["fraud"], tier="low", actor=Actor.system("t"), reason="x"
    )
    request_id = promoted(world.versions["fraud/1"], "production", by=reader)
    scan(FRAUD_1, "unsafe", world.attestations["eval-fraud"], ago=10)
    scan(FRAUD_1, "clean", world.attestations["eval-fraud"])
    scan(CHURN_1, "unsafe", world.attestations["eval-fraud"])
    incident(world.models["churn"])
    incident(world.models["churn"])
    incident(world.models["churn"], IncidentStatus.RESOLVED)

    page = signed_in(client, reader).get(INVENTORY).content.decode()

    fraud = text(row_of(page, "fraud"))
    assert "Low" in fraud
    assert "(default)" not in fraud
    assert "production → v1" in fraud
    assert "scan: clean" in fraud  # the latest scan counts
    assert f"approved promotion #{request_id}" in fraud
    assert "open incidents: 0" in fraud
    assert "approved aliases: 1 of 1" in fraud
    churn = text(row_of(page, "churn"))
    assert "High (default)" in churn
    assert "production → v1" in churn
    assert "scan: unsafe" in churn
    assert "out of band" in churn
    assert "open incidents: 2" in churn
    assert "without approvals: 1" in churn
    assert "scans not clean: 1" in churn


def test_a_break_glass_promotion_is_not_an_approved_one(
    client: Client, world: World, reader: User
) -> None:
    request_id = promoted(world.versions["fraud/1"], "production", by=reader, break_glass=True)

    fraud = text(row_of(signed_in(client, reader).get(INVENTORY).content.decode(), "fraud"))

    assert f"break-glass promotion #{request_id}" in fraud
    assert "approved aliases: 0 of 1" in fraud
    assert "without approvals: 1" in fraud


def test_an_alias_moved_back_behind_the_registry_is_out_of_band(
    client: Client, world: World, reader: User
) -> None:
    """Promoted once, moved away and back in MLflow: how it got there last is what counts."""
    promoted(world.versions["fraud/1"], "production", by=reader)
    moved(world.versions["fraud/1"], "production", AliasChangeSource.WEBHOOK)

    fraud = text(row_of(signed_in(client, reader).get(INVENTORY).content.decode(), "fraud"))

    assert "out of band" in fraud
    assert "approved promotion" not in fraud


def test_an_alias_the_registry_restored_is_not_out_of_band(
    client: Client, world: World, reader: User
) -> None:
    moved(world.versions["fraud/1"], "production", AliasChangeSource.REGISTRY)

    fraud = text(row_of(signed_in(client, reader).get(INVENTORY).content.decode(), "fraud"))

    assert "restored by the registry" in fraud
    assert "without approvals" not in fraud


def test_a_reader_of_one_model_sees_its_state_only(
    client: Client, world: World, fraud_reader: User
) -> None:
    incident(world.models["churn"])

    page = signed_in(client, fraud_reader).get(INVENTORY).content.decode()

    assert 'href="/models/fraud/"' in page
    assert "churn" not in page
    assert "open incidents: 1" not in page


def test_an_outsider_sees_no_compliance_state(client: Client, world: World, outsider: User) -> None:
    incident(world.models["churn"])

    page = signed_in(client, outsider).get(INVENTORY).content.decode()

    assert "fraud" not in page
    assert "churn" not in page
    assert "open incidents" not in page
    assert "High" not in page


def governed_model(index: int, proof: Attestation, by: User) -> None:
    """A model with a tier, an open incident, a scanned version promoted to production."""
    model = build_model(f"model-{index}")
    version = ModelVersion.objects.get(registered_model=model, version=1)
    version.model_artifact = Artifact.objects.create(
        digest=f"{index:064x}",
        kind=ArtifactKind.MODEL,
        name=model.name,
        size=1,
        created_at=timezone.now(),
    )
    version.save(update_fields=["model_artifact"])
    ModelAlias.objects.create(
        registered_model=model, alias="staging", version=version, updated_at=timezone.now()
    )
    scan(version.model_artifact.digest, "clean", proof)
    promoted(version, "staging", by=by)
    risk_tier_set(registered_model=model, tier="medium", actor=Actor.system("t"), reason="x")
    incident(model)


def test_the_query_count_does_not_grow_with_the_models(
    client: Client, world: World, reader: User
) -> None:
    proof = world.attestations["eval-fraud"]
    for index in range(2):
        governed_model(index, proof, reader)
    signed_in(client, reader)
    with CaptureQueriesContext(connection) as few:
        client.get(INVENTORY)
    for index in range(2, 12):
        governed_model(index, proof, reader)

    with CaptureQueriesContext(connection) as many:
        page = client.get(INVENTORY).content.decode()

    assert "Medium" in text(row_of(page, "model-11"))
    assert page.count("approved promotion #") == 12
    assert len(many.captured_queries) == len(few.captured_queries)
