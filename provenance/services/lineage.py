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
without its edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
)
from provenance.predicates import PREDICATE_OBSERVATION, PREDICATE_PROMOTION

# resolvedDependencies entries say what they are in annotations.kind; entries without a
# sha256 digest (source code at a git commit, say) are not lineage nodes.
DEPENDENCY_KINDS = frozenset({"dataset", "base_model", "code"})


@dataclass(frozen=True)
class _Edge:
    upstream: LineageNode
    downstream: LineageNode
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


def lineage_derive(attestation: Attestation) -> list[LineageEdge]:
    """Add the edges ``attestation`` proves; returns them."""
    statement = attestation.statement
    predicate_type = attestation.predicate_type
    predicate = statement.get("predicate") or {}
    if predicate_type == PREDICATE_SLSA_PROVENANCE_V1:
        edges = _from_provenance(attestation, statement, predicate)
    elif predicate_type == PREDICATE_TEST_RESULT and attestation.signer is not None:
        # the registry's own test-results are scans of files, not evaluations of a model
        edges = _from_test_result(attestation, statement, predicate)
    elif predicate_type == PREDICATE_OBSERVATION:
        edges = _from_observation(predicate)
    elif predicate_type == PREDICATE_PROMOTION:
        edges = _from_promotion(predicate)
    else:
        edges = []
    return _store(attestation, edges)


# --------------------------------------------------------------------------
# Per predicate type
# --------------------------------------------------------------------------


def _from_provenance(
    attestation: Attestation, statement: dict[str, Any], predicate: dict[str, Any]
) -> list[_Edge]:
    """Dependencies introduce dataset digests only for signers trusted to register datasets."""
    signer = attestation.signer
    may_register = signer is None or signer.may_register_datasets
    subjects = [node for s in statement["subject"] for node in _subject_nodes(s)]
    building_dataset = any(node.kind == NodeKind.DATASET for node in subjects)
    run = _run_node(predicate)
    edges: list[_Edge] = []
    consumers = [run] if run is not None else subjects
    for dependency in _dependencies(predicate, may_register=may_register):
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
    attestation: Attestation, statement: dict[str, Any], predicate: dict[str, Any]
) -> list[_Edge]:
    evaluation = _node(
        NodeKind.EVALUATION,
        attestation.envelope_digest,
        label=_evaluation_label(predicate),
        attributes={"result": str(predicate.get("result", ""))},
    )
    return [
        _Edge(subject, evaluation, EdgeRelation.EVALUATED_BY)
        for s in statement["subject"]
        for subject in _subject_nodes(s)
    ]


def _from_observation(predicate: dict[str, Any]) -> list[_Edge]:
    observed = predicate["modelVersion"]
    version = version_node_ensure(
        name=observed["name"], version=int(observed["version"]), artifact=None
    )
    edges = []
    run_id = str(observed.get("runId") or "")
    if run_id:
        run = _run(run_id, "mlflow")
        edges.append(_Edge(run, version, EdgeRelation.PRODUCED))
    aliases = [_alias_node(observed["name"], alias) for alias in observed.get("aliases", [])]
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


def _subject_nodes(subject: dict[str, Any]) -> list[LineageNode]:
    """The nodes an attestation subject (verified to be a known artifact) stands for."""
    digest = str(subject["digest"]["sha256"])
    artifact = Artifact.objects.get(digest=digest)
    if artifact.kind == ArtifactKind.DATASET:
        return [_dataset_node(digest, str(subject.get("name", "")), artifact)]
    versions = list(LineageNode.objects.filter(kind=NodeKind.MODEL_VERSION, artifact=artifact))
    return versions or [_node(NodeKind.BASE_MODEL, f"sha256:{digest}", label=artifact.name)]


def _dependencies(predicate: dict[str, Any], *, may_register: bool) -> list[LineageNode]:
    build = predicate.get("buildDefinition") or {}
    nodes = []
    for dependency in build.get("resolvedDependencies") or []:
        digest = str((dependency.get("digest") or {}).get("sha256", ""))
        kind = str((dependency.get("annotations") or {}).get("kind", "dataset"))
        if not digest or kind not in DEPENDENCY_KINDS:
            continue  # not a lineage node (source code at a commit, a config file…)
        label = str(dependency.get("name") or dependency.get("uri") or "")
        nodes += _dependency_nodes(digest, kind, label, may_register=may_register)
    return nodes


def _dependency_nodes(
    digest: str, kind: str, label: str, *, may_register: bool
) -> list[LineageNode]:
    artifact = Artifact.objects.filter(digest=digest).first()
    if artifact is not None and artifact.kind == ArtifactKind.MODEL:
        versions = list(LineageNode.objects.filter(kind=NodeKind.MODEL_VERSION, artifact=artifact))
        return versions or [_node(NodeKind.BASE_MODEL, f"sha256:{digest}", label=label)]
    if kind == "code":
        return []
    if kind == "base_model":
        return [_node(NodeKind.BASE_MODEL, f"sha256:{digest}", label=label)]
    if artifact is None and may_register:  # a dataset known by its digest from now on
        artifact = Artifact.objects.create(
            digest=digest,
            kind=ArtifactKind.DATASET,
            name=label[:500],
            size=0,
            created_at=timezone.now(),
        )
    return [_dataset_node(digest, label, artifact)]


def _dataset_node(digest: str, label: str, artifact: Artifact | None) -> LineageNode:
    node = _node(NodeKind.DATASET, f"sha256:{digest}", label=label, artifact=artifact)
    if artifact is not None and node.artifact_id is None:
        node.artifact = artifact
        node.save(update_fields=["artifact"])
    return node


def _run_node(predicate: dict[str, Any]) -> LineageNode | None:
    details = predicate.get("runDetails") or {}
    run_id = str((details.get("metadata") or {}).get("invocationId") or "")
    if not run_id:
        return None
    return _run(run_id, str((details.get("builder") or {}).get("id") or ""))


def _run(run_id: str, builder: str) -> LineageNode:
    """A run, with every builder that reported it (MLflow, the CI workflow…)."""
    node = _node(NodeKind.RUN, run_id, label=run_id, attributes={"builders": [builder]})
    builders = list(node.attributes.get("builders", []))
    if builder and builder not in builders:
        node.attributes = {**node.attributes, "builders": sorted([*builders, builder])}
        node.save(update_fields=["attributes"])
    return node


def _alias_node(model_name: str, alias: str) -> LineageNode:
    return _node(NodeKind.ALIAS, f"{model_name}@{alias}", label=f"{model_name}@{alias}")


def _evaluation_label(predicate: dict[str, Any]) -> str:
    configuration = predicate.get("configuration") or []
    names = [str(c.get("name", "")) for c in configuration if isinstance(c, dict)]
    return ", ".join(n for n in names if n)[:500] or "evaluation"


def _node(
    kind: str,
    key: str,
    *,
    label: str = "",
    artifact: Artifact | None = None,
    attributes: dict[str, Any] | None = None,
) -> LineageNode:
    node, _ = LineageNode.objects.get_or_create(
        kind=kind,
        key=key,
        defaults={
            "label": label[:500],
            "artifact": artifact,
            "attributes": attributes or {},
            "created_at": timezone.now(),
        },
    )
    return node


# --------------------------------------------------------------------------
# Edges
# --------------------------------------------------------------------------


def _end_alias_elsewhere(alias: LineageNode, version: LineageNode) -> None:
    """An alias points at one version: promoting ``version`` ends the alias on any other."""
    LineageEdge.objects.filter(
        downstream=alias, relation=EdgeRelation.PROMOTED_TO, ended_at__isnull=True
    ).exclude(upstream=version).update(ended_at=timezone.now())


def _store(attestation: Attestation, edges: list[_Edge]) -> list[LineageEdge]:
    now = timezone.now()
    for edge in edges:
        if edge.relation == EdgeRelation.PROMOTED_TO:
            _end_alias_elsewhere(edge.downstream, edge.upstream)
    stored: dict[tuple[int, int, str], LineageEdge] = {}
    for edge in edges:
        if edge.upstream.pk == edge.downstream.pk:
            continue
        identity = (edge.upstream.pk, edge.downstream.pk, str(edge.relation))
        if identity in stored:
            continue
        stored[identity] = LineageEdge(
            upstream=edge.upstream,
            downstream=edge.downstream,
            relation=edge.relation,
            attestation=attestation,
            created_at=now,
        )
    return LineageEdge.objects.bulk_create(stored.values())
