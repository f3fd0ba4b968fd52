"""The lineage endpoints write their JSON with orjson: the bytes DRF's renderer would write."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.renderers import JSONRenderer

from config.renderers import OrjsonRenderer
from provenance.models import LineageNode
from tests.api.conftest import RAW, World, signed_in

pytestmark = pytest.mark.django_db
LINEAGE = "/api/v1/lineage"

QUERIES: list[tuple[str, dict[str, str]]] = [
    (LINEAGE, {"node": f"sha256:{RAW}", "direction": "both"}),
    (LINEAGE, {"node": "model_version:fraud/1", "direction": "upstream", "depth": "2"}),
    (f"{LINEAGE}/path", {"from": f"sha256:{RAW}", "to": "model_version:fraud/1"}),
    (f"{LINEAGE}/impact", {"node": f"sha256:{RAW}"}),
    (LINEAGE, {"node": "model_version:nowhere/1"}),  # an error
    (LINEAGE, {"node": "model_version:fraud/1", "depth": "0"}),  # a bad input
]


@pytest.fixture
def api(client: Client, world: World, reader: User) -> Client:
    # Labels come from pipelines: give one what JSON writers disagree on most.
    LineageNode.objects.filter(kind="run", key="etl-7").update(label='é\u2028"\\\x01 ✓ 𝄞')
    return signed_in(client, reader)


@pytest.mark.parametrize(("path", "query"), QUERIES)
def test_the_bytes_are_drfs(api: Client, path: str, query: dict[str, Any]) -> None:
    response = api.get(path, query)

    assert response.accepted_renderer.__class__ is OrjsonRenderer  # type: ignore[attr-defined]
    assert response.content == JSONRenderer().render(response.data)  # type: ignore[attr-defined]
    assert response["Content-Type"] == "application/json"


def test_the_awkward_label_is_written(api: Client) -> None:
    response = api.get(LINEAGE, {"node": f"sha256:{RAW}", "direction": "downstream"})

    assert b"\\u2028" in response.content
    labels = {node["label"] for node in response.json()["nodes"]}
    assert 'é\u2028"\\\x01 ✓ 𝄞' in labels


def test_a_pretty_printed_answer_is_still_pretty(api: Client) -> None:
    response = api.get(
        LINEAGE, {"node": f"sha256:{RAW}"}, headers={"Accept": "application/json; indent=2"}
    )

    assert response.content.startswith(b'{\n  "start"')


def test_the_browsable_api_still_answers_browsers(api: Client) -> None:
    response = api.get(LINEAGE, {"node": f"sha256:{RAW}"}, headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
