"""Read what an evidence bundle states, once, from the database (the bundle's selector).

``collect`` answers the facts of facts.py for a bundle's scope; the attestations and log entries
themselves are streamed by the builder (``attestation_rows``, ``log_rows``) rather than held
here, so a bundle for a large inventory does not need its history in memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q

from compliance.choices import EvidenceScope, IncidentStatus
from compliance.evidence.facts import (
    AliasMoveFacts,
    ApproverFacts,
    AttestationFacts,
    DatasetFacts,
    IncidentFacts,
    LineageFacts,
    ModelFacts,
    PromotionFacts,
    ScanFacts,
    VersionFacts,
)
from compliance.models import EvidenceBundle, Incident, ModelRiskTier, PromotionRequest
from compliance.selectors import active_assignments
from provenance.attestation_verify import PREDICATE_TEST_RESULT
from provenance.log_format import format_time
from provenance.models import (
    Attestation,
    AttestationFormat,
    AttestationSubject,
    EdgeRelation,
    LineageEdge,
    LineageNode,
    LogEntry,
    ModelScan,
    ModelSignature,
    NodeKind,
    VerificationStatus,
)
from provenance.predicates import PREDICATE_PROMOTION
from provenance.selectors.lineage import lineage_rows
from registry.models import AliasHistory, Dataset, ModelAlias, ModelVersion, RegisteredModel

LINEAGE_DEPTH = 10
DEFAULT_RISK_TIER = "high"
# An alias move is the work of a promotion executed within this many seconds of it.
MATCH_SECONDS = 3600


def _time(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


@dataclass
class Scope:
    """What a bundle covers: versions, and the window changes are reported for."""

    bundle: EvidenceBundle
    models: list[RegisteredModel]
    versions: list[ModelVersion]
    start: datetime | None
    end: datetime | None
    digests: set[str] = field(default_factory=set)  # model digests of the versions

    @property
    def version_names(self) -> list[str]:
        return [f"{v.registered_model.name}/{v.version}" for v in self.versions]

    def in_period(self, field_name: str) -> Q:
        condition = Q()
        if self.start is not None:
            condition &= Q(**{f"{field_name}__gte": self.start})
        if self.end is not None:
            condition &= Q(**{f"{field_name}__lt": self.end})
        return condition


def scope_of(bundle: EvidenceBundle) -> Scope:
    versions = ModelVersion.objects.select_related("registered_model", "model_artifact", "run")
    if bundle.scope == EvidenceScope.MODEL_VERSION:
        assert bundle.version is not None  # noqa: S101  (the table's check constraint)
        chosen = list(versions.filter(pk=bundle.version.pk))
        models = [chosen[0].registered_model]
    elif bundle.scope == EvidenceScope.REGISTERED_MODEL:
        assert bundle.registered_model is not None  # noqa: S101
        models = [bundle.registered_model]
        chosen = list(versions.filter(registered_model=bundle.registered_model).order_by("version"))
    else:
        models = list(RegisteredModel.objects.order_by("name"))
        chosen = list(versions.order_by("registered_model__name", "version"))
    if bundle.period_end is not None:
        chosen = [v for v in chosen if v.first_seen_at < bundle.period_end]
    scope = Scope(
        bundle=bundle,
        models=models,
        versions=chosen,
        start=bundle.period_start,
        end=bundle.period_end,
    )
    scope.digests = {v.model_artifact.digest for v in chosen if v.model_artifact is not None}
    return scope


# --- attestations --------------------------------------------------------------------------


def attestation_ids(scope: Scope) -> list[int]:
    """Every attestation about a version in scope, or about the datasets they were trained on
    (the datasets' own provenance), in id order. Files registered as a version in scope and as
    another model's version too: what names them as the other model's is about that model, and
    stays out."""
    about_versions = set(
        AttestationSubject.objects.filter(artifact__digest__in=scope.digests)
        .filter(Q(named_model="") | Q(named_model__in=[model.name for model in scope.models]))
        .values_list("attestation_id", flat=True)
    )
    dataset_keys = set(
        LineageEdge.objects.filter(
            attestation_id__in=about_versions, relation=EdgeRelation.TRAINED_ON
        ).values_list("upstream__key", flat=True)
    )
    about_datasets = set(
        LineageEdge.objects.filter(
            downstream__kind=NodeKind.DATASET,
            downstream__key__in=dataset_keys,
            relation=EdgeRelation.PRODUCED,
        ).values_list("attestation_id", flat=True)
    )
    return sorted(about_versions | about_datasets)


def attestation_rows(ids: list[int], *, chunk: int = 200) -> Iterator[Attestation]:
    """The attestations with their envelope bytes, a chunk at a time."""
    for offset in range(0, len(ids), chunk):
        batch = (
            Attestation.objects.filter(pk__in=ids[offset : offset + chunk])
            .select_related("signer", "signing_key")
            .prefetch_related("subjects__artifact")
            .order_by("pk")
        )
        yield from batch


def attestation_facts(attestation: Attestation, file: str) -> AttestationFacts:
    if attestation.signing_key is not None:
        signer = {"kind": "registry", "keyid": attestation.signing_key.key_id, "name": "registry"}
    elif attestation.signer is not None:
        signer = {
            "kind": attestation.signer.kind,
            "keyid": attestation.signer.key_id,
            "name": attestation.signer.name,
        }
    else:  # pragma: no cover  (the table's check constraint)
        signer = {"kind": "unknown", "keyid": "", "name": ""}
    statement = attestation.statement or {}
    return {
        "file": file,
        "envelope_sha256": attestation.envelope_digest,
        "format": attestation.format,  # type: ignore[typeddict-item]  # AttestationFormat value
        "predicate_type": attestation.predicate_type,
        "subjects": [
            {"name": str(s.get("name", "")), "digest": dict(s.get("digest") or {})}
            for s in statement.get("subject", [])
        ],
        "signer": signer,
        "verification_status": attestation.verification_status,
        "received_at": format_time(attestation.received_at),
    }


# --- the governance log ----------------------------------------------------------------------


def log_condition(scope: Scope, attestation_digests: list[str]) -> Q:
    """The entries about what is in scope (the whole log within the period for the inventory)."""
    period = scope.in_period("occurred_at")
    if scope.bundle.scope == EvidenceScope.INVENTORY:
        return period
    models = [m.name for m in scope.models]
    requests = PromotionRequest.objects.filter(version__in=scope.versions).values_list(
        "pk", flat=True
    )
    incidents = Incident.objects.filter(
        Q(version__in=scope.versions) | Q(registered_model__in=scope.models, version__isnull=True)
    ).values_list("pk", flat=True)
    about = (
        Q(object_type="model_version", object_id__in=scope.version_names)
        | Q(object_type="registered_model", object_id__in=models)
        | Q(object_type="promotion_request", object_id__in=[str(pk) for pk in requests])
        | Q(object_type="incident", object_id__in=[str(pk) for pk in incidents])
        | Q(object_type="attestation", object_id__in=attestation_digests)
        | Q(object_type="artifact", object_id__in=sorted(scope.digests))
    )
    for name in models:
        about |= Q(object_type="alias", object_id__startswith=f"{name}@")
    return about & period


def log_rows(
    condition: Q, tree_size: int, *, chunk: int = 2000
) -> Iterator[tuple[int, str, bytes]]:
    """(index, event type, entry bytes) of the matching entries below ``tree_size``, in order."""
    rows = (
        LogEntry.objects.filter(condition, index__lt=tree_size)
        .order_by("index")
        .values_list("index", "event_type", "entry")
    )
    for index, event_type, entry in rows.iterator(chunk_size=chunk):
        yield index, event_type, bytes(entry)


# --- the registry's facts --------------------------------------------------------------------


def model_facts(scope: Scope) -> list[ModelFacts]:
    tiers = dict(
        ModelRiskTier.objects.filter(registered_model__in=scope.models).values_list(
            "registered_model_id", "tier"
        )
    )
    aliases: dict[int, dict[str, int]] = {}
    for alias in ModelAlias.objects.filter(registered_model__in=scope.models).select_related(
        "version"
    ):
        aliases.setdefault(alias.registered_model_id, {})[alias.alias] = alias.version.version
    versions: dict[int, list[int]] = {}
    for version in scope.versions:
        versions.setdefault(version.registered_model_id, []).append(version.version)
    holders: dict[int | None, list[dict[str, str]]] = {}
    for grant in active_assignments():
        holders.setdefault(grant.registered_model_id, []).append(
            {"role": grant.role.key, "user": grant.user.get_username()}
        )
    return [
        {
            "name": model.name,
            "description": model.description,
            "risk_tier": tiers.get(model.pk, DEFAULT_RISK_TIER),
            "aliases": dict(sorted(aliases.get(model.pk, {}).items())),
            "versions": sorted(versions.get(model.pk, [])),
            "role_holders": sorted(
                holders.get(model.pk, []) + holders.get(None, []),
                key=lambda h: (h["role"], h["user"]),
            ),
        }
        for model in scope.models
    ]


def _scan_facts(scan: ModelScan | None) -> ScanFacts:
    if scan is None:
        return {
            "verdict": "pending",
            "scanners": [],
            "findings": [],
            "scanned_at": None,
            "attestation_sha256": "",
        }
    findings: list[dict[str, object]] = []
    for item in scan.report.get("files", []):
        for finding in item.get("findings", []):
            findings.append({"file": item.get("path", ""), **finding})
    return {
        "verdict": scan.verdict,
        "scanners": [
            {"name": str(s.get("name", "")), "version": str(s.get("version", ""))}
            for s in scan.scanners
        ],
        "findings": findings,
        "scanned_at": format_time(scan.scanned_at),
        "attestation_sha256": scan.attestation.envelope_digest,
    }


def version_facts(
    scope: Scope, attestations: list[AttestationFacts], statements: dict[str, dict[str, Any]]
) -> list[VersionFacts]:
    """Each version: identity, files, what it was trained on, evaluations, scan, aliases."""
    artifact_ids = [v.model_artifact_id for v in scope.versions if v.model_artifact_id]
    scans: dict[int, ModelScan] = {}
    for scan in (
        ModelScan.objects.filter(artifact_id__in=artifact_ids)
        .select_related("attestation")
        .defer("attestation__envelope")
        .order_by("artifact_id", "-scanned_at", "-id")
    ):
        scans.setdefault(scan.artifact_id, scan)
    signed = set(
        ModelSignature.objects.filter(artifact_id__in=artifact_ids).values_list(
            "artifact_id", flat=True
        )
    )
    aliases: dict[int, list[str]] = {}
    for alias in ModelAlias.objects.filter(version__in=scope.versions):
        aliases.setdefault(alias.version_id, []).append(alias.alias)
    upstream = _upstream_keys(scope.version_names)
    by_subject: dict[str, list[AttestationFacts]] = {}
    for row in attestations:
        for subject in row["subjects"]:
            digests = subject.get("digest")
            digest = digests.get("sha256") if isinstance(digests, dict) else None
            by_subject.setdefault(str(digest), []).append(row)
    result: list[VersionFacts] = []
    for version in scope.versions:
        name = f"{version.registered_model.name}/{version.version}"
        artifact = version.model_artifact
        digest = artifact.digest if artifact else ""
        about = by_subject.get(digest, []) if digest else []
        manifest = getattr(artifact, "manifest", None) if artifact else None
        result.append(
            {
                "model": version.registered_model.name,
                "version": version.version,
                "author": version.run.user if version.run else version.user_id,
                "source": version.source,
                "run_id": version.mlflow_run_id,
                "created_at": _time(version.mlflow_created_at),
                "description": version.description,
                "model_digest": digest,
                "files": [
                    {"path": f["path"], "sha256": f["sha256"], "size": f["size"]}
                    for f in (manifest.files if manifest else [])
                ],
                "datasets": _hexes(upstream.get(name, {}).get(NodeKind.DATASET, set())),
                "base_models": _hexes(upstream.get(name, {}).get(NodeKind.BASE_MODEL, set())),
                "aliases": sorted(aliases.get(version.pk, [])),
                "scan": _scan_facts(scans.get(artifact.pk) if artifact else None),
                "attestations": sorted(row["envelope_sha256"] for row in about),
                "evaluations": _evaluations(about, statements),
                "model_sig": (
                    f"model/{version.registered_model.name}/{version.version}/model.sig"
                    if artifact is not None and artifact.pk in signed
                    else None
                ),
            }
        )
    return result


def _evaluations(
    about: list[AttestationFacts], statements: dict[str, dict[str, Any]]
) -> list[dict[str, object]]:
    """Test results signed by a pipeline (the registry's own are scans, not evaluations)."""
    evaluations: list[dict[str, object]] = []
    for row in about:
        if row["predicate_type"] != PREDICATE_TEST_RESULT or row["signer"]["kind"] == "registry":
            continue
        predicate = statements.get(row["envelope_sha256"], {}).get("predicate") or {}
        evaluations.append(
            {
                "result": str(predicate.get("result", "")),
                "metrics": dict(predicate.get("metrics") or {}),
                "verified": row["verification_status"] == VerificationStatus.VERIFIED,
                "signer": row["signer"]["name"],
                "received_at": row["received_at"],
                "attestation_sha256": row["envelope_sha256"],
            }
        )
    return sorted(evaluations, key=lambda e: (str(e["received_at"]), str(e["attestation_sha256"])))


def _upstream_keys(version_names: list[str]) -> dict[str, dict[str, set[str]]]:
    """For each version, the keys of the datasets and base models right above it."""
    result: dict[str, dict[str, set[str]]] = {}
    edges = LineageEdge.objects.filter(
        downstream__kind=NodeKind.MODEL_VERSION,
        downstream__key__in=version_names,
        ended_at__isnull=True,
    ).values_list("downstream__key", "upstream__kind", "upstream__key", "relation")
    runs: dict[str, set[str]] = {}
    for version, kind, key, _relation in edges:
        if kind == NodeKind.RUN:
            runs.setdefault(key, set()).add(version)
        else:
            result.setdefault(version, {}).setdefault(kind, set()).add(key)
    if runs:
        for run, kind, key in LineageEdge.objects.filter(
            downstream__kind=NodeKind.RUN, downstream__key__in=list(runs), ended_at__isnull=True
        ).values_list("downstream__key", "upstream__kind", "upstream__key"):
            for version in runs[run]:
                result.setdefault(version, {}).setdefault(kind, set()).add(key)
    return result


def _hexes(keys: set[str]) -> list[str]:
    """Node keys (``sha256:<hex>``) as the bare digests the facts hold."""
    return sorted(key.removeprefix("sha256:") for key in keys)


def dataset_facts(versions: list[VersionFacts]) -> list[DatasetFacts]:
    used_by: dict[str, list[str]] = {}
    for version in versions:
        for digest in version["datasets"]:
            key = f"sha256:{digest}"
            used_by.setdefault(key, []).append(f"{version['model']}/{version['version']}")
    keys = sorted(used_by)
    proofs: dict[str, list[str]] = {}
    for key, digest in LineageEdge.objects.filter(
        downstream__kind=NodeKind.DATASET,
        downstream__key__in=keys,
        relation=EdgeRelation.PRODUCED,
        attestation__verification_status=VerificationStatus.VERIFIED,
    ).values_list("downstream__key", "attestation__envelope_digest"):
        proofs.setdefault(key, []).append(digest)
    hexes = {key: key.removeprefix("sha256:") for key in keys}
    names: dict[str, set[str]] = {}
    sources: dict[str, set[str]] = {}
    for digest, name, source in Dataset.objects.filter(digest__in=hexes.values()).values_list(
        "digest", "name", "source"
    ):
        names.setdefault(digest, set()).add(name)
        if source:
            sources.setdefault(digest, set()).add(source)
    return [
        {
            "digest": hexes[key],
            "names": sorted(names.get(hexes[key], set())),
            "sources": sorted(sources.get(hexes[key], set())),
            "has_provenance": key in proofs,
            "provenance_attestations": sorted(proofs.get(key, [])),
            "used_by": sorted(used_by[key]),
        }
        for key in keys
    ]


def promotion_facts(
    scope: Scope, statements: dict[str, dict[str, Any]], digests_by_request: dict[int, str]
) -> list[PromotionFacts]:
    requests = (
        PromotionRequest.objects.filter(version__in=scope.versions)
        .filter(scope.in_period("requested_at"))
        .select_related("registered_model", "version", "requested_by")
        .prefetch_related("approvals")
        .order_by("requested_at", "pk")
    )
    result: list[PromotionFacts] = []
    for request in requests:
        approvals: list[ApproverFacts] = [
            {
                "name": a.approver_name,
                "decision": a.decision,  # type: ignore[typeddict-item]  # Decision value
                "roles": list(a.roles),
                "comment": a.comment,
                "decided_at": format_time(a.decided_at),
                "model_digest": a.model_digest,
                "attestation_sha256": a.attestation_digest,
                "voided_at": _time(a.voided_at),
            }
            for a in request.approvals.all()
        ]
        result.append(
            {
                "id": request.pk,
                "model": request.registered_model.name,
                "version": request.version.version,
                "alias": request.alias,
                "status": request.status,
                "risk_tier": request.risk_tier,
                "break_glass": request.break_glass,
                "requested_by": request.requested_by.get_username(),
                "requested_at": format_time(request.requested_at),
                "reason": request.reason,
                "model_digest": request.model_digest,
                "required": list(request.policy.get("approvals", [])),
                "gates": list(request.gate_results),
                "approvals": approvals,
                "executed_at": _time(request.executed_at),
                "attestation_sha256": digests_by_request.get(request.pk, ""),
            }
        )
    return result


def promotion_attestations(statements: dict[str, dict[str, Any]]) -> dict[int, str]:
    """request id → digest of the registry's promotion attestation, among those in scope."""
    found: dict[int, str] = {}
    for digest, statement in statements.items():
        if statement.get("predicateType") != PREDICATE_PROMOTION:
            continue
        request = (statement.get("predicate") or {}).get("request") or {}
        if isinstance(request.get("id"), int):
            found[request["id"]] = digest
    return found


def alias_facts(scope: Scope) -> list[AliasMoveFacts]:
    moves = (
        AliasHistory.objects.filter(registered_model__in=scope.models)
        .filter(scope.in_period("changed_at"))
        .select_related("registered_model", "from_version", "to_version")
        .order_by("changed_at", "pk")
    )
    if scope.bundle.scope == EvidenceScope.MODEL_VERSION:
        moves = moves.filter(Q(from_version__in=scope.versions) | Q(to_version__in=scope.versions))
    by_target: dict[tuple[int, str, int | None], list[tuple[datetime, int]]] = {}
    for request in PromotionRequest.objects.filter(
        registered_model__in=scope.models, executed_at__isnull=False
    ).only("pk", "registered_model_id", "alias", "version_id", "executed_at"):
        assert request.executed_at is not None  # noqa: S101  (filtered above)
        key = (request.registered_model_id, request.alias, request.version_id)
        by_target.setdefault(key, []).append((request.executed_at, request.pk))
    result: list[AliasMoveFacts] = []
    for move in moves:
        candidates = by_target.get((move.registered_model_id, move.alias, move.to_version_id), [])
        promotion = next(
            (
                pk
                for at, pk in sorted(candidates, reverse=True)
                if abs((move.changed_at - at).total_seconds()) < MATCH_SECONDS
            ),
            None,
        )
        result.append(
            {
                "model": move.registered_model.name,
                "alias": move.alias,
                "from_version": move.from_version.version if move.from_version else None,
                "to_version": move.to_version.version if move.to_version else None,
                "changed_at": format_time(move.changed_at),
                "changed_by": move.changed_by,
                "source": move.source,
                "promotion_id": promotion,
            }
        )
    return result


def incident_facts(scope: Scope) -> list[IncidentFacts]:
    incidents = Incident.objects.filter(registered_model__in=scope.models).select_related(
        "registered_model", "version"
    )
    if scope.bundle.scope == EvidenceScope.MODEL_VERSION:
        incidents = incidents.filter(Q(version__in=scope.versions) | Q(version__isnull=True))
    if scope.end is not None:
        incidents = incidents.filter(opened_at__lt=scope.end)
    if scope.start is not None:  # open at some point in the period
        incidents = incidents.filter(
            Q(resolved_at__isnull=True)
            | Q(resolved_at__gte=scope.start)
            | Q(status=IncidentStatus.OPEN)
        )
    return [
        {
            "id": incident.pk,
            "kind": incident.kind,
            "status": incident.status,
            "model": incident.registered_model.name,
            "version": incident.version.version if incident.version else None,
            "summary": incident.summary,
            "opened_at": format_time(incident.opened_at),
            "resolved_at": _time(incident.resolved_at),
            "resolution": incident.resolution,
        }
        for incident in incidents.order_by("opened_at", "pk")
    ]


def lineage_facts(scope: Scope) -> LineageFacts:
    """Upstream and downstream of the versions in scope, as drawn in the report."""
    start = list(
        LineageNode.objects.filter(
            kind=NodeKind.MODEL_VERSION, key__in=scope.version_names
        ).values_list("pk", flat=True)
    )
    if not start:
        return {"nodes": [], "edges": []}
    rows = lineage_rows(start=start, direction="both", depth=LINEAGE_DEPTH)
    reached = {node.id for node in rows.nodes}
    return {
        "nodes": [
            {
                "id": node.id,
                "kind": node.kind,
                "label": _node_label(node.kind, node.key, node.label),
            }
            for node in sorted(rows.nodes, key=lambda n: n.id)
        ],
        "edges": [
            {
                "source": edge.upstream_id,
                "target": edge.downstream_id,
                "kind": edge.relation,
                "verified": edge.verification_status == VerificationStatus.VERIFIED,
                "attestation_sha256": edge.envelope_digest,
            }
            for edge in rows.edges
            if edge.upstream_id in reached
            and edge.downstream_id in reached
            and edge.ended_at is None
        ],
    }


def _node_label(kind: str, key: str, label: str) -> str:
    if label:
        return label
    if key.startswith("sha256:"):
        return f"{key[:19]}…"
    return key if kind != NodeKind.RUN else f"run {key[:12]}"


def event_counts(types: Counter[str]) -> dict[str, int]:
    return dict(sorted(types.items()))


def registry_url() -> str:
    return str(settings.REGISTRY_BASE_URL)


__all__ = [
    "AttestationFormat",
    "Scope",
    "alias_facts",
    "attestation_facts",
    "attestation_ids",
    "attestation_rows",
    "dataset_facts",
    "event_counts",
    "incident_facts",
    "lineage_facts",
    "log_condition",
    "log_rows",
    "model_facts",
    "promotion_attestations",
    "promotion_facts",
    "registry_url",
    "scope_of",
    "version_facts",
]
