"""Lineage narrowed to what one caller may see (provenance/visibility.py states the rule).

For a caller who sees everything these are the plain walks of ``lineage.py``, nothing added.
For someone holding roles on particular models, the visible part of the graph is computed once
per request (``lineage_scope``: two queries, one of them a recursive CTE):

* the version and alias nodes of their models;
* everything upstream of those, walking through datasets, runs and base models but stopping at
  any other model's version (what fed another model is that model's business);
* the evaluations of their versions.

A walk is then answered as usual — one recursive CTE — and cut down in memory: nodes outside
the visible part go, with every edge touching them, and so does an edge whose attestation does
not speak of a visible artifact (its statement would tell of something else); what is no longer
connected to the start through the remaining edges goes too, and depths are counted again. So
a dataset shared with a model the caller cannot see shows nothing of that model's runs. A start
node outside the visible part is "not found", exactly like one that does not exist.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connection
from django.db.models import Q, Value

from config.errors import NotFound
from provenance.models import (
    AttestationSubject,
    EdgeRelation,
    LineageEdge,
    LineageNode,
    NodeKind,
)
from provenance.selectors.lineage import (
    MAX_DEPTH,
    WALKS,
    Direction,
    EdgeRow,
    GraphRows,
    NodeKey,
    NodeRow,
    Start,
    _check_depth,
    far_depths,
    graph_rows,
    lineage_node_ids,
    lineage_node_resolve,
    lineage_rows,
    path_rows,
    unique_edges,
    walk_from,
    walk_rows,
)
from provenance.visibility import Visibility

MODEL_KINDS = (NodeKind.MODEL_VERSION.value, NodeKind.ALIAS.value)


@dataclass(frozen=True)
class VisibleLineage:
    """The part of the graph a caller with per-model roles may see: node ids, and the ids of
    the artifacts those nodes hold (an edge shows only if its attestation speaks of one)."""

    nodes: frozenset[int]
    artifacts: frozenset[int]
    model_names: frozenset[str] = frozenset()


# None: the caller sees the whole graph.
LineageScope = VisibleLineage | None


class AliasRow(NamedTuple):
    """An alias pointing at a version now: the promoted-to edge and the nodes at its ends."""

    edge: EdgeRow
    version: NodeRow
    alias: NodeRow


@dataclass(frozen=True)
class ImpactReport:
    """What a node fed, as rows: the model versions downstream (in the order of their keys,
    with the edges into each that prove it, among those walked) and the aliases pointing at
    one of them now."""

    start: list[NodeRow]
    versions: list[NodeRow]
    depth_of: dict[int, int]
    proofs: dict[int, list[EdgeRow]] = field(default_factory=dict)
    aliases: list[AliasRow] = field(default_factory=list)


def model_of_node(kind: str, key: str) -> str | None:
    """The registered model a version (``<name>/<n>``) or alias (``<name>@<alias>``) node is of."""
    if kind == NodeKind.MODEL_VERSION:
        return key.rpartition("/")[0] or None
    if kind == NodeKind.ALIAS:
        return key.rpartition("@")[0] or None
    return None


def lineage_scope(visibility: Visibility) -> LineageScope:
    """The visible part of the graph for ``visibility``; None when it is all of it."""
    if visibility.everything:
        return None
    models = _model_nodes(visibility.model_names)
    if not models:
        return VisibleLineage(nodes=frozenset(), artifacts=frozenset())
    names = sorted(visibility.model_names)
    rows = _upstream_of(list(models), names) + _evaluations_of(list(models), names)
    nodes = {pk for pk, kind, _ in rows if kind not in MODEL_KINDS} | set(models)
    artifacts = {artifact for pk, _, artifact in rows if pk in nodes and artifact is not None}
    artifacts |= {artifact for artifact in models.values() if artifact is not None}
    return VisibleLineage(
        nodes=frozenset(nodes),
        artifacts=frozenset(artifacts),
        model_names=visibility.model_names,
    )


def scoped_node_resolve(ref: str, *, scope: LineageScope) -> list[LineageNode]:
    """``lineage_node_resolve``, where a node the caller may not see does not exist."""
    nodes = lineage_node_resolve(ref)
    if scope is not None:
        nodes = [node for node in nodes if node.pk in scope.nodes]
        if not nodes:
            raise NotFound(f"no lineage node {ref!r}", code="lineage_node_not_found")
    return nodes


def scoped_node_ids(ref: str, *, scope: LineageScope) -> list[int]:
    """``lineage_node_ids``, where a node the caller may not see does not exist."""
    ids = lineage_node_ids(ref)
    if scope is not None:
        ids = [pk for pk in ids if pk in scope.nodes]
        if not ids:
            raise NotFound(f"no lineage node {ref!r}", code="lineage_node_not_found")
    return ids


def scoped_graph(
    *, start: Start, direction: Direction, depth: int, scope: LineageScope
) -> GraphRows:
    """The graph around the ``start`` nodes one may see, as rows (one statement per direction
    walked; one more to see which attestations speak of what the caller may see). A start
    named by kind and key is for callers who see everything (``scope`` None)."""
    if scope is None:
        return lineage_rows(start=start, direction=direction, depth=depth)
    ids = _ids(start)
    _check_depth(depth)
    nodes: dict[int, NodeRow] = {}
    walked: dict[int, EdgeRow] = {}
    for walk in WALKS:
        if direction in (walk, "both"):
            rows, reached_nodes = walk_rows(ids, walk, depth)
            nodes.update(reached_nodes)
            walked.update(unique_edges(rows))
    edges = _visible_edges(walked.values(), scope)
    reached, kept = _reach(ids, edges, direction, depth)
    return graph_rows(ids, nodes, reached, [edge for edge in edges if edge.id in kept])


def _ids(start: Start) -> list[int]:
    """A scoped walk starts from the ids its caller may see, looked up and checked first."""
    if isinstance(start, NodeKey):
        raise TypeError("a walk narrowed to a scope starts from node ids, checked against it")
    return list(start)


def scoped_path(*, source: Sequence[int], target: Sequence[int], scope: LineageScope) -> GraphRows:
    """The edges on the paths between two nodes (ids; either way round) one may see, as rows."""
    source_ids, target_ids = list(source), list(target)
    found = path_rows(source=source_ids, target=target_ids)
    if scope is None or not found.edges:
        return found
    edges = _visible_edges(found.edges, scope)
    for top, bottom in ((source_ids, target_ids), (target_ids, source_ids)):
        down, down_edges = _reach(top, edges, "downstream", MAX_DEPTH)
        up, up_edges = _reach(bottom, edges, "upstream", MAX_DEPTH)
        on_path = set(down) & set(up)
        if on_path & set(bottom):
            reached = {pk: down[pk] for pk in on_path}
            kept = down_edges & up_edges
            return graph_rows(source_ids, found.known, reached, [e for e in edges if e.id in kept])
    return graph_rows(source_ids, found.known, {}, [])


def scoped_impact(*, start: Start, depth: int = MAX_DEPTH, scope: LineageScope) -> ImpactReport:
    """Every model version downstream of ``start`` (one walk), with the edges into each, and
    every alias pointing at one of them now. A start named by kind and key is for callers
    who see everything (``scope`` None).

    The walk crossed every edge out of a version it reached short of ``depth``, so the aliases
    of those come with it; only when a version sits at the depth limit are aliases queried."""
    _check_depth(depth)
    if scope is not None:
        start = _ids(start)
    ids, rows, nodes = walk_from(start, "downstream", depth)
    if isinstance(start, NodeKey) and not ids:
        ref = f"{start.kind}:{start.key}"
        raise NotFound(f"no lineage node {ref!r}", code="lineage_node_not_found")
    walked = unique_edges(rows)
    distance = far_depths(rows, "downstream", dict.fromkeys(ids, 0))
    if scope is None:
        reached, crossed = distance, set(walked)
    else:
        visible = _visible_edges(walked.values(), scope)
        reached, crossed = _reach(ids, visible, "downstream", depth)
    # ``nodes`` is in the order of their keys, as the database sorts them.
    versions = [n for pk, n in nodes.items() if pk in reached and n.kind == NodeKind.MODEL_VERSION]
    version_ids = {node.id for node in versions}
    proofs: dict[int, list[EdgeRow]] = defaultdict(list)
    for edge in walked.values():
        if edge.id in crossed and edge.downstream_id in version_ids:
            proofs[edge.downstream_id].append(edge)
    if any(distance[pk] >= depth for pk in version_ids):
        aliases = _aliases_of(version_ids, nodes)
    else:
        order = {pk: position for position, pk in enumerate(nodes)}
        aliases = sorted(
            (
                AliasRow(edge, nodes[edge.upstream_id], nodes[edge.downstream_id])
                for edge in walked.values()
                if edge.upstream_id in version_ids
                and edge.relation == EdgeRelation.PROMOTED_TO
                and edge.ended_at is None
                and nodes[edge.downstream_id].kind == NodeKind.ALIAS
            ),
            key=lambda alias: (order[alias.alias.id], alias.edge.id),
        )
    if scope is not None:
        aliases = [alias for alias in aliases if alias.alias.id in scope.nodes]
    aliases = _first_per_alias(aliases)
    return ImpactReport(
        start=[nodes[pk] for pk in ids if pk in nodes],
        versions=versions,
        depth_of=reached,
        proofs=dict(proofs),
        aliases=aliases,
    )


def _first_per_alias(aliases: list[AliasRow]) -> list[AliasRow]:
    """One row per alias: each observation of a version re-proves the aliases on it with an
    edge of its own, and the first (the lowest id: the moment the alias came to the version)
    says since when it has pointed there. ``aliases`` come by alias, then edge id."""
    seen: set[int] = set()
    first = []
    for alias in aliases:
        if alias.alias.id not in seen:
            seen.add(alias.alias.id)
            first.append(alias)
    return first


def _aliases_of(version_ids: set[int], nodes: dict[int, NodeRow]) -> list[AliasRow]:
    """The aliases pointing at the versions now, queried (one query)."""
    rows = (
        LineageEdge.objects.filter(
            upstream__in=list(version_ids),
            relation=EdgeRelation.PROMOTED_TO,
            ended_at__isnull=True,
            downstream__kind=NodeKind.ALIAS,
        )
        .order_by("downstream__key", "pk")
        .values_list(
            "pk",
            "upstream_id",
            "downstream_id",
            "relation",
            "attestation_id",
            "created_at",
            "ended_at",
            Value(1),
            "attestation__envelope_digest",
            "attestation__predicate_type",
            "attestation__signer__name",
            "attestation__verification_status",
            "downstream__kind",
            "downstream__key",
            "downstream__label",
            "downstream__artifact__digest",
        )
    )
    aliases = []
    for row in rows:
        edge = EdgeRow._make(row[:12])
        alias = NodeRow(edge.downstream_id, *row[12:])
        aliases.append(AliasRow(edge, nodes[edge.upstream_id], alias))
    return aliases


def scoped_edges_of(*, attestation_id: int, scope: LineageScope) -> list[LineageEdge]:
    """The edges an attestation proves, less those touching what the caller may not see."""
    edges = LineageEdge.objects.filter(attestation_id=attestation_id).select_related(
        "upstream", "downstream"
    )
    if scope is not None:
        visible = list(scope.nodes)
        edges = edges.filter(upstream__in=visible, downstream__in=visible)
    return list(edges.order_by("pk"))


# --------------------------------------------------------------------------
# The visible part of the graph
# --------------------------------------------------------------------------


def _model_nodes(names: frozenset[str]) -> dict[int, int | None]:
    """Version and alias nodes of the named models: node id → artifact id."""
    if not names:
        return {}
    wanted = Q()
    for name in names:
        wanted |= Q(kind=NodeKind.MODEL_VERSION, key__startswith=f"{name}/")
        wanted |= Q(kind=NodeKind.ALIAS, key__startswith=f"{name}@")
    rows = LineageNode.objects.filter(wanted).values_list("pk", "kind", "key", "artifact_id")
    # A prefix match may be another model's ("a/b/1" starts with "a/"): check the exact name.
    return {pk: artifact for pk, kind, key, artifact in rows if model_of_node(kind, key) in names}


def _upstream_of(start: list[int], models: list[str]) -> list[tuple[int, str, int | None]]:
    """(id, kind, artifact id) of every node upstream of ``start`` — stopping at model nodes,
    whose own upstream belongs to their model — in one recursive query; an edge proven by an
    attestation naming files as a version of a model not in ``models`` is not walked (files
    two models share lead to the other model's runs only through such edges)."""
    edge_table = connection.ops.quote_name(LineageEdge._meta.db_table)
    node_table = connection.ops.quote_name(LineageNode._meta.db_table)
    subject_table = connection.ops.quote_name(AttestationSubject._meta.db_table)
    placeholders = ", ".join(["%s"] * len(start))
    named = ", ".join(["%s"] * len(models))
    # UNION drops repeated (node, expand) rows: each node enters at most twice, cycles end.
    sql = f"""
        WITH RECURSIVE walk(node_id, expand) AS (
            SELECT n.id, 1 FROM {node_table} n WHERE n.id IN ({placeholders})
          UNION
            SELECT e.upstream_id, CASE WHEN u.kind IN (%s, %s) THEN 0 ELSE 1 END
            FROM walk w
            JOIN {edge_table} e ON e.downstream_id = w.node_id
            JOIN {node_table} u ON u.id = e.upstream_id
            WHERE w.expand = 1 AND NOT EXISTS (
                SELECT 1 FROM {subject_table} s
                WHERE s.attestation_id = e.attestation_id
                  AND s.named_model <> '' AND s.named_model NOT IN ({named})
            )
        )
        SELECT DISTINCT n.id, n.kind, n.artifact_id
        FROM walk w JOIN {node_table} n ON n.id = w.node_id
    """  # noqa: S608  (identifiers come from the models, values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*start, *MODEL_KINDS, *models])
        return [(int(pk), str(kind), artifact) for pk, kind, artifact in cursor.fetchall()]


def _evaluations_of(versions: list[int], models: list[str]) -> list[tuple[int, str, int | None]]:
    hidden = AttestationSubject.objects.exclude(named_model="").exclude(named_model__in=models)
    rows = (
        LineageEdge.objects.filter(upstream__in=versions, downstream__kind=NodeKind.EVALUATION)
        .exclude(attestation__in=hidden.values("attestation_id"))
        .values_list("downstream_id", "downstream__kind", "downstream__artifact_id")
        .distinct()
    )
    return [(pk, str(kind), artifact) for pk, kind, artifact in rows]


def _visible_edges(edges: Iterable[EdgeRow], scope: VisibleLineage) -> list[EdgeRow]:
    """Of ``edges``, those between visible nodes proven by an attestation whose every subject
    is a visible artifact, named as no other model's version: the rule of the attestations
    one may see (registry/visible_selectors.py). One query, whatever the number of edges."""
    between = [
        edge
        for edge in edges
        if edge.upstream_id in scope.nodes and edge.downstream_id in scope.nodes
    ]
    if not between:
        return []
    subjects = AttestationSubject.objects.filter(
        attestation_id__in={edge.attestation_id for edge in between}
    ).values_list("attestation_id", "artifact_id", "named_model")
    silent = {
        attestation
        for attestation, artifact, model in subjects
        if artifact not in scope.artifacts or (model and model not in scope.model_names)
    }
    return [edge for edge in between if edge.attestation_id not in silent]


def _reach(
    start: Sequence[int], edges: Sequence[EdgeRow], direction: Direction, depth: int
) -> tuple[dict[int, int], set[int]]:
    """Breadth-first over ``edges`` (already loaded): node → depth first reached, and the
    edges crossed, as the recursive walk would over the whole graph."""
    reached: dict[int, int] = dict.fromkeys(start, 0)
    crossed: set[int] = set()
    for walk in WALKS:
        if direction not in (walk, "both"):
            continue
        step: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for edge in edges:
            up, down = edge.upstream_id, edge.downstream_id
            near, far = (down, up) if walk == "upstream" else (up, down)
            step[near].append((edge.id, far))
        distance = dict.fromkeys(start, 0)
        queue = deque(start)
        while queue:
            node = queue.popleft()
            if distance[node] >= depth:
                continue
            for pk, far in step[node]:
                crossed.add(pk)
                if far not in distance:
                    distance[far] = distance[node] + 1
                    queue.append(far)
        for node, found in distance.items():
            reached[node] = min(found, reached.get(node, found))
    return reached, crossed
