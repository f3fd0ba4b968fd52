"""Lineage queries, answered in the database: one recursive CTE per walk, never a query per hop.

``WITH RECURSIVE`` is standard SQL that PostgreSQL and SQLite both run, so the same statement
serves both. The walk collects nodes (with the depth each was first reached at); the edges are
then those joining two reached nodes, loaded with the attestation that proves each.

Two shapes of answer. ``lineage_graph`` and ``lineage_path`` return model instances, for the
pages and services that follow relations from them. The API reads the same walks as plain rows
(``walk_rows``: ``EdgeRow`` and ``NodeRow`` tuples): one statement per walk returns every edge
crossed with the attestation that proves it, and every node reached, and nothing is built but
the tuples — a walk of a few hundred edges would otherwise spend most of its time making model
instances.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from psycopg.abc import Buffer
from psycopg.types.datetime import TimestamptzLoader

from config.errors import InvalidInput, NotFound
from provenance.models import (
    Artifact,
    Attestation,
    EdgeRelation,
    LineageEdge,
    LineageNode,
    NodeKind,
    TrustedSigner,
    VerificationStatus,
)

Direction = Literal["upstream", "downstream", "both"]
Walk = Literal["upstream", "downstream"]
WALKS: tuple[Walk, Walk] = ("upstream", "downstream")
MAX_DEPTH = 50
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class LineageGraph:
    """Nodes reached (with their distance from the start) and the edges between them."""

    start: list[LineageNode]
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    depth_of: dict[int, int] = field(default_factory=dict)


class NodeRow(NamedTuple):
    """A lineage node as the API shows it, read as a row (no model instance)."""

    id: int
    kind: str
    key: str
    label: str
    artifact_digest: str | None  # hex, when the registry holds an artifact for the node

    @property
    def ref(self) -> str:
        """``<kind>:<key>``, as ``str()`` of the node gives it."""
        return f"{self.kind}:{self.key}"

    @property
    def digest(self) -> str | None:
        """``sha256:<hex>`` of the artifact held, or the key when the key is a digest."""
        if self.artifact_digest is not None:
            return f"sha256:{self.artifact_digest}"
        return self.key if self.key.startswith("sha256:") else None


class EdgeRow(NamedTuple):
    """A lineage edge with what the API shows of the attestation proving it, as a row.

    ``depth``: how many edges from the start the walk crossed it at (1 for the first step).
    ``signer``: the trusted signer's name, None for what the registry signed itself.
    """

    id: int
    upstream_id: int
    downstream_id: int
    relation: str
    attestation_id: int
    created_at: datetime
    ended_at: datetime | None
    depth: int
    envelope_digest: str
    predicate_type: str
    signer: str | None
    verification_status: str


class NodeKey(NamedTuple):
    """A start node named by kind and key, found by the walk's own statement (no lookup first).
    For callers who may see the whole graph: the walk runs before anyone learns whether the
    node exists."""

    kind: str
    key: str


# Where a walk starts: node ids, or a node named by kind and key.
Start = Sequence[int] | NodeKey


@dataclass(frozen=True)
class GraphRows:
    """``LineageGraph`` as rows: the start, the nodes reached (start included, nearest first),
    the edges between them (by id), each node's distance, and every node the walks read (so an
    edge's endpoints can be named)."""

    start: list[NodeRow]
    nodes: list[NodeRow]
    edges: list[EdgeRow]
    depth_of: dict[int, int] = field(default_factory=dict)
    known: dict[int, NodeRow] = field(default_factory=dict)


@dataclass(frozen=True)
class Impact:
    """What a node (a poisoned dataset, say) fed: versions downstream and aliases on them now."""

    start: list[LineageNode]
    model_versions: list[LineageNode]
    aliases: list[LineageEdge]  # promoted-to edges still in force, from an affected version


def lineage_node_resolve(ref: str) -> list[LineageNode]:
    """Nodes named by ``<kind>:<key>`` (``model_version:fraud/3``, ``run:<id>``…) or a digest.

    A digest (``sha256:<hex>``) names every node holding that artifact (one model's files may be
    registered as several versions) or keyed by it (datasets, base models).
    """
    if _SHA256.fullmatch(ref):
        nodes = list(_holding(ref))
    else:
        kind, key = _kind_and_key(ref)
        nodes = list(LineageNode.objects.filter(kind=kind, key=key))
    if not nodes:
        raise NotFound(f"no lineage node {ref!r}", code="lineage_node_not_found")
    return nodes


def lineage_node_ids(ref: str) -> list[int]:
    """``lineage_node_resolve``, for the ids only (in the same order): what the walks start
    from. ``<kind>:<key>`` is one lookup in the (kind, key) index, without the ORM."""
    if _SHA256.fullmatch(ref):
        ids = list(_holding(ref).values_list("pk", flat=True))
    else:
        kind, key = _kind_and_key(ref)
        table = connection.ops.quote_name(LineageNode._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {table} WHERE kind = %s AND key = %s", [kind, key])  # noqa: S608
            ids = [int(row[0]) for row in cursor.fetchall()]
    if not ids:
        raise NotFound(f"no lineage node {ref!r}", code="lineage_node_not_found")
    return ids


def _holding(ref: str) -> QuerySet[LineageNode]:
    """The nodes holding the artifact of digest ``ref`` (``sha256:<hex>``) or keyed by it."""
    return LineageNode.objects.filter(
        artifact__digest=ref.removeprefix("sha256:")
    ) | LineageNode.objects.filter(key=ref)


def _kind_and_key(ref: str) -> tuple[str, str]:
    kind, _, key = ref.partition(":")
    if kind not in NodeKind.values or not key:
        raise InvalidInput(
            f"{ref!r} is not a node: use <kind>:<key> with kind one of "
            f"{', '.join(NodeKind.values)}, or sha256:<hex>",
            code="lineage_bad_node",
        )
    return kind, key


def node_key(ref: str) -> NodeKey | None:
    """The kind and key ``ref`` names, for a walk to look up itself; None for a digest
    (``sha256:<hex>`` names the nodes holding it: ``lineage_node_ids`` finds those). Raises
    InvalidInput for a ref that names no kind of node."""
    if _SHA256.fullmatch(ref):
        return None
    return NodeKey(*_kind_and_key(ref))


def lineage_node_get(*, kind: str, key: str) -> LineageNode | None:
    return LineageNode.objects.filter(kind=kind, key=key).select_related("artifact").first()


def lineage_graph(
    *, start: Sequence[LineageNode], direction: Direction = "both", depth: int = 10
) -> LineageGraph:
    """Everything upstream and/or downstream of ``start``, up to ``depth`` edges away."""
    _check_depth(depth)
    ids = [node.pk for node in start]
    reached: dict[int, int] = dict.fromkeys(ids, 0)
    edge_ids: set[int] = set()
    for walk in ("upstream", "downstream"):
        if direction in (walk, "both"):
            depths, edges = _walk(ids, walk, depth)
            for pk, distance in depths.items():
                reached[pk] = min(distance, reached.get(pk, distance))
            edge_ids |= edges
    return _graph(start, reached, edge_ids)


def lineage_path(
    *, source: Sequence[LineageNode], target: Sequence[LineageNode], depth: int = MAX_DEPTH
) -> LineageGraph:
    """Every edge on a path from ``source`` down to ``target`` (or from target down to source)."""
    _check_depth(depth)
    for top, bottom in ((source, target), (target, source)):
        down, down_edges = _walk([n.pk for n in top], "downstream", depth)
        bottom_ids = {n.pk for n in bottom}
        if not bottom_ids & set(down):
            continue
        up, up_edges = _walk(list(bottom_ids), "upstream", depth)
        down.update({n.pk: 0 for n in top})
        up.update(dict.fromkeys(bottom_ids, 0))
        on_path = {pk for pk in down if pk in up}
        reached = {pk: down[pk] for pk in on_path}
        edges = LineageEdge.objects.filter(
            pk__in=down_edges & up_edges,
            upstream__in=on_path,
            downstream__in=on_path,
        ).values_list("pk", flat=True)
        return _graph(list(source), reached, set(edges))
    return LineageGraph(start=list(source), nodes=[], edges=[])


def lineage_impact(*, start: Sequence[LineageNode], depth: int = MAX_DEPTH) -> Impact:
    """Every model version downstream of ``start``, and every alias pointing at one now."""
    _check_depth(depth)
    reached, _ = _walk([node.pk for node in start], "downstream", depth)
    affected = LineageNode.objects.filter(
        pk__in=list(reached) + [n.pk for n in start], kind=NodeKind.MODEL_VERSION
    ).order_by("key")
    aliases = (
        LineageEdge.objects.filter(
            upstream__in=affected,
            relation=EdgeRelation.PROMOTED_TO,
            ended_at__isnull=True,
            downstream__kind=NodeKind.ALIAS,
        )
        .select_related("upstream", "downstream", "attestation")
        .defer("attestation__envelope", "attestation__statement")
        .order_by("downstream__key", "pk")
    )
    # One per alias: the first edge says since when it has pointed at the version (each
    # observation re-proves it with an edge of its own).
    first: dict[int, LineageEdge] = {}
    for edge in aliases:
        first.setdefault(edge.downstream_id, edge)
    return Impact(start=list(start), model_versions=list(affected), aliases=list(first.values()))


def _check_depth(depth: int) -> None:
    if not 1 <= depth <= MAX_DEPTH:
        raise InvalidInput(
            f"depth must be between 1 and {MAX_DEPTH}, got {depth}", code="lineage_bad_depth"
        )


def _walk(
    start: Sequence[int], direction: Literal["upstream", "downstream"], depth: int
) -> tuple[dict[int, int], set[int]]:
    """(node id → depth first reached, ids of the edges walked) — one recursive query."""
    if not start:
        return {}, set()
    near, far = (
        ("downstream_id", "upstream_id")
        if direction == "upstream"
        else ("upstream_id", "downstream_id")
    )
    table = connection.ops.quote_name(LineageEdge._meta.db_table)
    placeholders = ", ".join(["%s"] * len(start))
    # UNION (not UNION ALL) drops repeats of (edge, depth), which bounds the walk on cycles.
    sql = f"""
        WITH RECURSIVE walk(edge_id, node_id, depth) AS (
            SELECT e.id, e.{far}, 1 FROM {table} e WHERE e.{near} IN ({placeholders})
          UNION
            SELECT e.id, e.{far}, w.depth + 1
            FROM walk w JOIN {table} e ON e.{near} = w.node_id
            WHERE w.depth < %s
        )
        SELECT edge_id, node_id, MIN(depth) FROM walk GROUP BY edge_id, node_id
    """  # noqa: S608  (identifiers come from the model, values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*start, depth])
        rows = cursor.fetchall()
    reached: dict[int, int] = {}
    for _edge, node, distance in rows:
        reached[node] = min(distance, reached.get(node, distance))
    return reached, {edge for edge, _, _ in rows}


# One statement per walk: the recursive walk carries the edge's own columns (no second visit of
# the edge table); then come the edges crossed, with their attestations, and in the same answer
# the nodes reached and the start nodes (``upstream_id`` NULL marks a node row; a start node the
# walk reaches again comes twice), ordered by key so that callers can list nodes in the
# database's order. Each node branch looks its ids up by primary key (an ``IN`` over a union of
# the two would have the planner scan the whole node table). Columns follow EdgeRow.
_WALK_ROWS = """
    WITH RECURSIVE walk(
        id, upstream_id, downstream_id, relation, attestation_id, created_at, ended_at, depth
    ) AS (
        SELECT e.id, e.upstream_id, e.downstream_id, e.relation, e.attestation_id,
               e.created_at, e.ended_at, 1
        FROM {edge} e WHERE e.{near} IN ({start})
      UNION
        SELECT e.id, e.upstream_id, e.downstream_id, e.relation, e.attestation_id,
               e.created_at, e.ended_at, w.depth + 1
        FROM walk w JOIN {edge} e ON e.{near} = w.{far}
        WHERE w.depth < %s
    )
    SELECT w.id, w.upstream_id, w.downstream_id, w.relation, w.attestation_id,
           w.created_at, w.ended_at, w.depth,
           a.envelope_digest, a.predicate_type, s.name, a.verification_status
    FROM walk w
    JOIN {attestation} a ON a.id = w.attestation_id
    LEFT JOIN {signer} s ON s.id = a.signer_id
  UNION ALL
    SELECT n.id, NULL, NULL, n.kind, NULL, NULL, NULL, NULL, n.key, n.label, f.digest, NULL
    FROM {node} n LEFT JOIN {artifact} f ON f.id = n.artifact_id
    WHERE n.id IN (SELECT w.{far} FROM walk w)
  UNION ALL
    SELECT n.id, NULL, NULL, n.kind, 1, NULL, NULL, NULL, n.key, n.label, f.digest, NULL
    FROM {node} n LEFT JOIN {artifact} f ON f.id = n.artifact_id
    WHERE n.id IN ({start})
    ORDER BY 9
"""  # identifiers come from the models, values are parameters
# A walk from a node named by kind and key finds it in the same statement (the (kind, key)
# index); a start node's row is told from a reached node's by the 1 in its fifth column.
_NAMED_START = "SELECT s.id FROM {node} s WHERE s.kind = %s AND s.key = %s"


def walk_rows(
    start: Sequence[int], direction: Walk, depth: int
) -> tuple[list[EdgeRow], dict[int, NodeRow]]:
    """The edges a walk crosses (one row per depth it crosses each at) and the nodes it
    reaches, start included (by id, in the database's order of their keys): one query."""
    _, edges, nodes = walk_from(start, direction, depth)
    return edges, nodes


def walk_from(
    start: Start, direction: Walk, depth: int
) -> tuple[list[int], list[EdgeRow], dict[int, NodeRow]]:
    """``walk_rows`` from ids or from a node named by kind and key, with the ids of the start
    nodes found (none: no such node): one query either way."""
    if not isinstance(start, NodeKey) and not start:
        return [], [], {}
    near, far = (
        ("downstream_id", "upstream_id")
        if direction == "upstream"
        else ("upstream_id", "downstream_id")
    )
    quote = connection.ops.quote_name
    sql = _WALK_ROWS.format(
        edge=quote(LineageEdge._meta.db_table),
        node=quote(LineageNode._meta.db_table),
        attestation=quote(Attestation._meta.db_table),
        signer=quote(TrustedSigner._meta.db_table),
        artifact=quote(Artifact._meta.db_table),
        near=near,
        far=far,
        start=(
            _NAMED_START.format(node=quote(LineageNode._meta.db_table))
            if isinstance(start, NodeKey)
            else ", ".join(["%s"] * len(start))
        ),
    )
    with connection.cursor() as cursor:
        _read_timestamps_fast(cursor)
        cursor.execute(sql, [*start, depth, *start])
        rows = cursor.fetchall()
    edges: list[EdgeRow] = []
    nodes: dict[int, NodeRow] = {}
    found: list[int] = []
    aware = connection.vendor == "postgresql"
    for row in rows:
        if row[1] is None:
            nodes[row[0]] = NodeRow(row[0], row[3], row[8], row[9], row[10])
            if row[4] is not None and row[0] not in found:
                found.append(row[0])
        elif aware:
            edges.append(EdgeRow._make(row))
        else:
            edges.append(EdgeRow._make((*row[:5], _aware(row[5]), _aware(row[6]), *row[7:])))
    ids = found if isinstance(start, NodeKey) else list(start)
    return ids, edges, nodes


def _aware(value: Any) -> datetime | None:
    """An aware UTC datetime, from what SQLite gives for one: a naive datetime in UTC, or the
    text of one (a column the CTE passed on loses its declared type)."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(str(value))
    if parsed is None:
        raise ValueError(f"not a timestamp: {value!r}")
    if timezone.is_naive(parsed):
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _read_timestamps_fast(cursor: CursorWrapper) -> None:
    """Have ``cursor`` (PostgreSQL's) read timestamps with ``_TimestamptzLoader``: a walk has
    two per edge, and Django's loader (psycopg's in Python) takes most of the time spent
    turning the rows into tuples."""
    if connection.vendor == "postgresql":
        cursor.cursor.adapters.register_loader("timestamptz", _TimestamptzLoader)


class _TimestamptzLoader(TimestamptzLoader):
    """``timestamptz`` read by Python's own (C) ISO 8601 parser, as an aware UTC datetime (what
    Django's loader gives); what that parser cannot read (a ``DateStyle`` other than ISO) goes
    to psycopg's, which refuses what no datetime holds (``infinity``, BC) as Django's does."""

    def load(self, data: Buffer) -> datetime:
        try:
            value = datetime.fromisoformat(bytes(data).decode())
        except ValueError:
            value = super().load(data)
        return value if value.tzinfo is UTC else value.astimezone(UTC)


def far_depths(edges: Iterable[EdgeRow], direction: Walk, into: dict[int, int]) -> dict[int, int]:
    """Each node's distance (the least depth an edge reached it at), merged into ``into``."""
    upstream = direction == "upstream"
    for edge in edges:
        node = edge.upstream_id if upstream else edge.downstream_id
        known = into.get(node)
        if known is None or edge.depth < known:
            into[node] = edge.depth
    return into


def unique_edges(edges: Iterable[EdgeRow]) -> dict[int, EdgeRow]:
    """Each edge once (a walk returns an edge once per depth it crossed it at), by id."""
    unique: dict[int, EdgeRow] = {}
    for edge in edges:
        unique.setdefault(edge.id, edge)
    return dict(sorted(unique.items()))


def graph_rows(
    start: Sequence[int],
    nodes: dict[int, NodeRow],
    reached: dict[int, int],
    edges: Iterable[EdgeRow],
) -> GraphRows:
    """The answer for ``reached`` nodes (nearest first, then by kind and key) and ``edges``."""
    return GraphRows(
        start=[nodes[pk] for pk in start if pk in nodes],
        nodes=sorted(
            (nodes[pk] for pk in reached if pk in nodes),
            key=lambda node: (reached[node.id], node.kind, node.key),
        ),
        edges=sorted(edges, key=lambda edge: edge.id),
        depth_of=reached,
        known=nodes,
    )


def lineage_rows(*, start: Start, direction: Direction = "both", depth: int = 10) -> GraphRows:
    """``lineage_graph`` as rows, from node ids or a named node: one statement per direction
    walked. A named node that does not exist is NotFound."""
    _check_depth(depth)
    ids: Start = start
    reached: dict[int, int] = {}
    nodes: dict[int, NodeRow] = {}
    edges: dict[int, EdgeRow] = {}
    for walk in WALKS:
        if direction in (walk, "both"):
            ids, rows, reached_nodes = walk_from(ids, walk, depth)
            if isinstance(start, NodeKey) and not ids:
                raise NotFound(f"no lineage node {start.kind + ':' + start.key!r}", code=_NOT_FOUND)
            nodes.update(reached_nodes)
            for pk in ids:
                reached.setdefault(pk, 0)
            far_depths(rows, walk, reached)
            edges.update(unique_edges(rows))
    if isinstance(ids, NodeKey):  # no walk ran: a direction neither up, down nor both
        raise InvalidInput(f"no such direction {direction!r}", code="lineage_bad_direction")
    return graph_rows(ids, nodes, reached, edges.values())


_NOT_FOUND = "lineage_node_not_found"


def path_rows(*, source: Sequence[int], target: Sequence[int], depth: int = MAX_DEPTH) -> GraphRows:
    """``lineage_path`` as rows: two walks (three when the first way round finds nothing)."""
    _check_depth(depth)
    nodes: dict[int, NodeRow] = {}
    for top, bottom in ((source, target), (target, source)):
        down_rows, down_nodes = walk_rows(top, "downstream", depth)
        nodes.update(down_nodes)
        down = far_depths(down_rows, "downstream", {})
        if not set(bottom) & set(down):
            continue
        up_rows, up_nodes = walk_rows(bottom, "upstream", depth)
        nodes.update(up_nodes)
        up = far_depths(up_rows, "upstream", {})
        down.update(dict.fromkeys(top, 0))
        up.update(dict.fromkeys(bottom, 0))
        on_path = {pk for pk in down if pk in up}
        reached = {pk: down[pk] for pk in on_path}
        both_ways = {edge.id for edge in up_rows}
        edges = [
            edge
            for edge in unique_edges(down_rows).values()
            if edge.id in both_ways
            and edge.upstream_id in on_path
            and edge.downstream_id in on_path
        ]
        return graph_rows(source, nodes, reached, edges)
    return graph_rows(source, nodes, {}, [])


def _graph(
    start: Sequence[LineageNode], reached: dict[int, int], edge_ids: set[int]
) -> LineageGraph:
    nodes = list(LineageNode.objects.filter(pk__in=list(reached)).select_related("artifact"))
    nodes.sort(key=lambda node: (reached[node.pk], node.kind, node.key))
    edges = list(
        LineageEdge.objects.filter(pk__in=list(edge_ids))
        .select_related("attestation__signer", "attestation__signing_key")
        .defer("attestation__envelope", "attestation__statement")
        .order_by("pk")
    )
    return LineageGraph(start=list(start), nodes=nodes, edges=edges, depth_of=reached)


def training_datasets(*, attestations: Sequence[Attestation]) -> tuple[list[str], list[str]]:
    """(datasets the given training provenances name, those without verified provenance).

    A dataset has provenance when a verified attestation proves the run that produced it.
    """
    trained_on = LineageEdge.objects.filter(
        attestation__in=list(attestations), relation=EdgeRelation.TRAINED_ON
    )
    keys = sorted(set(trained_on.values_list("upstream__key", flat=True)))
    proven = set(
        LineageEdge.objects.filter(
            downstream__kind=NodeKind.DATASET,
            downstream__key__in=keys,
            relation=EdgeRelation.PRODUCED,
            attestation__verification_status=VerificationStatus.VERIFIED,
        ).values_list("downstream__key", flat=True)
    )
    return keys, [key for key in keys if key not in proven]
