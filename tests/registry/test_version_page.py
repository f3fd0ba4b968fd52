"""The version page's lineage: drawn both ways around the version (an inline SVG, the version
highlighted, unverified edges dashed, labels escaped), listed below for screen readers and
auditors, narrowed to what the reader may see, in a fixed number of queries."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from provenance import predicates
from provenance.attestation_verify import PREDICATE_TEST_RESULT
from provenance.models import Attestation, VerificationStatus
from registry import views
from tests.api import conftest as api_world
from tests.api.conftest import FRAUD_1, SHARED, World, signed_in
from tests.provenance.test_lineage import dependency, ingest, observe, provenance

pytestmark = pytest.mark.django_db

# The small registry of tests/api/conftest.py: two models sharing a dataset, real attestations.
world = api_world.world
pipeline = api_world.pipeline
reader = api_world.reader
fraud_reader = api_world.fraud_reader

PAGE = "/models/fraud/versions/1/"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(autouse=True)
def _keys_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


def picture(page: str) -> ET.Element:
    """The lineage picture of a page, parsed (which also proves it well-formed)."""
    found = re.search(r"<svg .*?</svg>", page, re.DOTALL)
    assert found, "no lineage picture on the page"
    return ET.fromstring(found.group(0))  # noqa: S314  (our own output)


def groups(root: ET.Element, css: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if css in g.get("class", "").split()]


def title(group: ET.Element) -> str:
    return group.findtext(f"{SVG}title") or ""


def more_lineage(pipeline: Any, count: int) -> None:
    """``count`` more datasets feeding fraud/1 and ``count`` more evaluations of it."""
    ingest(
        provenance(
            [("fraud/1", FRAUD_1)],
            invocation="run-fraud-1",
            dependencies=[dependency(f"{0xC0 + n:02x}" * 32, f"extra-{n}") for n in range(count)],
        ),
        pipeline,
    )
    for n in range(count):
        ingest(
            predicates.statement(
                subjects=[("fraud/1", FRAUD_1)],
                predicate_type=PREDICATE_TEST_RESULT,
                predicate={"result": "PASSED", "configuration": [{"name": f"suite-{n}"}]},
            ),
            pipeline,
        )


def test_the_lineage_is_drawn_both_ways_with_the_version_highlighted(
    client: Client, world: World, reader: User
) -> None:
    page = signed_in(client, reader).get(PAGE).content.decode()

    root = picture(page)
    nodes = {title(g): g for g in groups(root, "node")}
    assert "model_version: fraud v1" in nodes
    assert "highlight" in nodes["model_version: fraud v1"].get("class", "").split()
    assert [t for t, g in nodes.items() if "highlight" in g.get("class", "")] == [
        "model_version: fraud v1"
    ]
    # upstream, to the raw data…
    assert "dataset: transactions-clean" in nodes
    assert "run: etl-7" in nodes
    assert "dataset: s3://raw/transactions.csv" in nodes
    # …and downstream: the evaluation and the alias
    assert any(t.startswith("evaluation: ") for t in nodes)
    assert "alias: fraud@production" in nodes
    # another model's run fed by the same dataset is not this version's lineage
    assert "run: run-churn-1" not in nodes


def test_the_picture_is_a_captioned_figure_with_a_legend(
    client: Client, world: World, reader: User
) -> None:
    page = signed_in(client, reader).get(PAGE).content.decode()

    figure = re.search(r'<figure class="lineage-figure".*?</figure>', page, re.DOTALL)
    assert figure
    assert "<figcaption" in figure.group(0)
    assert "dashed red arrow" in figure.group(0)
    assert groups(picture(page), "legend")
    assert 'role="img"' in figure.group(0)


def test_an_unverified_edge_is_drawn_dashed_and_badged_in_the_list(
    client: Client, world: World, reader: User
) -> None:
    Attestation.objects.filter(pk=world.attestations["train-fraud"].pk).update(
        verification_status=VerificationStatus.FAILED
    )

    page = signed_in(client, reader).get(PAGE).content.decode()

    edges = {title(g): g for g in groups(picture(page), "edge")}
    unverified = edges["trained-on (not verified)"]
    assert "unverified" in unverified.get("class", "").split()
    assert unverified.find(f"{SVG}path").get("stroke-dasharray")  # type: ignore[union-attr]
    verified = edges["derived-from (verified)"]
    assert verified.find(f"{SVG}path").get("stroke-dasharray") is None  # type: ignore[union-attr]
    listed = re.search(r'<details class="lineage-list".*?</details>', page, re.DOTALL)
    assert listed
    assert "Failed re-verification" in listed.group(0)


def test_the_list_names_each_edge_with_its_attestation(
    client: Client, world: World, reader: User
) -> None:
    page = signed_in(client, reader).get(PAGE).content.decode()

    listed = re.search(r'<details class="lineage-list".*?</details>', page, re.DOTALL)
    assert listed
    rows = re.findall(r"<tr>.*?</tr>", listed.group(0), re.DOTALL)[1:]  # past the header
    edges = {
        world.attestations[name].envelope_digest
        for name in ("etl", "train-fraud", "eval-fraud", "observe-fraud")
    }
    assert all(any(f'title="sha256:{digest} (' in row for row in rows) for digest in edges)
    assert all("Verified" in row for row in rows)
    # read in the direction the data flowed: the raw data first
    assert "s3://raw/transactions.csv" in rows[0]


def test_an_alias_that_moved_on_is_listed_but_not_drawn(
    client: Client, world: World, reader: User
) -> None:
    observe("fraud", 1, aliases=[], digest=FRAUD_1)

    page = signed_in(client, reader).get(PAGE).content.decode()

    assert "alias: fraud@production" not in {title(g) for g in groups(picture(page), "node")}
    listed = re.search(r'<details class="lineage-list".*?</details>', page, re.DOTALL)
    assert listed
    assert "fraud@production" in listed.group(0)
    assert "(until " in listed.group(0)


def test_labels_are_escaped(client: Client, world: World, reader: User, pipeline: Any) -> None:
    ingest(
        provenance(
            [("fraud/1", FRAUD_1)],
            invocation="run-fraud-1",
            dependencies=[dependency("ee" * 32, "<script>alert(1)</script>")],
        ),
        pipeline,
    )

    page = signed_in(client, reader).get(PAGE).content.decode()

    assert "<script" not in page
    assert "&lt;script&gt;alert(1)" in page
    picture(page)  # still well-formed


def test_a_version_without_lineage_says_so(client: Client, world: World, reader: User) -> None:
    page = signed_in(client, reader).get("/models/fraud/versions/2/").content.decode()

    assert "<svg" not in page
    assert "No lineage proven yet." in page


def test_a_reader_of_one_model_sees_its_lineage_only(
    client: Client, world: World, fraud_reader: User
) -> None:
    signed_in(client, fraud_reader)

    page = client.get(PAGE).content.decode()

    assert "dataset: transactions-clean" in {title(g) for g in groups(picture(page), "node")}
    assert "churn" not in page
    assert client.get("/models/churn/versions/1/").status_code == 404


def test_an_outsider_sees_no_lineage(client: Client, world: World, outsider: User) -> None:
    response = signed_in(client, outsider).get(PAGE)

    assert response.status_code == 404
    assert "transactions" not in response.content.decode()
    assert SHARED not in response.content.decode()


@pytest.mark.parametrize("who", ["reader", "fraud_reader"])
def test_the_query_count_does_not_grow_with_the_graph(
    client: Client, world: World, pipeline: Any, request: pytest.FixtureRequest, who: str
) -> None:
    signed_in(client, request.getfixturevalue(who))
    with CaptureQueriesContext(connection) as small:
        assert client.get(PAGE).status_code == 200
    more_lineage(pipeline, 12)

    with CaptureQueriesContext(connection) as large:
        page = client.get(PAGE).content.decode()

    assert "extra-11" in page
    assert len(groups(picture(page), "node")) > 25
    assert len(large.captured_queries) == len(small.captured_queries)


def test_a_picture_too_wide_to_shrink_scrolls_sideways(
    client: Client, world: World, reader: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed_in(client, reader)
    assert 'class="lineage-scroll"' in client.get(PAGE).content.decode()

    monkeypatch.setattr(views, "LINEAGE_FIT_WIDTH", 100)

    page = client.get(PAGE).content.decode()
    assert 'class="lineage-scroll wide"' in page
    assert "scrolls sideways" in page
