"""The lineage graph, derived from verified attestations and from nothing else.

Each accepted attestation adds the edges its statement proves (docs/predicates.md says which):

* SLSA provenance v1 — the run (``runDetails.metadata.invocationId``) *produced* each subject;
  each dataset in ``resolvedDependencies`` is what the run was *trained-on* (or, for a dataset
  build, what the new dataset was *derived-from*); each model dependency is what the run was
  *derived-from*. Without an invocation id the dependencies point at the subjects directly.
* in-toto test-result v0.1 — each subject model version was *evaluated-by* an evaluation node.
* the registry's observation — MLflow reported that run R *produced* version V, and which
  aliases point at V (*promoted-to*); an alias that moved away ends its old edge.
* the registry's promotion — V *promoted-to* the alias.

Called inside the transaction that stores the attestation, so an attestation never exists
without its edges. An ingest is on the hot path of every pipeline, so the nodes an attestation
needs are found and the missing ones created in one statement on PostgreSQL (elsewhere one query
and one INSERT), whatever their number.
"""

from __future__ import annotations

import functools
import json
import operator
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from provenance.attestation_verify import (
    PREDICATE_SLSA_PROVENANCE_V1,
    PREDICATE_TEST_RESULT,
)
from provenance.models import (
    Artifact,
    ArtifactKind,
    Attestation,
    EdgeRelation,
    LineageEdge,
    LineageNode,
    NodeKind,
    named_version,
)
from provenance.predicates import PREDICATE_OBSERVATION, PREDICATE_PROMOTION

# resolvedDependencies entries say what they are in annotations.kind; entries without a
# sha256 digest (source code at a git commit, say) are not lineage nodes.
DEPENDENCY_KINDS = frozenset({"dataset", "base_model", "code"})
# An alias moves from edge to edge as they arrive: these are derived one after the other.
_IN_TURN = frozenset({PREDICATE_OBSERVATION, PREDICATE_PROMOTION})


@dataclass(frozen=True)
class _Spec:
    """A node an edge needs, named by kind and key; created with these values when missing.

    A dataset node that exists without an artifact gains ``artifact``; a run node gains
    ``builder`` among its builders.
    """

    kind: str
    key: str
    label: str = ""
    artifact: Artifact | None = None
    attributes: dict[str, Any] = field(default_factory=dict, compare=False)
    builder: str | None = None

    @property
    def identity(self) -> tuple[str, str]:
        return (self.kind, self.key)


_End = LineageNode | _Spec
_NodeEdge = tuple[LineageNode, LineageNode, EdgeRelation]
# The model version nodes of each model artifact, by artifact id.
_Versions = Mapping[int | None, list[LineageNode]]


@dataclass(frozen=True)
class _Edge:
    upstream: _End
    downstream: _End
    relation: EdgeRelation


def version_node_ensure(*, name: str, version: int, artifact: Artifact | None) -> LineageNode:
    """The node of a model version, pointing at the artifact the registry measured."""
    node, created = LineageNode.objects.get_or_create(
        kind=NodeKind.MODEL_VERSION,
        key=f"{name}/{version}",
        defaults={
            "label": f"{name} v{version}",
            "artifact": artifact,
            "created_at": timezone.now(),
        },
    )
    if not created and artifact is not None and node.artifact_id != artifact.pk:
        node.artifact = artifact
        node.save(update_fields=["artifact"])
    return node


def lineage_derive(
    attestation: Attestation, *, artifacts: Mapping[str, Artifact | None] | None = None
) -> list[LineageEdge]:
    """Add the edges ``attestation`` proves; returns them.

    ``artifacts`` are artifacts by digest the caller already read (the subjects it stored,
    the ``lineage_digests`` it read with them; None for a digest it found nothing for),
    spared a lookup.
    """
    return lineage_derive_many([attestation], artifacts=artifacts)[0]


def lineage_digests(statement: Mapping[str, Any]) -> list[str]:
    """The digests deriving lineage from ``statement`` looks up besides its subjects' (a
    provenance's dependencies): a caller reading artifacts anyway reads these with them and
    passes what it found (``artifacts``). ``statement`` passed the door's checks
    (attestation_verify: the predicate's shape included)."""
    if statement.get("predicateType") != PREDICATE_SLSA_PROVENANCE_V1:
        return []
    return [digest for digest, _, _ in _dependencies(statement.get("predicate") or {})]


def lineage_derive_many(
    attestations: Sequence[Attestation],
    *,
    artifacts: Mapping[str, Artifact | None] | None = None,
) -> list[list[LineageEdge]]:
    """Add the edges each attestation proves, as one after the other would; returns them, in
    the same order. However many, the artifacts they name are read in one query (none when the
    caller read them: ``artifacts``), their nodes found and the missing ones created in one
    statement (PostgreSQL), and the edges inserted in another."""
    if len(attestations) > 1 and any(a.predicate_type in _IN_TURN for a in attestations):
        return [lineage_derive(attestation, artifacts=artifacts) for attestation in attestations]
    known = {digest: a for digest, a in (artifacts or {}).items() if a is not None}
    _artifacts_preload(attestations, known, read=set(artifacts or {}))
    versions = _versions(known.values())
    planned = [_planned(attestation, known, versions) for attestation in attestations]
    nodes = _nodes_ensure([end for edges in planned for end in _specs(edges)])
    return _store(
        [
            (attestation, [_between(edge, nodes) for edge in edges])
            for attestation, edges in zip(attestations, planned, strict=True)
        ]
    )


def _planned(
    attestation: Attestation, known: Mapping[str, Artifact], versions: _Versions
) -> list[_Edge]:
    statement = attestation.statement
    predicate_type = attestation.predicate_type
    predicate = statement.get("predicate") or {}
    if predicate_type == PREDICATE_SLSA_PROVENANCE_V1:
        return _from_provenance(statement, predicate, known, versions)
    if predicate_type == PREDICATE_TEST_RESULT and attestation.signer is not None:
        # the registry's own test-results are scans of files, not evaluations of a model
        return _from_test_result(attestation, statement, predicate, known, versions)
    if predicate_type == PREDICATE_OBSERVATION:
        return _from_observation(predicate)
    if predicate_type == PREDICATE_PROMOTION:
        return _from_promotion(predicate)
    return []


def _artifacts_preload(
    attestations: Sequence[Attestation], known: dict[str, Artifact], *, read: Collection[str]
) -> None:
    """The artifacts the attestations' subjects and dependencies name, in one query (those not
    ``read`` already); the datasets a provenance introduces registered (for signers trusted to
    register datasets)."""
    digests: list[str] = []
    introduced: list[tuple[str, str, str]] = []
    for attestation in attestations:
        statement = attestation.statement
        if attestation.predicate_type not in {PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_TEST_RESULT}:
            continue
        digests += [_sha256(subject) for subject in statement["subject"]]
        if attestation.predicate_type == PREDICATE_SLSA_PROVENANCE_V1:
            dependencies = _dependencies(statement.get("predicate") or {})
            digests += [digest for digest, _, _ in dependencies]
            signer = attestation.signer
            if signer is None or signer.may_register_datasets:
                introduced += dependencies
    _artifacts_load(known, [digest for digest in digests if digest not in read])
    _datasets_register(known, introduced)


# --------------------------------------------------------------------------
# Per predicate type
# --------------------------------------------------------------------------


def _from_provenance(
    statement: dict[str, Any],
    predicate: dict[str, Any],
    known: Mapping[str, Artifact],
    versions: _Versions,
) -> list[_Edge]:
    """Dependencies introduce dataset digests only for signers trusted to register datasets
    (registered beforehand: see _artifacts_preload)."""
    subjects = [node for s in statement["subject"] for node in _subject_nodes(s, known, versions)]
    building_dataset = any(node.kind == NodeKind.DATASET for node in subjects)
    run = _run_node(predicate)
    edges: list[_Edge] = []
    consumers: list[_End] = [run] if run is not None else subjects
    for digest, kind, label in _dependencies(predicate):
        for dependency in _dependency_nodes(digest, kind, label, known, versions):
            relation = (
                EdgeRelation.TRAINED_ON
                if dependency.kind == NodeKind.DATASET and not building_dataset
                else EdgeRelation.DERIVED_FROM
            )
            edges += [_Edge(dependency, consumer, relation) for consumer in consumers]
    if run is not None:
        edges += [_Edge(run, subject, EdgeRelation.PRODUCED) for subject in subjects]
    return edges


def _from_test_result(
    attestation: Attestation,
    statement: dict[str, Any],
    predicate: dict[str, Any],
    known: Mapping[str, Artifact],
    versions: _Versions,
) -> list[_Edge]:
    evaluation = _Spec(
        NodeKind.EVALUATION,
        attestation.envelope_digest,
        label=_evaluation_label(predicate),
        attributes={"result": str(predicate.get("result", ""))},
    )
    return [
        _Edge(subject, evaluation, EdgeRelation.EVALUATED_BY)
        for s in statement["subject"]
        for subject in _subject_nodes(s, known, versions)
    ]


def _from_observation(predicate: dict[str, Any]) -> list[_Edge]:
    observed = predicate["modelVersion"]
    version = version_node_ensure(
        name=observed["name"], version=int(observed["version"]), artifact=None
    )
    edges = []
    run_id = str(observed.get("runId") or "")
    if run_id:
        edges.append(_Edge(_run(run_id, "mlflow"), version, EdgeRelation.PRODUCED))
    specs = [_alias_node(observed["name"], alias) for alias in observed.get("aliases", [])]
    nodes = _nodes_ensure(specs)
    aliases = [nodes[spec.identity] for spec in specs]
    # What MLflow reports is the whole truth about this version's aliases at that moment.
    LineageEdge.objects.filter(
        upstream=version, relation=EdgeRelation.PROMOTED_TO, ended_at__isnull=True
    ).exclude(downstream__in=[alias.pk for alias in aliases]).update(ended_at=timezone.now())
    edges += [_Edge(version, alias, EdgeRelation.PROMOTED_TO) for alias in aliases]
    return edges


def _from_promotion(predicate: dict[str, Any]) -> list[_Edge]:
    target = predicate["modelVersion"]
    version = version_node_ensure(
        name=target["name"], version=int(target["version"]), artifact=None
    )
    alias = _alias_node(target["name"], predicate["alias"])
    return [_Edge(version, alias, EdgeRelation.PROMOTED_TO)]


# --------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------


def _sha256(subject: dict[str, Any]) -> str:
    return str(subject["digest"]["sha256"])


def _artifacts_load(known: dict[str, Artifact], digests: Iterable[str]) -> None:
    """Add the artifacts of ``digests`` not yet in ``known`` (one query); unknown ones stay
    missing."""
    wanted = sorted({digest for digest in digests if digest and digest not in known})
    if wanted:
        known.update(Artifact.objects.in_bulk(wanted, field_name="digest"))


def _datasets_register(
    known: dict[str, Artifact], dependencies: list[tuple[str, str, str]]
) -> None:
    """Datasets known by their digest from now on: those named as dependencies that the
    registry has never seen (from a signer trusted to register datasets)."""
    labels: dict[str, str] = {}
    for digest, kind, label in dependencies:
        if kind == "dataset" and digest not in known:
            labels.setdefault(digest, label)  # the first dependency naming it names it
    known.update(dataset_artifacts_ensure(labels))


def dataset_artifacts_ensure(labels: Mapping[str, str]) -> dict[str, Artifact]:
    """Dataset artifacts for ``labels`` (digest to name), created where missing.

    A concurrent ingest may register the same dataset: conflicts are skipped and every
    artifact is read back, so both end up with the one row.
    """
    if not labels:
        return {}
    now = timezone.now()
    Artifact.objects.bulk_create(
        [
            Artifact(
                digest=digest, kind=ArtifactKind.DATASET, name=label[:500], size=0, created_at=now
            )
            for digest, label in labels.items()
        ],
        ignore_conflicts=True,
    )
    return Artifact.objects.in_bulk(list(labels), field_name="digest")


def _versions(artifacts: Iterable[Artifact]) -> dict[int | None, list[LineageNode]]:
    """The model version nodes of each model artifact, by artifact id (one query)."""
    models = {artifact.pk for artifact in artifacts if artifact.kind == ArtifactKind.MODEL}
    versions: dict[int | None, list[LineageNode]] = defaultdict(list)
    if models:
        for node in LineageNode.objects.filter(kind=NodeKind.MODEL_VERSION, artifact__in=models):
            versions[node.artifact_id].append(node)
    return versions


def _subject_nodes(
    subject: dict[str, Any],
    known: Mapping[str, Artifact],
    versions: _Versions,
) -> list[_End]:
    """The nodes an attestation subject (verified to be a known artifact) stands for."""
    digest = _sha256(subject)
    artifact = known.get(digest)
    if artifact is None:
        raise Artifact.DoesNotExist(f"no artifact sha256:{digest}")
    if artifact.kind == ArtifactKind.DATASET:
        return [_dataset_node(digest, str(subject.get("name", "")), artifact)]
    holding = versions.get(artifact.pk, [])
    # Named as one version of those holding the files (two models may register the same
    # files), the subject is that version alone: the statement speaks of it, not the others.
    named = named_version(str(subject.get("name", "")))
    key = f"{named[0]}/{named[1]}" if named is not None else None
    chosen: list[_End] = [node for node in holding if node.key == key] or [*holding]
    return chosen or [_Spec(NodeKind.BASE_MODEL, f"sha256:{digest}", label=artifact.name)]


def _dependencies(predicate: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(sha256, kind, label) of each resolved dependency that may be a lineage node."""
    build = predicate.get("buildDefinition") or {}
    found = []
    for dependency in build.get("resolvedDependencies") or []:
        digest = str((dependency.get("digest") or {}).get("sha256", ""))
        kind = str((dependency.get("annotations") or {}).get("kind", "dataset"))
        if not digest or kind not in DEPENDENCY_KINDS:
            continue  # not a lineage node (source code at a commit, a config file…)
        found.append((digest, kind, str(dependency.get("name") or dependency.get("uri") or "")))
    return found


def _dependency_nodes(
    digest: str,
    kind: str,
    label: str,
    known: Mapping[str, Artifact],
    versions: _Versions,
) -> list[_End]:
    artifact = known.get(digest)
    if artifact is not None and artifact.kind == ArtifactKind.MODEL:
        return [*versions.get(artifact.pk, [])] or [
            _Spec(NodeKind.BASE_MODEL, f"sha256:{digest}", label=label)
        ]
    if kind == "code":
        return []
    if kind == "base_model":
        return [_Spec(NodeKind.BASE_MODEL, f"sha256:{digest}", label=label)]
    return [_dataset_node(digest, label, artifact)]


def _dataset_node(digest: str, label: str, artifact: Artifact | None) -> _Spec:
    return _Spec(NodeKind.DATASET, f"sha256:{digest}", label=label, artifact=artifact)


def _run_node(predicate: dict[str, Any]) -> _Spec | None:
    details = predicate.get("runDetails") or {}
    run_id = str((details.get("metadata") or {}).get("invocationId") or "")
    if not run_id:
        return None
    return _run(run_id, str((details.get("builder") or {}).get("id") or ""))


def _run(run_id: str, builder: str) -> _Spec:
    """A run, with every builder that reported it (MLflow, the CI workflow…)."""
    return _Spec(
        NodeKind.RUN, run_id, label=run_id, attributes={"builders": [builder]}, builder=builder
    )


def _alias_node(model_name: str, alias: str) -> _Spec:
    return _Spec(NodeKind.ALIAS, f"{model_name}@{alias}", label=f"{model_name}@{alias}")


def _evaluation_label(predicate: dict[str, Any]) -> str:
    configuration = predicate.get("configuration") or []
    names = [str(c.get("name", "")) for c in configuration if isinstance(c, dict)]
    return ", ".join(n for n in names if n)[:500] or "evaluation"


def _specs(edges: list[_Edge]) -> list[_Spec]:
    return [
        end for edge in edges for end in (edge.upstream, edge.downstream) if isinstance(end, _Spec)
    ]


def _between(edge: _Edge, nodes: Mapping[tuple[str, str], LineageNode]) -> _NodeEdge:
    def node(end: _End) -> LineageNode:
        return nodes[end.identity] if isinstance(end, _Spec) else end

    return (node(edge.upstream), node(edge.downstream), edge.relation)


def _nodes_ensure(specs: list[_Spec]) -> dict[tuple[str, str], LineageNode]:
    """The node of each spec: found, and the missing ones created, in one statement on
    PostgreSQL (elsewhere in one query and one INSERT).

    The first spec of a node decides the values it is created with, as the first of a series
    of get_or_create calls would. A concurrent ingest may create the same node meanwhile:
    conflicts are skipped and the created nodes read back, so both use the one row.
    """
    wanted: dict[tuple[str, str], _Spec] = {}
    for spec in specs:
        wanted.setdefault(spec.identity, spec)
    if not wanted:
        return {}
    if connection.vendor == "postgresql":
        nodes = _nodes_found_or_created(list(wanted.values()))
    else:
        nodes = _nodes_find(wanted)
    missing = [spec for identity, spec in wanted.items() if identity not in nodes]
    if missing:
        now = timezone.now()
        LineageNode.objects.bulk_create(
            [
                LineageNode(
                    kind=spec.kind,
                    key=spec.key,
                    label=spec.label[:500],
                    artifact=spec.artifact,
                    attributes=spec.attributes,
                    created_at=now,
                )
                for spec in missing
            ],
            ignore_conflicts=True,
        )
        nodes |= _nodes_find({spec.identity: spec for spec in missing})
    for spec in specs:
        _node_complete(nodes[spec.identity], spec)
    return nodes


# The nodes wanted that exist, and those missing created, in one round trip: the INSERT and
# the SELECT read the same snapshot, so a node is returned by one of them, never both. A node a
# concurrent ingest commits meanwhile is skipped by the INSERT and unseen by the SELECT: the
# caller finds it missing and goes the portable way for it.
_FOUND_OR_CREATED_SQL = """
WITH wanted (kind, key, label, artifact_id, attributes) AS (
    SELECT * FROM unnest(%(kind)s::varchar[], %(key)s::varchar[], %(label)s::varchar[],
                         %(artifact_id)s::bigint[], %(attributes)s::text[])
), created AS (
    INSERT INTO provenance_lineagenode (kind, key, label, artifact_id, attributes, created_at)
    SELECT w.kind, w.key, w.label, w.artifact_id, w.attributes::jsonb, %(now)s FROM wanted w
     WHERE NOT EXISTS (SELECT 1 FROM provenance_lineagenode n
                        WHERE n.kind = w.kind AND n.key = w.key)
        ON CONFLICT DO NOTHING
 RETURNING id, kind, key, label, artifact_id, attributes, created_at
)
SELECT id, kind, key, label, artifact_id, attributes, created_at FROM created
 UNION ALL
SELECT n.id, n.kind, n.key, n.label, n.artifact_id, n.attributes, n.created_at
  FROM provenance_lineagenode n JOIN wanted w ON n.kind = w.kind AND n.key = w.key
"""


def _nodes_found_or_created(specs: list[_Spec]) -> dict[tuple[str, str], LineageNode]:
    """PostgreSQL: the nodes of ``specs`` (distinct), the missing ones created, in one
    statement; a node created concurrently may be left out (see _FOUND_OR_CREATED_SQL)."""
    params = {
        "kind": [str(spec.kind) for spec in specs],
        "key": [spec.key for spec in specs],
        "label": [spec.label[:500] for spec in specs],
        "artifact_id": [spec.artifact.pk if spec.artifact else None for spec in specs],
        "attributes": [json.dumps(spec.attributes) for spec in specs],
        "now": timezone.now(),
    }
    found = LineageNode.objects.raw(_FOUND_OR_CREATED_SQL, params)
    return {(node.kind, node.key): node for node in found}


def _nodes_find(wanted: Mapping[tuple[str, str], _Spec]) -> dict[tuple[str, str], LineageNode]:
    keys_by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, key in wanted:
        keys_by_kind[kind].append(key)
    condition = functools.reduce(
        operator.or_, (Q(kind=kind, key__in=keys) for kind, keys in keys_by_kind.items())
    )
    return {(node.kind, node.key): node for node in LineageNode.objects.filter(condition)}


def _node_complete(node: LineageNode, spec: _Spec) -> None:
    """What a spec adds to a node that already existed: a dataset's artifact, a run's builder."""
    if spec.kind == NodeKind.DATASET and spec.artifact is not None and node.artifact_id is None:
        node.artifact = spec.artifact
        node.save(update_fields=["artifact"])
    if spec.kind == NodeKind.RUN and spec.builder:
        builders = list(node.attributes.get("builders", []))
        if spec.builder not in builders:
            node.attributes = {**node.attributes, "builders": sorted([*builders, spec.builder])}
            node.save(update_fields=["attributes"])


# --------------------------------------------------------------------------
# Edges
# --------------------------------------------------------------------------


def _end_alias_elsewhere(alias: LineageNode, version: LineageNode) -> None:
    """An alias points at one version: promoting ``version`` ends the alias on any other."""
    LineageEdge.objects.filter(
        downstream=alias, relation=EdgeRelation.PROMOTED_TO, ended_at__isnull=True
    ).exclude(upstream=version).update(ended_at=timezone.now())


def _store(planned: list[tuple[Attestation, list[_NodeEdge]]]) -> list[list[LineageEdge]]:
    """Each attestation's edges, in one INSERT; an edge twice, or from a node to itself, once
    or not at all."""
    now = timezone.now()
    rows: list[list[LineageEdge]] = []
    for attestation, edges in planned:
        for upstream, downstream, relation in edges:
            if relation == EdgeRelation.PROMOTED_TO:
                _end_alias_elsewhere(downstream, upstream)
        stored: dict[tuple[int, int, str], LineageEdge] = {}
        for upstream, downstream, relation in edges:
            identity = (upstream.pk, downstream.pk, str(relation))
            if upstream.pk == downstream.pk or identity in stored:
                continue
            stored[identity] = LineageEdge(
                upstream=upstream,
                downstream=downstream,
                relation=relation,
                attestation=attestation,
                created_at=now,
            )
        rows.append(list(stored.values()))
    created = iter(LineageEdge.objects.bulk_create([edge for edges in rows for edge in edges]))
    return [[next(created) for _ in edges] for edges in rows]
