"""The lineage picture: a layered, escaped, accessible, deterministic inline SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from provenance.lineage_picture import (
    MAX_NODES,
    PAD,
    UNVERIFIED_COLOUR,
    PictureEdge,
    PictureNode,
    lineage_svg,
)

SVG = "{http://www.w3.org/2000/svg}"

NODES = [
    PictureNode(1, "dataset", "transactions-2025"),
    PictureNode(2, "base_model", "sha256:ab12…"),
    PictureNode(3, "run", "run 4f2c"),
    PictureNode(4, "model_version", "fraud-detector v3"),
    PictureNode(5, "evaluation", "evaluation"),
    PictureNode(6, "alias", "fraud-detector@production"),
]
EDGES = [
    PictureEdge(1, 3, "trained-on", verified=True),
    PictureEdge(2, 3, "derived-from", verified=False),
    PictureEdge(3, 4, "produced", verified=True),
    PictureEdge(4, 5, "evaluated-by", verified=True),
    PictureEdge(4, 6, "promoted-to", verified=True),
]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (our own output, parsed to prove it is well-formed)


def nodes_by_label(root: ET.Element) -> dict[str, ET.Element | None]:
    """Each node's <rect>, by its whole label (from its ``<title>``, "kind: label")."""
    found = {}
    for group in root.iter(f"{SVG}g"):
        if "node" in group.get("class", "").split():
            label = (group[0].text or "").split(": ", 1)[1]
            found[label] = group.find(f"{SVG}rect")
    return found


def x_of(rect: ET.Element | None) -> float:
    assert rect is not None
    return float(rect.get("x", "nan"))


def y_of(rect: ET.Element | None) -> float:
    assert rect is not None
    return float(rect.get("y", "nan"))


def test_layers_run_left_to_right_from_the_sources() -> None:
    boxes = nodes_by_label(parse(lineage_svg(NODES, EDGES)))

    assert x_of(boxes["transactions-2025"]) == x_of(boxes["sha256:ab12…"]) == PAD
    assert (
        x_of(boxes["transactions-2025"])
        < x_of(boxes["run 4f2c"])
        < x_of(boxes["fraud-detector v3"])
        < x_of(boxes["evaluation"])
    )
    assert x_of(boxes["evaluation"]) == x_of(boxes["fraud-detector@production"])


def test_a_node_sits_right_of_its_furthest_ancestor() -> None:
    nodes = [PictureNode(i, "run", f"n{i}") for i in range(1, 5)]
    edges = [
        PictureEdge(1, 2, "produced", True),
        PictureEdge(2, 3, "produced", True),
        PictureEdge(1, 4, "produced", True),
        PictureEdge(3, 4, "produced", True),
    ]

    boxes = nodes_by_label(parse(lineage_svg(nodes, edges)))

    assert x_of(boxes["n4"]) > x_of(boxes["n3"]) > x_of(boxes["n2"]) > x_of(boxes["n1"])


def test_barycentre_ordering_uncrosses_edges() -> None:
    # Sources a (1) above b (2); by id alone c (3) would sit above d (4) and the edges cross.
    nodes = [PictureNode(i, "dataset", name) for i, name in enumerate("abcd", start=1)]
    edges = [PictureEdge(1, 4, "trained-on", True), PictureEdge(2, 3, "trained-on", True)]

    boxes = nodes_by_label(parse(lineage_svg(nodes, edges)))

    assert y_of(boxes["a"]) < y_of(boxes["b"])
    assert y_of(boxes["d"]) < y_of(boxes["c"])


def test_nodes_are_coloured_by_kind_with_class_names() -> None:
    root = parse(lineage_svg(NODES, EDGES))

    classes = {g.get("class") for g in root.iter(f"{SVG}g") if "node" in g.get("class", "")}

    assert {
        "node node-dataset",
        "node node-base-model",
        "node node-run",
        "node node-model-version",
        "node node-evaluation",
        "node node-alias",
    } <= classes
    legend = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "legend")
    assert [t.text for t in legend.iter(f"{SVG}text")][:2] == ["dataset", "base model"]


def test_edges_are_labelled_and_unverified_ones_dashed_red() -> None:
    root = parse(lineage_svg(NODES, EDGES))
    edges = [g for g in root.iter(f"{SVG}g") if g.get("class", "").startswith("edge ")]

    labels = sorted(g.findall(f"{SVG}text")[0].text or "" for g in edges)
    assert labels == ["derived-from", "evaluated-by", "produced", "promoted-to", "trained-on"]
    unverified = [g for g in edges if "unverified" in g.get("class", "").split()]
    assert len(unverified) == 1
    path = unverified[0].find(f"{SVG}path")
    assert path is not None
    assert path.get("stroke") == UNVERIFIED_COLOUR
    assert path.get("stroke-dasharray")
    title = unverified[0].find(f"{SVG}title")
    assert title is not None
    assert title.text == "derived-from (not verified)"
    verified_path = edges[0].find(f"{SVG}path")
    assert verified_path is not None
    assert verified_path.get("stroke-dasharray") is None


def test_the_picture_is_accessible() -> None:
    root = parse(lineage_svg(NODES, EDGES))

    assert root.get("role") == "img"
    assert root.get("aria-label") == "Lineage graph: 6 nodes, 5 edges, 1 not verified"
    assert root[0].tag == f"{SVG}title"
    for group in root.iter(f"{SVG}g"):
        if group.get("class", "").startswith(("node", "edge")):
            assert group[0].tag == f"{SVG}title"
    node_titles = {g[0].text for g in root.iter(f"{SVG}g") if g.get("class", "").startswith("node")}
    assert "model_version: fraud-detector v3" in node_titles


def test_labels_and_kinds_from_users_are_escaped() -> None:
    hostile = '<script>alert("x")</script> & co'
    nodes = [
        PictureNode(1, "dataset", hostile),
        PictureNode(2, 'run" onmouseover="alert(1)', "ok"),
    ]
    edges = [PictureEdge(1, 2, "<b>trained</b>", True)]

    svg = lineage_svg(nodes, edges)

    assert "<script" not in svg
    assert "<b>" not in svg
    assert 'onmouseover="' not in svg
    root = parse(svg)
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert f"dataset: {hostile}" in titles
    assert "<b>trained</b> (verified)" in titles
    kinds = [g.get("class") for g in root.iter(f"{SVG}g") if g.get("class", "").startswith("node")]
    assert "node node-run-onmouseover-alert-1" in kinds


def test_long_labels_are_shortened_in_the_box_but_whole_in_the_title() -> None:
    label = "a-very-long-dataset-name-that-goes-on-and-on"
    root = parse(lineage_svg([PictureNode(1, "dataset", label)], []))

    group = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "node node-dataset")
    drawn = group.findall(f"{SVG}text")[0].text or ""
    assert drawn.endswith("…")
    assert len(drawn) <= 24
    assert group[0].text == f"dataset: {label}"


def test_highlighted_nodes_are_outlined() -> None:
    root = parse(lineage_svg(NODES, EDGES, highlight={4}))

    highlighted = [g for g in root.iter(f"{SVG}g") if "highlight" in g.get("class", "").split()]
    assert len(highlighted) == 1
    rect = highlighted[0].find(f"{SVG}rect")
    assert rect is not None
    assert rect.get("stroke-width") == "3"


def test_same_graph_gives_the_same_bytes_whatever_the_input_order() -> None:
    first = lineage_svg(NODES, EDGES, highlight={4})
    second = lineage_svg(list(reversed(NODES)), list(reversed(EDGES)), highlight={4})

    assert first == second


def test_duplicate_edges_merge_and_verify_if_any_attestation_verifies() -> None:
    edges = [*EDGES, PictureEdge(2, 3, "derived-from", verified=True)]

    root = parse(lineage_svg(NODES, edges))

    assert root.get("aria-label") == "Lineage graph: 6 nodes, 5 edges"


def test_edges_to_unknown_nodes_and_self_loops_are_dropped() -> None:
    edges = [*EDGES, PictureEdge(4, 4, "derived-from", True), PictureEdge(4, 99, "produced", True)]

    root = parse(lineage_svg(NODES, edges))

    assert root.get("aria-label") == "Lineage graph: 6 nodes, 5 edges, 1 not verified"


def test_a_cycle_is_drawn_without_hanging() -> None:
    nodes = [PictureNode(1, "run", "one"), PictureNode(2, "run", "two")]
    edges = [PictureEdge(1, 2, "produced", True), PictureEdge(2, 1, "produced", True)]

    boxes = nodes_by_label(parse(lineage_svg(nodes, edges)))

    assert x_of(boxes["one"]) < x_of(boxes["two"])


def test_big_graphs_are_capped_with_a_note() -> None:
    nodes = [PictureNode(i, "dataset", f"d{i}") for i in range(1, MAX_NODES + 31)]
    nodes.append(PictureNode(1000, "run", "the run"))
    edges = [PictureEdge(i, 1000, "trained-on", True) for i in range(1, 6)]

    root = parse(lineage_svg(nodes, edges))

    drawn = [g for g in root.iter(f"{SVG}g") if g.get("class", "").startswith("node ")]
    assert len(drawn) == MAX_NODES
    # The first layer (datasets) fills the cap; the run, one layer further, is left out.
    assert "the run" not in {g.findall(f"{SVG}text")[0].text for g in drawn}
    note = next(t for t in root.iter(f"{SVG}text") if t.get("class") == "more")
    assert note.text == "…and 31 more nodes not drawn"
    assert "31 more nodes not drawn" in (root.get("aria-label") or "")


def test_an_empty_graph_says_so() -> None:
    root = parse(lineage_svg([], []))

    assert "No lineage recorded." in [t.text for t in root.iter(f"{SVG}text")]
