"""Lineage over HTTP: graph, path and impact (JSON and CSV), narrowed to what one may see."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from provenance.models import Attestation, VerificationStatus
from tests.api.conftest import CHURN_1, FRAUD_1, RAW, SHARED, World, signed_in

pytestmark = pytest.mark.django_db
LINEAGE = "/api/v1/lineage"


@pytest.fixture
def api(client: Client, world: World, reader: User) -> Client:
    return signed_in(client, reader)


def edge_set(body: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(e["upstream"], e["relation"], e["downstream"]) for e in body["edges"]}


def test_upstream_of_a_version_reaches_the_raw_data(api: Client, world: World) -> None:
    body = api.get(LINEAGE, {"node": "model_version:fraud/1", "direction": "upstream"}).json()

    assert [n["ref"] for n in body["start"]] == ["model_version:fraud/1"]
    assert {n["ref"]: n["depth"] for n in body["nodes"]} == {
        "model_version:fraud/1": 0,
        "run:run-fraud-1": 1,
        f"dataset:sha256:{SHARED}": 2,
        "run:etl-7": 3,
        f"dataset:sha256:{RAW}": 4,
    }
    assert edge_set(body) == {
        (f"dataset:sha256:{RAW}", "derived-from", "run:etl-7"),
        ("run:etl-7", "produced", f"dataset:sha256:{SHARED}"),
        (f"dataset:sha256:{SHARED}", "trained-on", "run:run-fraud-1"),
        ("run:run-fraud-1", "produced", "model_version:fraud/1"),
    }
    proof = body["edges"][0]["attestation"]
    assert proof["signer"] == "pipeline"
    assert proof["verification_status"] == "verified"
    assert api.get(proof["url"]).status_code == 200


def test_nodes_carry_kind_key_label_and_digest(api: Client) -> None:
    body = api.get(LINEAGE, {"node": f"sha256:{FRAUD_1}", "depth": "1"}).json()

    [version] = [n for n in body["nodes"] if n["kind"] == "model_version"]
    assert version == {
        "ref": "model_version:fraud/1",
        "kind": "model_version",
        "key": "fraud/1",
        "label": "fraud v1",
        "digest": f"sha256:{FRAUD_1}",
        "depth": 0,
    }
    kinds = {n["kind"] for n in body["nodes"]}
    assert kinds == {"model_version", "run", "evaluation", "alias"}


def test_an_edge_shows_when_its_attestation_stopped_verifying(api: Client, world: World) -> None:
    Attestation.objects.filter(pk=world.attestations["train-fraud"].pk).update(
        verification_status=VerificationStatus.FAILED
    )

    body = api.get(LINEAGE, {"node": "model_version:fraud/1", "direction": "upstream"}).json()

    statuses = {
        e["upstream"]: e["attestation"]["verification_status"]
        for e in body["edges"]
        if e["downstream"] == "run:run-fraud-1"
    }
    assert statuses == {f"dataset:sha256:{SHARED}": "failed"}


def test_depth_bounds_the_walk(api: Client) -> None:
    body = api.get(
        LINEAGE, {"node": "model_version:fraud/1", "direction": "upstream", "depth": "1"}
    )

    assert {n["ref"] for n in body.json()["nodes"]} == {
        "model_version:fraud/1",
        "run:run-fraud-1",
    }


def test_a_walk_is_one_recursive_query_however_deep(api: Client) -> None:
    counts = []
    for depth in (1, 30):
        with CaptureQueriesContext(connection) as queries:
            api.get(LINEAGE, {"node": f"sha256:{RAW}", "direction": "both", "depth": str(depth)})
        counts.append(len(queries))
        assert sum("WITH RECURSIVE" in q["sql"] for q in queries.captured_queries) == 2
    assert counts[0] == counts[1]


def test_a_registry_dataset_id_names_its_attested_digest(api: Client, world: World) -> None:
    dataset = world.datasets["transactions"]

    body = api.get(LINEAGE, {"node": f"dataset:{dataset.pk}", "depth": "1"}).json()

    assert [n["ref"] for n in body["start"]] == [f"dataset:sha256:{SHARED}"]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"node": "nonsense"}, 400, "lineage_bad_node"),
        ({"node": "planet:earth"}, 400, "lineage_bad_node"),
        ({"node": "model_version:fraud/1", "depth": 0}, 400, "lineage_bad_depth"),
        ({"node": "model_version:fraud/1", "depth": 51}, 400, "lineage_bad_depth"),
        ({"node": "model_version:fraud/1", "depth": "deep"}, 400, "invalid"),
        ({"node": "model_version:fraud/1", "direction": "sideways"}, 400, "invalid"),
        ({}, 400, "invalid"),
        ({"node": "model_version:fraud/99"}, 404, "lineage_node_not_found"),
        ({"node": "sha256:" + "ee" * 32}, 404, "lineage_node_not_found"),
        ({"node": "dataset:999999"}, 404, "lineage_node_not_found"),
        ({"node": "dataset:99999999999999999999999"}, 404, "lineage_node_not_found"),
    ],
)
def test_bad_or_unknown_nodes(api: Client, query: dict[str, Any], status: int, code: str) -> None:
    response = api.get(LINEAGE, query)

    assert response.status_code == status
    assert response.json()["code"] == code


def test_the_path_from_raw_data_to_a_version(api: Client) -> None:
    body = api.get(
        f"{LINEAGE}/path", {"from": f"sha256:{RAW}", "to": "model_version:fraud/1"}
    ).json()

    assert edge_set(body) == {
        (f"dataset:sha256:{RAW}", "derived-from", "run:etl-7"),
        ("run:etl-7", "produced", f"dataset:sha256:{SHARED}"),
        (f"dataset:sha256:{SHARED}", "trained-on", "run:run-fraud-1"),
        ("run:run-fraud-1", "produced", "model_version:fraud/1"),
    }
    back = api.get(f"{LINEAGE}/path", {"from": "model_version:fraud/1", "to": f"sha256:{RAW}"})
    assert len(back.json()["edges"]) == 4
    apart = api.get(f"{LINEAGE}/path", {"from": "model_version:fraud/1", "to": "run:run-churn-1"})
    assert apart.json()["edges"] == []


def test_the_path_needs_both_ends(api: Client) -> None:
    response = api.get(f"{LINEAGE}/path", {"from": f"sha256:{RAW}"})

    assert response.status_code == 400
    assert "to" in response.json()["errors"]


def test_a_path_to_what_one_may_not_see_is_not_found(
    client: Client, world: World, fraud_reader: User
) -> None:
    signed_in(client, fraud_reader)

    response = client.get(
        f"{LINEAGE}/path", {"from": f"sha256:{RAW}", "to": "model_version:churn/1"}
    )

    assert response.status_code == 404
    assert response.json()["code"] == "lineage_node_not_found"


# --- impact -----------------------------------------------------------------------------

IMPACT = f"{LINEAGE}/impact"


def test_impact_of_raw_data_lists_every_version_and_alias_downstream(
    api: Client, world: World
) -> None:
    body = api.get(IMPACT, {"node": f"sha256:{RAW}"}).json()

    assert [(v["model"], v["version"], v["depth"]) for v in body["model_versions"]] == [
        ("churn", 1, 4),
        ("fraud", 1, 4),
    ]
    [fraud] = [v for v in body["model_versions"] if v["model"] == "fraud"]
    assert fraud["digest"] == f"sha256:{FRAUD_1}"
    assert [a["envelope_digest"] for a in fraud["attestations"]] == [
        world.attestations["train-fraud"].envelope_digest
    ]
    assert [(a["model"], a["alias"], a["version"]) for a in body["aliases"]] == [
        ("churn", "production", 1),
        ("fraud", "production", 1),
    ]
    assert body["aliases"][1]["attestation"]["envelope_digest"] == (
        world.attestations["observe-fraud"].envelope_digest
    )


def test_impact_as_csv(api: Client, world: World) -> None:
    by_format = api.get(IMPACT, {"node": f"sha256:{RAW}", "format": "csv"})
    by_accept = api.get(IMPACT, {"node": f"sha256:{RAW}"}, headers={"Accept": "text/csv"})

    assert by_format["Content-Type"].startswith("text/csv")
    assert by_format.content == by_accept.content
    rows = list(csv.DictReader(io.StringIO(by_format.content.decode())))
    assert [(r["model"], r["version"], r["alias"]) for r in rows] == [
        ("churn", "1", "production"),
        ("fraud", "1", "production"),
    ]
    assert rows[1]["digest"] == f"sha256:{FRAUD_1}"
    assert rows[1]["attestation"] == world.attestations["observe-fraud"].envelope_digest
    assert rows[1]["since"]


def test_a_version_without_alias_is_one_csv_row_with_its_proof(api: Client, world: World) -> None:
    from provenance.models import EdgeRelation, LineageEdge

    LineageEdge.objects.filter(relation=EdgeRelation.PROMOTED_TO).delete()

    rows = list(
        csv.DictReader(
            io.StringIO(api.get(IMPACT, {"node": f"sha256:{SHARED}", "format": "csv"}).text)
        )
    )

    assert [(r["model"], r["alias"], r["since"]) for r in rows] == [
        ("churn", "", ""),
        ("fraud", "", ""),
    ]
    assert rows[1]["attestation"] == world.attestations["train-fraud"].envelope_digest


def test_impact_errors_stay_json_when_csv_was_asked_for(api: Client) -> None:
    response = api.get(IMPACT, {"node": "sha256:" + "ee" * 32, "format": "csv"})

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "lineage_node_not_found"


def test_impact_shows_only_what_one_may_see(
    client: Client, world: World, fraud_reader: User
) -> None:
    signed_in(client, fraud_reader)

    body = client.get(IMPACT, {"node": f"sha256:{RAW}"}).json()
    text = client.get(IMPACT, {"node": f"sha256:{RAW}", "format": "csv"}).content.decode()

    assert [v["ref"] for v in body["model_versions"]] == ["model_version:fraud/1"]
    assert [a["model"] for a in body["aliases"]] == ["fraud"]
    assert "churn" not in text
    assert CHURN_1 not in text


def test_the_upstream_of_another_model_is_not_found(
    client: Client, world: World, fraud_reader: User
) -> None:
    signed_in(client, fraud_reader)

    for node in ("model_version:churn/1", f"sha256:{CHURN_1}", "run:run-churn-1"):
        response = client.get(LINEAGE, {"node": node})
        assert response.status_code == 404, node
        assert response.json()["code"] == "lineage_node_not_found"
