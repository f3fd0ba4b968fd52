"""A lineage request costs the same few queries however deep the walk and however large the
graph: one recursive walk per direction, never a query per node, edge or hop."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from provenance.models import EdgeRelation, LineageEdge, LineageNode, NodeKind
from tests.api.conftest import RAW, SHARED, World, bearer

pytestmark = pytest.mark.django_db
LINEAGE = "/api/v1/lineage"

REQUESTS: list[tuple[str, dict[str, str]]] = [
    (LINEAGE, {"node": f"sha256:{SHARED}", "direction": "both"}),
    (LINEAGE, {"node": "model_version:fraud/1", "direction": "upstream"}),
    (LINEAGE, {"node": f"dataset:sha256:{RAW}", "direction": "downstream"}),
    (f"{LINEAGE}/impact", {"node": f"sha256:{RAW}"}),
    (f"{LINEAGE}/path", {"from": f"sha256:{RAW}", "to": "model_version:fraud/1"}),
]


def grow(world: World, branches: int) -> None:
    """``branches`` more runs trained on the shared dataset, each producing a model version."""
    shared = LineageNode.objects.get(kind=NodeKind.DATASET, key=f"sha256:{SHARED}")
    proof = world.attestations["train-fraud"]
    now = timezone.now()
    for branch in range(branches):
        run = LineageNode.objects.create(kind=NodeKind.RUN, key=f"grown-{branch}", created_at=now)
        version = LineageNode.objects.create(
            kind=NodeKind.MODEL_VERSION, key=f"fraud/{100 + branch}", created_at=now
        )
        for upstream, downstream, relation in [
            (shared, run, EdgeRelation.TRAINED_ON),
            (run, version, EdgeRelation.PRODUCED),
        ]:
            LineageEdge.objects.create(
                upstream=upstream,
                downstream=downstream,
                relation=relation,
                attestation=proof,
                created_at=now,
            )


def queries(client: Client, headers: dict[str, str], path: str, query: dict[str, Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, query, headers=headers)
    assert response.status_code == 200, response.content
    return len(captured)


@pytest.mark.parametrize("case", REQUESTS)
@pytest.mark.parametrize("persona", ["reader", "fraud_reader"])
def test_the_queries_do_not_grow_with_depth_or_size(
    client: Client,
    world: World,
    persona: str,
    case: tuple[str, dict[str, str]],
    request: pytest.FixtureRequest,
) -> None:
    path, query = case
    user: User = request.getfixturevalue(persona)
    headers = bearer(user)
    client.get(LINEAGE, {"node": f"sha256:{RAW}"}, headers=headers)  # last use recorded

    counts = [queries(client, headers, path, {**query, "depth": "1"})]
    counts.append(queries(client, headers, path, {**query, "depth": "30"}))
    grow(world, 20)
    counts.append(queries(client, headers, path, {**query, "depth": "30"}))

    assert counts == [counts[0]] * 3
    # At most: the token, the caller's roles, the visible part of the graph (three, for a
    # caller with per-model roles), the start node(s), two walks, the attestations' subjects.
    assert counts[0] <= 10


def test_a_larger_graph_is_answered_in_full(client: Client, world: World, reader: User) -> None:
    grow(world, 20)

    body = client.get(
        LINEAGE, {"node": f"sha256:{SHARED}", "direction": "downstream"}, headers=bearer(reader)
    ).json()

    refs = {n["ref"] for n in body["nodes"]}
    assert {f"model_version:fraud/{100 + branch}" for branch in range(20)} <= refs
    assert {f"run:grown-{branch}" for branch in range(20)} <= refs


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (LINEAGE, {"node": "model_version:fraud/1", "direction": "upstream"}),
        (LINEAGE, {"node": f"dataset:sha256:{RAW}", "direction": "downstream"}),
        (f"{LINEAGE}/impact", {"node": f"dataset:sha256:{RAW}"}),
    ],
    ids=["upstream", "downstream", "impact"],
)
def test_a_caller_who_sees_everything_costs_two_queries(
    client: Client, world: World, reader: User, path: str, query: dict[str, str]
) -> None:
    """The token with its owner and roles, then the walk, which finds the node it starts
    from itself: no separate lookup of the start, nor of the roles."""
    headers = bearer(reader)
    client.get(LINEAGE, {"node": f"sha256:{RAW}"}, headers=headers)  # last use recorded

    assert queries(client, headers, path, query) == 2


@pytest.mark.parametrize("persona", ["reader", "fraud_reader"])
def test_a_start_named_by_kind_and_key_that_does_not_exist_is_not_found(
    client: Client, world: World, persona: str, request: pytest.FixtureRequest
) -> None:
    headers = bearer(request.getfixturevalue(persona))
    for path, query in [
        (LINEAGE, {"node": "model_version:fraud/404", "direction": "upstream"}),
        (LINEAGE, {"node": "run:nowhere", "direction": "both"}),
        (f"{LINEAGE}/impact", {"node": "dataset:sha256:" + "0" * 64}),
    ]:
        response = client.get(path, query, headers=headers)

        assert response.status_code == 404, (path, query)
        assert response.json()["code"] == "lineage_node_not_found"
        assert repr(query["node"]) in response.json()["detail"]
