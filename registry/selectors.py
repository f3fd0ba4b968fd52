"""Reads of the registry app."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from config.errors import NotFound
from provenance import selectors as provenance_selectors
from provenance.models import (
    Artifact,
    Attestation,
    ModelScan,
    ModelSignature,
    NodeKind,
    VerificationStatus,
    named_version,
)
from provenance.selectors.lineage import EdgeRow, GraphRows, NodeRow
from provenance.selectors.lineage_visible import scoped_node_ids
from registry.choices import SyncStatus
from registry.models import (
    AliasHistory,
    ModelVersion,
    RegisteredModel,
    RunInput,
    SyncRun,
)


def model_versions(*, registered_model: RegisteredModel) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.filter(registered_model=registered_model)
        .select_related("run")
        .prefetch_related("aliases")
        .order_by("-version")
    )


def alias_history(*, registered_model: RegisteredModel, limit: int = 50) -> QuerySet[AliasHistory]:
    return (
        AliasHistory.objects.filter(registered_model=registered_model)
        .select_related("from_version", "to_version")
        .order_by("-changed_at", "-id")[:limit]
    )


def version_get(*, name: str, version: int) -> ModelVersion | None:
    return (
        ModelVersion.objects.select_related("registered_model", "run", "model_artifact")
        .prefetch_related(
            "aliases",
            Prefetch("run__inputs", queryset=RunInput.objects.select_related("dataset")),
        )
        .filter(registered_model__name=name, version=version)
        .first()
    )


def last_sync_summary() -> dict[str, Any]:
    """When sync last succeeded and, if the latest attempt failed, why."""
    latest = SyncRun.objects.order_by("-started_at", "-id").first()
    succeeded = (
        SyncRun.objects.filter(status=SyncStatus.SUCCEEDED).order_by("-started_at", "-id").first()
    )
    summary: dict[str, Any] = {
        "last_success_at": succeeded.finished_at.isoformat()
        if succeeded and succeeded.finished_at
        else None,
    }
    if latest is not None and latest.status == SyncStatus.FAILED:
        summary["last_error"] = latest.error[:300]
    return summary


@dataclass(frozen=True)
class HashedVersion:
    artifact: Artifact
    manifest_files: list[dict[str, Any]]
    ignore_paths: list[str]
    signature: ModelSignature | None


def version_hashed(*, name: str, version: int) -> HashedVersion | None:
    """What the registry measured of a version: digest, manifest and its newest model.sig."""
    row = (
        ModelVersion.objects.select_related("model_artifact__manifest")
        .filter(registered_model__name=name, version=version, model_artifact__isnull=False)
        .first()
    )
    if row is None or row.model_artifact is None:
        return None
    artifact = row.model_artifact
    signature = ModelSignature.objects.filter(artifact=artifact).order_by("-created_at").first()
    manifest = artifact.manifest
    return HashedVersion(
        artifact=artifact,
        manifest_files=list(manifest.files),
        ignore_paths=list(manifest.ignore_paths),
        signature=signature,
    )


# Versions per query: bounds its conditions (SQLite refuses an expression over 1,000 deep) and
# its parameters (PostgreSQL takes 65,535).
_VERSIONS_PER_QUERY = 500


def measured_digests(subject_names: Collection[str]) -> dict[str, str]:
    """For each subject name of the form ``<model>/<version>`` naming a version the registry
    measured, the model digest it measured: one query per 500 versions named."""
    names: dict[tuple[str, int], list[str]] = defaultdict(list)
    for name in subject_names:
        named = named_version(name)
        if named is not None:
            names[named].append(name)
    versions = sorted(names)
    found: dict[str, str] = {}
    for start in range(0, len(versions), _VERSIONS_PER_QUERY):
        by_model: dict[str, list[int]] = defaultdict(list)
        for model, number in versions[start : start + _VERSIONS_PER_QUERY]:
            by_model[model].append(number)
        condition = Q()
        for model, numbers in by_model.items():
            condition |= Q(registered_model__name=model, version__in=numbers)
        measured = ModelVersion.objects.filter(condition, model_artifact__isnull=False)
        for model, number, digest in measured.values_list(
            "registered_model__name", "version", "model_artifact__digest"
        ):
            found |= dict.fromkeys(names[(model, number)], digest)
    return found


LINEAGE_DEPTH = 10


@dataclass(frozen=True)
class LineageEnd:
    """A node at one end of a lineage edge, as the page names it."""

    node: NodeRow

    @property
    def kind_label(self) -> str:
        kind = self.node.kind
        return str(NodeKind(kind).label) if kind in NodeKind.values else kind

    @property
    def name(self) -> str:
        return self.node.label or self.node.key

    @property
    def version(self) -> tuple[str, int] | None:
        """(model, number) of a model version node, to link to its page."""
        model, _, number = self.node.key.rpartition("/")
        if self.node.kind != NodeKind.MODEL_VERSION or not model or not number.isdigit():
            return None
        return model, int(number)


@dataclass(frozen=True)
class LineageLink:
    """An edge of a version's lineage with the nodes at its ends, as the page lists it."""

    edge: EdgeRow
    upstream: LineageEnd
    downstream: LineageEnd

    @property
    def verified(self) -> bool:
        return self.edge.verification_status == VerificationStatus.VERIFIED

    @property
    def status_label(self) -> str:
        status = self.edge.verification_status
        return (
            str(VerificationStatus(status).label) if status in VerificationStatus.values else status
        )


@dataclass(frozen=True)
class VersionLineage:
    """What a version came from and what it fed (``LINEAGE_DEPTH`` steps each way), as rows:
    the version's own nodes, every node reached, and the edges, upstream first (from the
    furthest source down to the version), then downstream."""

    start: frozenset[int]
    nodes: list[NodeRow]
    links: list[LineageLink]


@dataclass(frozen=True)
class VersionProvenance:
    """What is proven about a version: its lineage both ways (None when it has no lineage
    node yet), the attestations about its files, and the latest re-verification (None if
    never)."""

    lineage: VersionLineage | None
    attestations: list[Attestation]
    last_verification: dict[str, Any] | None


def version_lineage(
    *, name: str, scope: provenance_selectors.LineageScope
) -> VersionLineage | None:
    """The lineage around the version ``<model>/<number>`` within ``scope``, the part of the
    graph one may see (None: no node)."""
    try:
        start = scoped_node_ids(f"{NodeKind.MODEL_VERSION}:{name}", scope=scope)
    except NotFound:
        return None
    rows = provenance_selectors.scoped_graph(
        start=start, direction="both", depth=LINEAGE_DEPTH, scope=scope
    )
    links = [
        LineageLink(
            edge,
            LineageEnd(rows.known[edge.upstream_id]),
            LineageEnd(rows.known[edge.downstream_id]),
        )
        for edge in rows.edges
    ]
    return VersionLineage(
        start=frozenset(start),
        nodes=rows.nodes,
        links=sorted(links, key=_flow_order(set(start), rows)),
    )


def _flow_order(start: set[int], rows: GraphRows) -> Callable[[LineageLink], tuple[int, int, int]]:
    """Upstream edges first, furthest from the version first; then downstream, nearest first,
    so the list reads in the direction the data flowed."""
    feeding: dict[int, list[int]] = {}
    for edge in rows.edges:
        feeding.setdefault(edge.downstream_id, []).append(edge.upstream_id)
    upstream, frontier = set(start), list(start)
    while frontier:
        node = frontier.pop()
        for source in feeding.get(node, []):
            if source not in upstream:
                upstream.add(source)
                frontier.append(source)

    def key(link: LineageLink) -> tuple[int, int, int]:
        edge = link.edge
        if edge.downstream_id in upstream:
            return (0, -rows.depth_of.get(edge.upstream_id, 0), edge.id)
        return (1, rows.depth_of.get(edge.downstream_id, 0), edge.id)

    return key


def scan_verdict(*, version: ModelVersion) -> str | None:
    """The verdict of the latest scan of the version's files (clean, warning, unsafe, unknown);
    None when they have not been scanned."""
    latest = version_scan(version=version)
    return latest.verdict if latest else None


def version_scan(*, version: ModelVersion) -> ModelScan | None:
    """The latest scan of the files the version has now (its current model digest)."""
    if version.model_artifact_id is None:
        return None
    return (
        ModelScan.objects.filter(artifact_id=version.model_artifact_id)
        .select_related("attestation")
        .defer("attestation__envelope")
        .first()
    )
