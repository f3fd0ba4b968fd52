"""What a caller holding roles on some models learns of the others through the API: nothing.

Evidence asked for about a model one may not see is "not found", exactly as for a model that
does not exist. An attestation is signed whole, so it is shown whole or not at all: one about a
visible version and a hidden one, or about files a visible version shares with a hidden model's
version, is hidden from every list, detail, envelope and lineage edge. A refused upload does
not tell the digest the registry measured. And the impact of a node lists each alias once.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.db.models import F
from django.test import Client

from compliance import tasks
from compliance.evidence import collect
from compliance.models import EvidenceBundle
from provenance import predicates
from provenance import selectors as provenance_selectors
from provenance.attestation_verify import PREDICATE_TEST_RESULT, sign_statement
from provenance.models import (
    Artifact,
    Attestation,
    AttestationSubject,
    EdgeRelation,
    LineageEdge,
    LineageNode,
    LogEntry,
)
from provenance.services import version_node_ensure
from registry.choices import HashStatus
from registry.models import ModelVersion, Run
from tests.api.conftest import CHURN_1, FRAUD_1, RAW, SHARED, World, bearer, grant, signed_in
from tests.conftest import make_user
from tests.provenance.test_lineage import dependency, ingest, observe, provenance

pytestmark = pytest.mark.django_db
EVIDENCE = "/api/v1/evidence"
ATTESTATIONS = "/api/v1/attestations"
LINEAGE = "/api/v1/lineage"
UNKNOWN = "77" * 32


def refused(response: Any, status: int, code: str) -> str:
    """The refusal's ``detail``, once it is ``{"code": code, "detail": ...}`` with ``status``."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "detail"}, body
    assert body["code"] == code, body
    assert body["detail"]
    detail: str = body["detail"]
    return detail


# --- evidence about a model one may not see ----------------------------------------------------


@pytest.fixture
def fraud_officer(world: World) -> User:
    """A Compliance Officer of ``fraud`` only: ``churn`` is hidden from them."""
    user = make_user("olivia")
    grant(user, "compliance_officer", world.models["fraud"])
    return user


def ask(client: Client, body: dict[str, Any], **headers: str) -> Any:
    return client.post(EVIDENCE, body, content_type="application/json", headers=headers)


def told(response: Any, model: str) -> tuple[int, str]:
    """What a response tells, the model's name aside."""
    return response.status_code, response.content.decode().replace(model, "<model>")


def nothing_requested() -> None:
    assert not EvidenceBundle.objects.exists()
    assert not LogEntry.objects.filter(event_type="evidence.requested").exists()


def test_a_hidden_model_and_its_versions_are_not_found_like_a_missing_model(
    client: Client, world: World, fraud_officer: User
) -> None:
    signed_in(client, fraud_officer)

    missing = ask(client, {"scope": "model_version", "model": "no-such-model", "version": 1})
    hidden_version = ask(client, {"scope": "model_version", "model": "churn", "version": 1})
    absent_version = ask(client, {"scope": "model_version", "model": "churn", "version": 7})

    refused(missing, 404, "model_not_found")
    assert told(hidden_version, "churn") == told(missing, "no-such-model")
    assert told(absent_version, "churn") == told(missing, "no-such-model")
    nothing_requested()


def test_an_outsiders_token_learns_no_model_names(
    client: Client, world: World, outsider: User
) -> None:
    headers = bearer(outsider, "evidence")
    period = {"period_start": "2024-01-01T00:00:00Z", "period_end": "2024-02-01T00:00:00Z"}

    hidden = ask(client, {"scope": "registered_model", "model": "churn", **period}, **headers)
    missing = ask(client, {"scope": "registered_model", "model": "zzz", **period}, **headers)

    refused(missing, 404, "model_not_found")
    assert told(hidden, "churn") == told(missing, "zzz")
    nothing_requested()


def test_who_sees_the_model_but_is_no_compliance_officer_is_refused_as_such(
    client: Client, world: World, fraud_reader: User
) -> None:
    signed_in(client, fraud_reader)

    seen = ask(client, {"scope": "model_version", "model": "fraud", "version": 1})
    hidden = ask(client, {"scope": "model_version", "model": "churn", "version": 1})

    refused(seen, 403, "not_compliance_officer")
    refused(hidden, 404, "model_not_found")
    nothing_requested()


def test_an_officer_of_the_model_is_served_and_told_of_its_missing_versions(
    client: Client, world: World, fraud_officer: User
) -> None:
    signed_in(client, fraud_officer)

    with mock.patch.object(tasks.evidence_build, "delay"):
        accepted = ask(client, {"scope": "model_version", "model": "fraud", "version": 1})
        absent = ask(client, {"scope": "model_version", "model": "fraud", "version": 99})

    assert accepted.status_code == 202, accepted.content
    assert EvidenceBundle.objects.get().model_name == "fraud"
    refused(absent, 404, "version_not_found")


# --- attestations about a model one may not see -------------------------------------------------


@pytest.fixture
def shared_benchmark(world: World, pipeline: Any) -> Attestation:
    """One evaluation report about fraud/1 and churn/1 (a benchmark job run on both)."""
    return ingest(
        predicates.statement(
            subjects=[("fraud/1", FRAUD_1), ("churn/1", CHURN_1)],
            predicate_type=PREDICATE_TEST_RESULT,
            predicate={"result": "PASSED", "configuration": [{"name": "benchmark"}]},
        ),
        pipeline,
    )


@pytest.fixture
def churn_copy(world: World) -> ModelVersion:
    """churn/2: fraud/1's very files, registered under ``churn`` from a run of its own."""
    run = Run.objects.create(run_id="run-churn-secret", user="zed", experiment_id="9")
    artifact = Artifact.objects.get(digest=FRAUD_1)
    version = ModelVersion.objects.create(
        registered_model=world.models["churn"],
        version=2,
        run=run,
        mlflow_run_id=run.run_id,
        model_artifact=artifact,
        hash_status=HashStatus.HASHED,
        source=f"runs:/{run.run_id}/model",
    )
    version_node_ensure(name="churn", version=2, artifact=artifact)
    return version


@pytest.fixture
def churn_copy_observed(churn_copy: ModelVersion) -> Attestation:
    """The registry's own observation of churn/2, with an alias that names a secret."""
    return observe("churn", 2, aliases=["secret-canary"], digest=FRAUD_1)


@pytest.fixture
def churn_copy_trained(churn_copy: ModelVersion, pipeline: Any) -> Attestation:
    """churn/2's training provenance: it names fraud/1's files as churn/2, and only so."""
    return ingest(
        provenance(
            [("churn/2", FRAUD_1)],
            invocation="run-churn-secret",
            dependencies=[dependency(SHARED, "transactions-clean")],
        ),
        pipeline,
    )


DOORS = ("list", "subject filter", "detail", "envelope", "artifact")


def doors_showing(client: Client, attestation: Attestation, digest: str) -> dict[str, bool]:
    """Which of the API's doors show ``attestation`` (a subject of which is ``digest``)."""
    envelope_digest = attestation.envelope_digest
    listed = client.get(ATTESTATIONS).json()["results"]
    about = client.get(ATTESTATIONS, {"subject": f"sha256:{digest}"}).json()["results"]
    artifact = client.get(f"/api/v1/artifacts/sha256:{digest}").json()["attestations"]
    detail = client.get(f"{ATTESTATIONS}/{envelope_digest}")
    envelope = client.get(f"{ATTESTATIONS}/{envelope_digest}/envelope")
    for response in (detail, envelope):
        if response.status_code != 200:
            refused(response, 404, "attestation_not_found")
    return {
        "list": envelope_digest in [a["envelope_digest"] for a in listed],
        "subject filter": envelope_digest in [a["envelope_digest"] for a in about],
        "detail": detail.status_code == 200,
        "envelope": envelope.status_code == 200,
        "artifact": envelope_digest in [a["envelope_digest"] for a in artifact],
    }


def test_an_attestation_about_a_visible_and_a_hidden_version_is_hidden_whole(
    client: Client, shared_benchmark: Attestation, fraud_reader: User
) -> None:
    signed_in(client, fraud_reader)

    assert doors_showing(client, shared_benchmark, FRAUD_1) == dict.fromkeys(DOORS, False)
    assert "churn" not in client.get(ATTESTATIONS).content.decode()


def test_the_subject_filter_answers_a_hidden_digest_as_an_unknown_one(
    client: Client, shared_benchmark: Attestation, fraud_reader: User
) -> None:
    headers = bearer(fraud_reader, "read")

    hidden = client.get(ATTESTATIONS, {"subject": f"sha256:{CHURN_1}"}, headers=headers)
    unknown = client.get(ATTESTATIONS, {"subject": f"sha256:{UNKNOWN}"}, headers=headers)

    assert hidden.status_code == unknown.status_code == 200
    assert hidden.json()["results"] == unknown.json()["results"] == []


def test_the_registrys_observation_of_a_hidden_copy_of_visible_files_is_hidden(
    client: Client, churn_copy_observed: Attestation, fraud_reader: User
) -> None:
    signed_in(client, fraud_reader)

    assert doors_showing(client, churn_copy_observed, FRAUD_1) == dict.fromkeys(DOORS, False)
    for url in (ATTESTATIONS, f"/api/v1/artifacts/sha256:{FRAUD_1}"):
        text = client.get(url).content.decode()
        assert "churn/2" not in text
        assert "secret-canary" not in text


@pytest.mark.parametrize("fixture", ["shared_benchmark", "churn_copy_observed"])
def test_who_sees_everything_sees_those_attestations_at_every_door(
    client: Client, reader: User, request: pytest.FixtureRequest, fixture: str
) -> None:
    attestation: Attestation = request.getfixturevalue(fixture)
    signed_in(client, reader)

    assert doors_showing(client, attestation, FRAUD_1) == dict.fromkeys(DOORS, True)


def node_refs(body: dict[str, Any]) -> set[str]:
    return {node["ref"] for node in body["nodes"]}


def test_lineage_proven_by_an_attestation_about_a_hidden_copy_is_hidden(
    client: Client, churn_copy_trained: Attestation, fraud_reader: User, reader: User
) -> None:
    signed_in(client, fraud_reader)
    upstream = {"node": "model_version:fraud/1", "direction": "upstream"}
    responses = [
        client.get(LINEAGE, upstream),
        client.get(f"{LINEAGE}/path", {"from": f"sha256:{RAW}", "to": "model_version:fraud/1"}),
        client.get(f"{LINEAGE}/impact", {"node": f"sha256:{SHARED}"}),
        client.get(f"{LINEAGE}/impact", {"node": f"sha256:{SHARED}", "format": "csv"}),
    ]

    for response in responses:
        assert response.status_code == 200, response.content
        text = response.content.decode()
        assert "run-churn-secret" not in text
        assert churn_copy_trained.envelope_digest not in text
    assert "run:run-fraud-1" in node_refs(responses[0].json())
    # The provenance names the files as churn/2: its edges go to churn/2 alone, for everyone.
    signed_in(client, reader)
    assert "run:run-churn-secret" not in node_refs(client.get(LINEAGE, upstream).json())
    churn_upstream = {"node": "model_version:churn/2", "direction": "upstream"}
    assert "run:run-churn-secret" in node_refs(client.get(LINEAGE, churn_upstream).json())


def test_the_runs_behind_a_hidden_copy_are_not_found_like_unknown_ones(
    client: Client, churn_copy_trained: Attestation, fraud_reader: User, reader: User
) -> None:
    # The training provenance of churn/2 names fraud/1's files. Derived before the registry
    # told the two versions apart, it also drew its run into fraud/1: such an edge must not
    # open churn's run to a reader of fraud.
    LineageEdge.objects.create(
        upstream=LineageNode.objects.get(kind="run", key="run-churn-secret"),
        downstream=LineageNode.objects.get(kind="model_version", key="fraud/1"),
        relation=EdgeRelation.PRODUCED,
        attestation=churn_copy_trained,
        created_at=churn_copy_trained.received_at,
    )
    signed_in(client, fraud_reader)

    hidden = client.get(LINEAGE, {"node": "run:run-churn-secret"})
    unknown = client.get(LINEAGE, {"node": "run:run-nobody-ran"})

    assert told(hidden, "run-churn-secret") == told(unknown, "run-nobody-ran")
    refused(unknown, 404, "lineage_node_not_found")
    signed_in(client, reader)
    assert client.get(LINEAGE, {"node": "run:run-churn-secret"}).status_code == 200


def test_what_fraud_1_depends_on_leaves_out_what_names_its_files_as_churn_2(
    world: World, churn_copy_observed: Attestation
) -> None:
    fraud_1 = LineageNode.objects.get(kind="model_version", key="fraud/1")
    churn_2 = LineageNode.objects.get(kind="model_version", key="churn/2")
    fraud_model = world.models["fraud"]
    fraud_scope = collect.Scope(
        bundle=EvidenceBundle(),
        models=[fraud_model],
        versions=list(ModelVersion.objects.filter(registered_model=fraud_model, version=1)),
        start=None,
        end=None,
        digests={FRAUD_1},
    )

    behind_fraud = provenance_selectors.attestations_behind(node=fraud_1, digest=FRAUD_1)
    behind_churn = provenance_selectors.attestations_behind(node=churn_2, digest=FRAUD_1)

    assert churn_copy_observed not in behind_fraud
    assert churn_copy_observed in behind_churn
    assert behind_fraud  # fraud/1's own observation and provenance stay
    assert churn_copy_observed.pk not in collect.attestation_ids(fraud_scope)
    assert collect.attestation_ids(fraud_scope)


def test_the_version_page_lists_only_the_attestations_one_may_see(
    client: Client, churn_copy_observed: Attestation, fraud_reader: User, reader: User
) -> None:
    page = "/models/fraud/versions/1/"
    signed_in(client, fraud_reader)

    assert churn_copy_observed.envelope_digest[:16] not in client.get(page).content.decode()
    signed_in(client, reader)
    assert churn_copy_observed.envelope_digest[:16] in client.get(page).content.decode()


def test_lineage_proven_by_an_attestation_about_a_hidden_version_is_hidden(
    client: Client, shared_benchmark: Attestation, fraud_reader: User, reader: User
) -> None:
    downstream = {"node": "model_version:fraud/1", "direction": "downstream"}
    benchmark = f"evaluation:{shared_benchmark.envelope_digest}"
    signed_in(client, fraud_reader)

    body = client.get(LINEAGE, downstream).json()

    assert benchmark not in node_refs(body)
    assert shared_benchmark.envelope_digest not in json.dumps(body)
    assert any(ref.startswith("evaluation:") for ref in node_refs(body))  # fraud's own
    signed_in(client, reader)
    assert benchmark in node_refs(client.get(LINEAGE, downstream).json())


def test_each_subject_records_the_model_its_name_makes_it_a_version_of(
    shared_benchmark: Attestation, churn_copy_trained: Attestation, world: World
) -> None:
    def named(attestation: Attestation) -> set[tuple[str, str]]:
        subjects = AttestationSubject.objects.filter(attestation=attestation)
        return set(subjects.values_list("artifact__digest", "named_model"))

    assert named(shared_benchmark) == {(FRAUD_1, "fraud"), (CHURN_1, "churn")}
    assert named(churn_copy_trained) == {(FRAUD_1, "churn")}
    assert named(world.attestations["observe-fraud"]) == {(FRAUD_1, "fraud")}
    assert named(world.attestations["etl"]) == {(SHARED, "")}  # a dataset names no model


def test_the_migration_fills_in_the_model_of_subjects_stored_before_it(
    shared_benchmark: Attestation, churn_copy_trained: Attestation
) -> None:
    recorded = dict(AttestationSubject.objects.values_list("pk", "named_model"))
    assert {"fraud", "churn"} <= set(recorded.values())
    AttestationSubject.objects.update(named_model="")
    migration = importlib.import_module("provenance.migrations.0009_subject_named_model")

    migration.fill(apps, None)

    assert dict(AttestationSubject.objects.values_list("pk", "named_model")) == recorded


def signed(pipeline: Any, subjects: list[tuple[str, str]]) -> bytes:
    """An evaluation report about ``subjects``, signed by the trusted pipeline."""
    statement = predicates.statement(
        subjects=subjects,
        predicate_type=PREDICATE_TEST_RESULT,
        predicate={"result": "PASSED", "configuration": [{"name": "holdout"}]},
    )
    raw: bytes = sign_statement(statement, pipeline)
    return raw


def submit(client: Client, raw: bytes, **headers: str) -> Any:
    return client.post(ATTESTATIONS, data=raw, content_type="application/json", headers=headers)


def submit_bundle(client: Client, raw: bytes, **headers: str) -> Any:
    """``raw`` as the one line of an in-toto bundle: answered 207, line by line."""
    response = client.post(
        ATTESTATIONS, data=raw + b"\n", content_type="application/jsonl", headers=headers
    )
    assert response.status_code == 207, response.content
    return response


def rejections() -> list[dict[str, Any]]:
    return [
        json.loads(bytes(entry.entry))
        for entry in LogEntry.objects.filter(event_type="attestation.rejected")
    ]


def test_one_model_digest_named_as_versions_of_two_models_is_refused(
    client: Client, world: World, pipeline: Any, fraud_reader: User
) -> None:
    signed_in(client, fraud_reader)
    held = Attestation.objects.count()
    two_models = [("fraud/1", FRAUD_1), ("fraud-shadow/1", FRAUD_1)]

    single = submit(client, signed(pipeline, two_models))
    [line] = submit_bundle(client, signed(pipeline, two_models)).json()

    refused(single, 400, "subject_mismatch")
    assert (line["status"], line["code"]) == (400, "subject_mismatch")
    assert Attestation.objects.count() == held
    assert [event["after"] for event in rejections()] == [{"code": "subject_mismatch"}] * 2


def test_one_model_digest_named_twice_as_the_same_models_version_is_accepted(
    client: Client, world: World, pipeline: Any, fraud_reader: User
) -> None:
    signed_in(client, fraud_reader)

    response = submit(client, signed(pipeline, [("fraud/1", FRAUD_1), ("fraud/01", FRAUD_1)]))

    assert response.status_code == 201, response.content


# --- what a refused upload tells -----------------------------------------------------------------


def test_a_subject_mismatch_does_not_tell_the_digest_of_a_hidden_version(
    client: Client, world: World, pipeline: Any, fraud_reader: User
) -> None:
    """fraud_reader claims churn/1 (hidden from them) is fraud/1's files: the registry refuses,
    without saying what it measured for churn/1."""
    headers = bearer(fraud_reader, "attest")
    held = Attestation.objects.count()
    raw = signed(pipeline, [("churn/1", FRAUD_1)])

    single = submit(client, raw, **headers)
    bundle = submit_bundle(client, raw, **headers)

    refused(single, 400, "subject_mismatch")
    [line] = bundle.json()
    assert (line["status"], line["code"]) == (400, "subject_mismatch")
    for text in (single.content.decode(), bundle.content.decode(), json.dumps(rejections())):
        assert CHURN_1 not in text
    assert Attestation.objects.count() == held


# --- the impact of a node lists each alias once ------------------------------------------------

IMPACT = f"{LINEAGE}/impact"


@dataclass(frozen=True)
class FirstSeen:
    """When ``production`` first pointed at fraud/1, and the attestation that saw it."""

    since: datetime
    envelope_digest: str


@pytest.fixture
def observed_again(world: World) -> FirstSeen:
    """fraud/1 observed twice more with ``production`` on it, as each MLflow sync does, the
    first observation backdated an hour: three edges prove the alias points there."""
    proof = world.attestations["observe-fraud"]
    first = LineageEdge.objects.filter(attestation=proof, relation=EdgeRelation.PROMOTED_TO)
    first.update(created_at=F("created_at") - timedelta(hours=1))
    for _ in range(2):
        observe("fraud", 1, aliases=["production"], digest=FRAUD_1)
    edges = LineageEdge.objects.filter(
        upstream__key="fraud/1", downstream__key="fraud@production", ended_at__isnull=True
    )
    assert edges.count() == 3
    return FirstSeen(since=first.get().created_at, envelope_digest=proof.envelope_digest)


@pytest.mark.parametrize("depth", [None, 4], ids=["walked", "at-the-depth-limit"])
@pytest.mark.parametrize("who", ["reader", "fraud_reader"])
def test_impact_lists_each_alias_once_since_it_first_pointed_there(
    client: Client,
    observed_again: FirstSeen,
    request: pytest.FixtureRequest,
    who: str,
    depth: int | None,
) -> None:
    signed_in(client, request.getfixturevalue(who))
    query: dict[str, Any] = {"node": f"sha256:{RAW}"}
    if depth is not None:
        query["depth"] = depth  # the versions sit at the limit: their aliases are queried

    body = client.get(IMPACT, query).json()
    rows = list(csv.DictReader(io.StringIO(client.get(IMPACT, {**query, "format": "csv"}).text)))
    by_accept = client.get(IMPACT, query, headers={"Accept": "text/csv"}).text

    expected = [("churn", "production", 1), ("fraud", "production", 1)]
    if who == "fraud_reader":
        expected = expected[1:]
    assert [(a["model"], a["alias"], a["version"]) for a in body["aliases"]] == expected
    fraud = body["aliases"][-1]
    assert fraud["attestation"]["envelope_digest"] == observed_again.envelope_digest
    assert datetime.fromisoformat(fraud["since"]) == observed_again.since
    assert [(r["model"], r["alias"], int(r["version"])) for r in rows] == expected
    assert (rows[-1]["since"], rows[-1]["attestation"]) == (
        fraud["since"],
        observed_again.envelope_digest,
    )
    assert list(csv.DictReader(io.StringIO(by_accept))) == rows
