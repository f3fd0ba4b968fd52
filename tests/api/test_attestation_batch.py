"""POST /api/v1/attestations with an in-toto bundle: one DSSE envelope per line, each line
verified and stored (or refused) on its own, answered line by line."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from provenance.attestation_verify import (
    PREDICATE_SLSA_PROVENANCE_V1,
    PREDICATE_TEST_RESULT,
    generate_signing_key,
    sign_statement,
    signer_from_pem,
)
from provenance.log_format import Actor
from provenance.models import Artifact, ArtifactKind, Attestation, LineageEdge, LogEntry
from provenance.predicates import statement
from provenance.services import trusted_signer_add
from registry.models import Dataset, ModelVersion, RegisteredModel, Run, RunInput
from tests.api.conftest import bearer
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
URL = "/api/v1/attestations"
JSONL = "application/jsonl"
ACTOR = Actor.system("test")
MODEL = "ab" * 32
NEW_DATASET = "cd" * 32


@pytest.fixture
def pipeline() -> Any:
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="training-pipeline",
        public_key=public_key,
        predicate_types=[PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_TEST_RESULT],
        may_register_datasets=True,
        actor=ACTOR,
    )
    return signer_from_pem(private_pem)


@pytest.fixture
def hashed_version() -> ModelVersion:
    artifact = Artifact.objects.create(
        digest=MODEL, kind=ArtifactKind.MODEL, name="fraud/1", size=10, created_at=timezone.now()
    )
    model = RegisteredModel.objects.create(name="fraud")
    return ModelVersion.objects.create(registered_model=model, version=1, model_artifact=artifact)


@pytest.fixture
def member(client: Client) -> Client:
    client.force_login(make_user("ci-bot"))
    return client


def evaluation(number: int, digest: str = MODEL) -> dict[str, Any]:
    return statement(
        subjects=[("fraud/1", digest)],
        predicate_type=PREDICATE_TEST_RESULT,
        predicate={"result": "PASSED", "configuration": [{"name": f"eval-{number}"}]},
    )


def training(run_id: str, dependencies: list[dict[str, Any]]) -> dict[str, Any]:
    return statement(
        subjects=[("fraud/1", MODEL)],
        predicate_type=PREDICATE_SLSA_PROVENANCE_V1,
        predicate={
            "buildDefinition": {"buildType": "x", "resolvedDependencies": dependencies},
            "runDetails": {"metadata": {"invocationId": run_id}},
        },
    )


def forged(envelope: bytes) -> bytes:
    """The envelope with its payload changed after signing."""
    document = json.loads(envelope)
    payload = base64.b64decode(document["payload"]).replace(b"eval-", b"EVAL-")
    document["payload"] = base64.b64encode(payload).decode()
    return json.dumps(document).encode()


def post_bundle(client: Client, lines: list[bytes], content_type: str = JSONL) -> Any:
    return client.post(URL, data=b"\n".join(lines) + b"\n", content_type=content_type)


def outcomes(response: Any) -> list[tuple[int, int, str | None]]:
    assert response.status_code == 207, response.content
    return [(line["line"], line["status"], line.get("code")) for line in response.json()]


def rejections() -> list[str]:
    return [
        json.loads(bytes(entry.entry))["after"]["code"]
        for entry in LogEntry.objects.filter(event_type="attestation.rejected").order_by("index")
    ]


def test_each_good_line_is_stored_and_each_bad_one_refused(
    member: Client, pipeline: Any, hashed_version: ModelVersion
) -> None:
    good = [sign_statement(evaluation(n), pipeline) for n in range(2)]
    stranger = sign_statement(evaluation(9), signer_from_pem(generate_signing_key()[0]))
    bad_signature = forged(sign_statement(evaluation(7), pipeline))

    response = post_bundle(member, [good[0], bad_signature, stranger, b"{not json", good[1]])

    assert outcomes(response) == [
        (1, 201, None),
        (2, 400, "bad_signature"),
        (3, 403, "untrusted_signer"),
        (4, 400, "malformed_json"),
        (5, 201, None),
    ]
    stored = {bytes(a.envelope) for a in Attestation.objects.all()}
    assert stored == set(good)
    assert rejections() == ["bad_signature", "untrusted_signer", "malformed_json"]
    assert LogEntry.objects.filter(event_type="attestation.accepted").count() == 2
    assert all(response.json()[i]["detail"] for i in (1, 2, 3))


def test_a_line_answers_what_a_single_upload_answers(
    member: Client, pipeline: Any, hashed_version: ModelVersion
) -> None:
    envelope = sign_statement(evaluation(1), pipeline)

    [line] = post_bundle(member, [envelope]).json()
    single = member.post(URL, data=envelope, content_type="application/json")

    assert single.status_code == 200
    assert line.pop("line") == 1
    assert line.pop("status") == 201
    assert line == single.json()


def test_a_refused_line_stores_nothing_of_itself(
    member: Client, pipeline: Any, hashed_version: ModelVersion
) -> None:
    # A training provenance from a signer without --datasets, naming a dataset never seen.
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="evaluator",
        public_key=public_key,
        predicate_types=[PREDICATE_SLSA_PROVENANCE_V1],
        actor=ACTOR,
    )
    unknown = statement(
        subjects=[("transactions", NEW_DATASET)],
        predicate_type=PREDICATE_SLSA_PROVENANCE_V1,
        predicate={"runDetails": {"metadata": {"invocationId": "etl-1"}}},
    )

    response = post_bundle(member, [sign_statement(unknown, signer_from_pem(private_pem))])

    assert outcomes(response) == [(1, 400, "subject_unknown")]
    assert not Attestation.objects.exists()
    assert not Artifact.objects.filter(digest=NEW_DATASET).exists()
    assert not LineageEdge.objects.exists()


def test_a_bundle_posted_again_answers_200_for_every_line(
    member: Client, pipeline: Any, hashed_version: ModelVersion
) -> None:
    lines = [sign_statement(evaluation(n), pipeline) for n in range(3)]
    first = post_bundle(member, lines)
    accepted = LogEntry.objects.filter(event_type="attestation.accepted").count()

    again = post_bundle(member, lines)

    assert [status for _, status, _ in outcomes(first)] == [201, 201, 201]
    assert [status for _, status, _ in outcomes(again)] == [200, 200, 200]
    assert [line["envelope_digest"] for line in again.json()] == [
        line["envelope_digest"] for line in first.json()
    ]
    assert Attestation.objects.count() == 3
    assert LogEntry.objects.filter(event_type="attestation.accepted").count() == accepted


def test_an_envelope_already_posted_alone_is_200_in_a_bundle(
    member: Client, pipeline: Any, hashed_version: ModelVersion
) -> None:
    envelope = sign_statement(evaluation(1), pipeline)
    assert member.post(URL, data=envelope, content_type="application/json").status_code == 201

    response = post_bundle(member, [envelope])

    assert outcomes(response) == [(1, 200, None)]
    assert response.json()[0]["subjects"][0]["digest"] == {"sha256": MODEL}


def test_the_same_envelope_twice_in_a_bundle_is_stored_once(
    member: Client, pipeline: Any, hashed_version: ModelVersion
) -> None:
    envelope = sign_statement(evaluation(1), pipeline)

    response = post_bundle(member, [envelope, envelope])

    assert outcomes(response) == [(1, 201, None), (2, 200, None)]
    assert Attestation.objects.count() == 1
    assert LogEntry.objects.filter(event_type="attestation.accepted").count() == 1


def test_blank_lines_are_skipped_and_crlf_is_not_part_of_an_envelope(
    member: Client, pipeline: Any, hashed_version: ModelVersion
) -> None:
    envelopes = [sign_statement(evaluation(n), pipeline) for n in range(2)]
    body = b"\r\n" + envelopes[0] + b"\r\n\r\n" + envelopes[1]

    response = member.post(URL, data=body, content_type=JSONL)

    assert outcomes(response) == [(2, 201, None), (4, 201, None)]
    assert {bytes(a.envelope) for a in Attestation.objects.all()} == set(envelopes)


@pytest.mark.parametrize(
    "content_type",
    ["application/vnd.in-toto.bundle", "application/x-ndjson", "application/jsonl; charset=utf-8"],
)
def test_in_totos_bundle_media_type_and_ndjson_are_bundles(
    member: Client, pipeline: Any, hashed_version: ModelVersion, content_type: str
) -> None:
    response = post_bundle(member, [sign_statement(evaluation(1), pipeline)], content_type)

    assert outcomes(response) == [(1, 201, None)]


def test_a_bundle_over_the_size_limit_is_refused_whole(
    member: Client, pipeline: Any, hashed_version: ModelVersion, settings: Any
) -> None:
    lines = [sign_statement(evaluation(n), pipeline) for n in range(3)]
    settings.ATTESTATION_MAX_BYTES = len(lines[0]) * 2

    response = post_bundle(member, lines)

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not Attestation.objects.exists()
    assert rejections() == ["payload_too_large"]


def test_a_bundle_over_the_line_limit_is_refused_whole(
    member: Client, pipeline: Any, hashed_version: ModelVersion, settings: Any
) -> None:
    settings.ATTESTATION_BUNDLE_MAX_LINES = 2

    response = post_bundle(member, [sign_statement(evaluation(n), pipeline) for n in range(3)])

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert "3 envelopes" in response.json()["detail"]
    assert not Attestation.objects.exists()
    assert rejections() == ["payload_too_large"]


def test_a_bundle_without_an_envelope_is_refused(member: Client, pipeline: Any) -> None:
    response = member.post(URL, data=b"\n \n", content_type=JSONL)

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_envelope"
    assert rejections() == ["malformed_envelope"]


def test_a_bundle_needs_the_attest_scope(pipeline: Any, hashed_version: ModelVersion) -> None:
    user = make_user("reader")
    client = Client(headers=bearer(user, "read"))

    response = post_bundle(client, [sign_statement(evaluation(1), pipeline)])

    assert response.status_code == 403
    assert not Attestation.objects.exists()


def test_lines_are_judged_against_the_registry_as_the_bundle_found_it(
    member: Client, pipeline: Any, hashed_version: ModelVersion
) -> None:
    # The ETL line introduces a dataset; the evaluation of it, in the same bundle, names a
    # subject the registry had not hashed when the bundle arrived: in either order, refused.
    etl = statement(
        subjects=[("transactions", NEW_DATASET)],
        predicate_type=PREDICATE_SLSA_PROVENANCE_V1,
        predicate={"runDetails": {"metadata": {"invocationId": "etl-1"}}},
    )
    lines = [sign_statement(etl, pipeline), sign_statement(evaluation(1, NEW_DATASET), pipeline)]

    response = post_bundle(member, lines[::-1])

    assert outcomes(response) == [(1, 400, "subject_unknown"), (2, 201, None)]
    assert Artifact.objects.get(digest=NEW_DATASET).kind == ArtifactKind.DATASET


def test_training_lines_link_mlflow_datasets_as_one_upload_after_another_would(
    member: Client, pipeline: Any, hashed_version: ModelVersion
) -> None:
    run = Run.objects.create(run_id="run-7")
    dataset = Dataset.objects.create(name="transactions", digest="d41d8cd9")
    RunInput.objects.create(run=run, dataset=dataset, context="training")
    named = [{"name": "transactions", "digest": {"sha256": d}} for d in ("11" * 32, "22" * 32)]

    response = post_bundle(
        member, [sign_statement(training("run-7", [dependency]), pipeline) for dependency in named]
    )

    assert outcomes(response) == [(1, 201, None), (2, 201, None)]
    dataset.refresh_from_db()
    assert dataset.artifact is not None
    assert dataset.artifact.digest == "11" * 32
    assert LogEntry.objects.filter(event_type="dataset.linked").count() == 1
    assert LogEntry.objects.filter(event_type="dataset.link_conflict").count() == 1


def test_a_subject_contradicting_a_measured_digest_is_refused_in_a_bundle_too(
    member: Client, pipeline: Any, hashed_version: ModelVersion
) -> None:
    other = Artifact.objects.create(
        digest="ef" * 32, kind=ArtifactKind.MODEL, name="x", size=1, created_at=timezone.now()
    )
    claims = [
        statement(
            subjects=[(name, other.digest)],
            predicate_type=PREDICATE_TEST_RESULT,
            predicate={"result": "PASSED"},
        )
        for name in ("fraud/1", "fraud/01", "x")
    ]

    response = post_bundle(member, [sign_statement(claim, pipeline) for claim in claims])

    assert outcomes(response) == [
        (1, 400, "subject_mismatch"),
        (2, 400, "subject_mismatch"),
        (3, 201, None),
    ]


def test_a_bundle_costs_the_same_queries_whatever_its_number_of_lines(
    member: Client, pipeline: Any, hashed_version: ModelVersion
) -> None:
    for number in range(2, 6):
        artifact = Artifact.objects.create(
            digest=f"{number:064x}",
            kind=ArtifactKind.MODEL,
            name=f"fraud/{number}",
            size=1,
            created_at=timezone.now(),
        )
        ModelVersion.objects.create(
            registered_model=hashed_version.registered_model,
            version=number,
            model_artifact=artifact,
        )
    lines = [
        sign_statement(
            statement(
                subjects=[(f"fraud/{n % 4 + 2}", f"{n % 4 + 2:064x}")],
                predicate_type=PREDICATE_TEST_RESULT,
                predicate={"result": "PASSED", "configuration": [{"name": f"eval-{n}"}]},
            ),
            pipeline,
        )
        for n in range(23)
    ]
    post_bundle(member, lines[:1])  # the first request of a session reads more

    with CaptureQueriesContext(connection) as two:
        assert {s for _, s, _ in outcomes(post_bundle(member, lines[1:3]))} == {201}
    with CaptureQueriesContext(connection) as twenty:
        assert {s for _, s, _ in outcomes(post_bundle(member, lines[3:]))} == {201}

    assert len(twenty.captured_queries) == len(two.captured_queries)
    assert LineageEdge.objects.count() == 23
