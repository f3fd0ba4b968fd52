"""The registry's reads at the attestation door: which subject names name a version, the digests
it measured for them (few queries, however many), and an upload's declared length."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from provenance import models as provenance_models
from provenance.log_format import Actor
from provenance.models import Artifact, ArtifactKind, LogEntry
from provenance.services import AttestationRefused
from registry import selectors
from registry.models import ModelVersion, RegisteredModel
from registry.services import attestation_upload_check

ACTOR = Actor.system("test")


def hashed_versions(name: str, numbers: range, digest_base: int = 0) -> dict[str, str]:
    """Versions ``numbers`` of model ``name``, each with a model digest the registry measured:
    ``{"<name>/<n>": digest}``."""
    model = RegisteredModel.objects.create(name=name)
    digests = {f"{name}/{n}": f"{digest_base + n:064x}" for n in numbers}
    artifacts = Artifact.objects.bulk_create(
        Artifact(digest=d, kind=ArtifactKind.MODEL, name=v, size=1, created_at=timezone.now())
        for v, d in digests.items()
    )
    ModelVersion.objects.bulk_create(
        ModelVersion(registered_model=model, version=n, model_artifact=artifact)
        for n, artifact in zip(numbers, artifacts, strict=True)
    )
    return digests


@pytest.mark.parametrize(
    ("subject_name", "named"),
    [
        ("fraud/1", ("fraud", 1)),
        ("fraud/01", ("fraud", 1)),
        ("fraud/123456789", ("fraud", 123456789)),
        ("team/fraud/3", ("team/fraud", 3)),
        ("fraud/\u00b2", None),  # SUPERSCRIPT TWO: str.isdigit, but int() refuses it
        ("fraud/\u0661", None),  # ARABIC-INDIC DIGIT ONE: int() reads it as 1
        ("fraud/\uff11", None),  # FULLWIDTH DIGIT ONE
        ("fraud/1234567890", None),  # over 9 digits: past what the version column holds
        ("fraud/" + "9" * 5000, None),  # past what int() reads
        ("fraud/-1", None),
        ("fraud/ 1", None),
        ("fraud/", None),
        ("/1", None),
        ("fraud", None),
    ],
)
def test_a_subject_names_a_version_only_with_ascii_digits(
    subject_name: str, named: tuple[str, int] | None
) -> None:
    assert provenance_models.named_version(subject_name) == named


def test_leading_zeros_do_not_count_against_the_version_digits() -> None:
    assert provenance_models.named_version("fraud/0000000001") == ("fraud", 1)


@pytest.mark.django_db
def test_measured_digests_of_1100_versions_cost_three_queries() -> None:
    measured = hashed_versions("m", range(1, 1101))
    names = [*measured, "m/0001", "m/2000", "m/\u00b2", "other/1", "plain-name"]

    with CaptureQueriesContext(connection) as captured:
        found = selectors.measured_digests(names)

    assert found == {**measured, "m/0001": measured["m/1"]}
    assert len(captured.captured_queries) == 3  # 500 versions a query


@pytest.mark.django_db
def test_measured_digests_tell_versions_of_different_models_apart() -> None:
    fraud = hashed_versions("fraud", range(1, 3))
    churn = hashed_versions("churn", range(1, 3), digest_base=100)
    unhashed = ModelVersion.objects.create(
        registered_model=RegisteredModel.objects.get(name="fraud"), version=3
    )

    found = selectors.measured_digests([*fraud, *churn, f"fraud/{unhashed.version}"])

    assert found == {**fraud, **churn}
    assert found["fraud/1"] != found["churn/1"]


@pytest.mark.django_db
def test_measured_digests_of_no_version_cost_no_query() -> None:
    with CaptureQueriesContext(connection) as captured:
        assert selectors.measured_digests(["plain", "fraud/\u00b2", "fraud/"]) == {}

    assert captured.captured_queries == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "declared_length",
    [None, "", "\u00b2", "\u0661\u0662", "12x", "-5", "0" * 5000 + "12"],
    ids=["absent", "empty", "superscript", "arabic-indic", "not-a-number", "negative", "zeros"],
)
def test_a_declared_length_that_is_not_one_over_the_limit_is_let_through(
    declared_length: str | None,
) -> None:
    attestation_upload_check(declared_length=declared_length, actor=ACTOR)

    assert not LogEntry.objects.filter(event_type="attestation.rejected").exists()


@pytest.mark.django_db
def test_a_declared_length_over_the_limit_is_refused_and_logged(settings: Any) -> None:
    settings.ATTESTATION_MAX_BYTES = limit = 2048

    with pytest.raises(AttestationRefused) as refused:
        attestation_upload_check(declared_length=f"00{limit + 1}", actor=ACTOR)

    assert (refused.value.status, refused.value.code) == (413, "payload_too_large")
    event = LogEntry.objects.get(event_type="attestation.rejected")
    assert json.loads(bytes(event.entry))["after"] == {
        "code": "payload_too_large",
        "declared_bytes": limit + 1,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("declared_length", ["9" * 16, "9" * 5000], ids=["16", "5000"])
def test_a_declared_length_too_large_to_log_is_still_refused_as_too_large(
    declared_length: str,
) -> None:
    with pytest.raises(AttestationRefused) as refused:
        attestation_upload_check(declared_length=declared_length, actor=ACTOR)

    assert refused.value.code == "payload_too_large"
    assert LogEntry.objects.filter(event_type="attestation.rejected").count() == 1
