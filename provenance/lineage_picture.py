"""The lineage graph as a picture: an inline SVG, drawn by hand, for pages and reports.

No JavaScript and no external assets, so the same string works on a web page, in the evidence
report's HTML and in its PDF (WeasyPrint draws SVG). The layout is layered left to right, as
the edges point downstream: every node sits one column right of its furthest ancestor (longest
path from the sources), and a few barycentre sweeps order each column to cut crossings.

Labels come from users (dataset names, model names), so every text and attribute is escaped,
and node and edge kinds reach class names only through ``_token``. The output is a pure
function of the input: same nodes and edges, same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from html import escape

MAX_NODES = 200
LABEL_CHARS = 24

BOX_W = 172
BOX_H = 36
GAP_X = 96
GAP_Y = 18
PAD = 16
LEGEND_H = 28

# Kinds in the order the legend lists them, with (fill, stroke) colours; the class name
# ``node-<kind>`` lets a page style or explain them.
KIND_COLOURS: dict[str, tuple[str, str]] = {
    "dataset": ("#dbeafe", "#1e40af"),
    "base_model": ("#ede9fe", "#5b21b6"),
    "run": ("#fef3c7", "#92400e"),
    "model_version": ("#dcfce7", "#166534"),
    "evaluation": ("#fce7f3", "#9d174d"),
    "alias": ("#e0f2fe", "#075985"),
}
OTHER_COLOURS = ("#f3f4f6", "#374151")
EDGE_COLOUR = "#4b5563"
UNVERIFIED_COLOUR = "#dc2626"
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


@dataclass(frozen=True)
class PictureNode:
    """A node to draw; mirrors ``LineageNodeFacts`` (kind: dataset, run, model_version, …)."""

    id: int
    kind: str
    label: str


@dataclass(frozen=True)
class PictureEdge:
    """An edge pointing downstream; ``verified`` when an attestation proving it verifies."""

    source: int
    target: int
    kind: str
    verified: bool


@dataclass(frozen=True)
class _Placed:
    node: PictureNode
    x: float
    y: float


def lineage_svg(
    nodes: Iterable[PictureNode],
    edges: Iterable[PictureEdge],
    *,
    highlight: Set[int] = frozenset(),
) -> str:
    """Draw the graph as an ``<svg>`` element; at most ``MAX_NODES`` nodes, by layer."""
    by_id = {node.id: node for node in sorted(nodes, key=lambda node: node.id)}
    edge_list = _clean_edges(edges, by_id.keys())
    layer_of = _layers(sorted(by_id), edge_list)
    drawn = sorted(by_id, key=lambda node_id: (layer_of[node_id], node_id))[:MAX_NODES]
    hidden = len(by_id) - len(drawn)
    kept = set(drawn)
    edge_list = [edge for edge in edge_list if edge.source in kept and edge.target in kept]
    columns = _order_columns(drawn, edge_list, layer_of)
    placed = _place(columns, by_id)
    return _svg(placed, edge_list, highlight=highlight, hidden=hidden)


def _clean_edges(edges: Iterable[PictureEdge], known: Iterable[int]) -> list[PictureEdge]:
    """Edges between known nodes, no self-loops, one per (source, target, kind); an edge is
    verified when any attestation for it verifies."""
    known_ids = set(known)
    merged: dict[tuple[int, int, str], bool] = {}
    for edge in edges:
        if edge.source == edge.target or not {edge.source, edge.target} <= known_ids:
            continue
        key = (edge.source, edge.target, edge.kind)
        merged[key] = merged.get(key, False) or edge.verified
    return [
        PictureEdge(source, target, kind, verified)
        for (source, target, kind), verified in sorted(merged.items())
    ]


def _layers(node_ids: Sequence[int], edges: Sequence[PictureEdge]) -> dict[int, int]:
    """Longest-path layer of each node. A cycle (which lineage should never have) is broken
    at its smallest id, and the edges closing it are ignored for layering."""
    order = _topological_order(node_ids, edges)
    position = {node_id: index for index, node_id in enumerate(order)}
    predecessors: dict[int, list[int]] = {node_id: [] for node_id in node_ids}
    for edge in edges:
        if position[edge.source] < position[edge.target]:
            predecessors[edge.target].append(edge.source)
    layer_of: dict[int, int] = {}
    for node_id in order:
        layer_of[node_id] = max((layer_of[p] + 1 for p in predecessors[node_id]), default=0)
    return layer_of


def _topological_order(node_ids: Sequence[int], edges: Sequence[PictureEdge]) -> list[int]:
    """Kahn's algorithm, smallest id first; when only cycles remain, the smallest id left goes."""
    successors: dict[int, list[int]] = {node_id: [] for node_id in node_ids}
    indegree = dict.fromkeys(node_ids, 0)
    for edge in edges:
        successors[edge.source].append(edge.target)
        indegree[edge.target] += 1
    ready = [node_id for node_id in node_ids if indegree[node_id] == 0]
    heapify(ready)
    order: list[int] = []
    done: set[int] = set()
    while len(order) < len(node_ids):
        if not ready:
            heappush(ready, min(node_id for node_id in node_ids if node_id not in done))
        node_id = heappop(ready)
        if node_id in done:
            continue
        done.add(node_id)
        order.append(node_id)
        for successor in successors[node_id]:
            indegree[successor] -= 1
            if indegree[successor] == 0 and successor not in done:
                heappush(ready, successor)
    return order


def _order_columns(
    drawn: Sequence[int], edges: Sequence[PictureEdge], layer_of: dict[int, int]
) -> list[list[int]]:
    """Columns of node ids, each ordered by barycentre sweeps (down, up, down)."""
    columns: list[list[int]] = [
        [] for _ in range(max((layer_of[n] for n in drawn), default=-1) + 1)
    ]
    for node_id in drawn:
        columns[layer_of[node_id]].append(node_id)
    upstream: dict[int, list[int]] = {node_id: [] for node_id in drawn}
    downstream: dict[int, list[int]] = {node_id: [] for node_id in drawn}
    for edge in edges:
        upstream[edge.target].append(edge.source)
        downstream[edge.source].append(edge.target)
    for neighbours, forward in ((upstream, True), (downstream, False), (upstream, True)):
        _sweep(columns, neighbours, forward=forward)
    return columns


def _sweep(columns: list[list[int]], neighbours: dict[int, list[int]], *, forward: bool) -> None:
    indices = range(1, len(columns)) if forward else range(len(columns) - 2, -1, -1)
    for index in indices:
        row_of = {node_id: row for column in columns for row, node_id in enumerate(column)}

        def barycentre(node_id: int, row_of: dict[int, int] = row_of) -> tuple[float, int]:
            rows = [row_of[other] for other in neighbours[node_id]]
            own = row_of[node_id]
            return (sum(rows) / len(rows) if rows else float(own), own)

        columns[index].sort(key=barycentre)


def _place(columns: Sequence[Sequence[int]], by_id: dict[int, PictureNode]) -> list[_Placed]:
    """Coordinates of each box; shorter columns are centred vertically."""
    tallest = max((len(column) for column in columns), default=0)
    placed = []
    for layer, column in enumerate(columns):
        offset = (tallest - len(column)) * (BOX_H + GAP_Y) / 2
        for row, node_id in enumerate(column):
            x = PAD + layer * (BOX_W + GAP_X)
            y = PAD + offset + row * (BOX_H + GAP_Y)
            placed.append(_Placed(by_id[node_id], x, y))
    return placed


def _svg(
    placed: Sequence[_Placed], edges: Sequence[PictureEdge], *, highlight: Set[int], hidden: int
) -> str:
    rows_height = max((p.y + BOX_H for p in placed), default=PAD) + GAP_Y
    kinds = _kinds_present(placed)
    width = max(max((p.x + BOX_W for p in placed), default=0) + PAD, _legend_width(kinds))
    height = rows_height + LEGEND_H + (LEGEND_H if hidden else 0)
    unverified = sum(1 for edge in edges if not edge.verified)
    label = f"Lineage graph: {len(placed)} nodes, {len(edges)} edges"
    if unverified:
        label += f", {unverified} not verified"
    if hidden:
        label += f"; {hidden} more nodes not drawn"
    at = {p.node.id: p for p in placed}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" role="img" '
        f'width="{_n(width)}" height="{_n(height)}" viewBox="0 0 {_n(width)} {_n(height)}" '
        f'aria-label="{escape(label)}" font-family="{FONT}">',
        f"<title>{escape(label)}</title>",
    ]
    if not placed:
        parts.append(_text(PAD, PAD + 14, "No lineage recorded.", size=12))
    parts.extend(_edge(edge, at[edge.source], at[edge.target]) for edge in edges)
    parts.extend(_node(p, highlighted=p.node.id in highlight) for p in placed)
    parts.append(_legend(kinds, rows_height))
    if hidden:
        note = f"…and {hidden} more node{'s' if hidden != 1 else ''} not drawn"
        parts.append(_text(PAD, rows_height + LEGEND_H + 16, note, size=11, css="more"))
    parts.append("</svg>")
    return "\n".join(parts)


def _node(placed: _Placed, *, highlighted: bool) -> str:
    node = placed.node
    fill, stroke = KIND_COLOURS.get(node.kind, OTHER_COLOURS)
    css = f"node node-{_token(node.kind)}" + (" highlight" if highlighted else "")
    return "".join(
        (
            f'<g class="{css}"><title>{escape(f"{node.kind}: {node.label}")}</title>',
            f'<rect x="{_n(placed.x)}" y="{_n(placed.y)}" width="{BOX_W}" height="{BOX_H}" '
            f'rx="5" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{3 if highlighted else 1.2}"/>',
            _text(placed.x + 8, placed.y + 15, _shorten(node.label), size=11, weight="bold"),
            _text(placed.x + 8, placed.y + 29, node.kind.replace("_", " "), size=9, fill=stroke),
            "</g>",
        )
    )


def _edge(edge: PictureEdge, source: _Placed, target: _Placed) -> str:
    colour = EDGE_COLOUR if edge.verified else UNVERIFIED_COLOUR
    if target.x > source.x:
        x1, y1 = source.x + BOX_W, source.y + BOX_H / 2
        x2, y2 = target.x - 7, target.y + BOX_H / 2
        bend = (x2 - x1) / 2
        path = f"M{_n(x1)} {_n(y1)} C{_n(x1 + bend)} {_n(y1)} {_n(x2 - bend)} {_n(y2)} "
        path += f"{_n(x2)} {_n(y2)}"
        head = f"{_n(x2)},{_n(y2 - 4)} {_n(x2 + 7)},{_n(y2)} {_n(x2)},{_n(y2 + 4)}"
    else:  # same column or pointing back (a broken cycle): a plain line, a plain arrow
        x1, y1 = source.x + BOX_W / 2, source.y + BOX_H
        x2, y2 = target.x + BOX_W / 2, target.y - 7
        if target.y < source.y:
            y1, y2 = source.y, target.y + BOX_H + 7
        path = f"M{_n(x1)} {_n(y1)} L{_n(x2)} {_n(y2)}"
        tip = y2 + (7 if y2 >= y1 else -7)
        head = f"{_n(x2 - 4)},{_n(y2)} {_n(x2)},{_n(tip)} {_n(x2 + 4)},{_n(y2)}"
    dash = "" if edge.verified else ' stroke-dasharray="6 4"'
    state = "verified" if edge.verified else "not verified"
    mid_x, mid_y = (x1 + x2) / 2, (y1 + y2) / 2
    label_width = len(edge.kind) * 5.4 + 6
    return "".join(
        (
            f'<g class="edge edge-{_token(edge.kind)}{"" if edge.verified else " unverified"}">',
            f"<title>{escape(f'{edge.kind} ({state})')}</title>",
            f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.4"{dash}/>',
            f'<polygon points="{head}" fill="{colour}"/>',
            f'<rect x="{_n(mid_x - label_width / 2)}" y="{_n(mid_y - 7)}" '
            f'width="{_n(label_width)}" height="12" fill="#ffffff" fill-opacity="0.85"/>',
            _text(mid_x, mid_y + 2.5, edge.kind, size=9, fill=colour, anchor="middle"),
            "</g>",
        )
    )


def _kinds_present(placed: Sequence[_Placed]) -> list[str]:
    present = {p.node.kind for p in placed}
    known = [kind for kind in KIND_COLOURS if kind in present]
    return known + sorted(present - set(KIND_COLOURS))


def _legend_width(kinds: Sequence[str]) -> float:
    return PAD * 2 + sum(_legend_item_width(kind) for kind in kinds) + 110


def _legend_item_width(kind: str) -> float:
    return 26 + len(kind) * 6.2


def _legend(kinds: Sequence[str], top: float) -> str:
    parts = ['<g class="legend">']
    x = float(PAD)
    for kind in kinds:
        fill, stroke = KIND_COLOURS.get(kind, OTHER_COLOURS)
        parts.append(
            f'<rect class="node-{_token(kind)}" x="{_n(x)}" y="{_n(top)}" width="14" '
            f'height="12" rx="2" fill="{fill}" stroke="{stroke}"/>'
        )
        parts.append(_text(x + 18, top + 10, kind.replace("_", " "), size=10))
        x += _legend_item_width(kind)
    parts.append(
        f'<path class="unverified" d="M{_n(x)} {_n(top + 6)} L{_n(x + 30)} {_n(top + 6)}" '
        f'stroke="{UNVERIFIED_COLOUR}" stroke-width="1.4" stroke-dasharray="6 4"/>'
    )
    parts.append(_text(x + 36, top + 10, "not verified", size=10, fill=UNVERIFIED_COLOUR))
    parts.append("</g>")
    return "".join(parts)


def _text(
    x: float,
    y: float,
    content: str,
    *,
    size: float,
    fill: str = "#111827",
    weight: str = "normal",
    anchor: str = "start",
    css: str = "",
) -> str:
    css_attribute = f' class="{css}"' if css else ""
    return (
        f'<text{css_attribute} x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" fill="{fill}" '
        f'font-weight="{weight}" text-anchor="{anchor}">{escape(content)}</text>'
    )


def _shorten(label: str) -> str:
    flat = " ".join(label.split())
    return flat if len(flat) <= LABEL_CHARS else flat[: LABEL_CHARS - 1] + "…"


_NOT_TOKEN = re.compile(r"[^a-z0-9-]+")


def _token(kind: str) -> str:
    """A class-name-safe form of a kind: ``model_version`` → ``model-version``."""
    return _NOT_TOKEN.sub("-", kind.lower()).strip("-") or "other"


def _n(value: float) -> str:
    """A coordinate, at most one decimal, the same text for the same number."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
