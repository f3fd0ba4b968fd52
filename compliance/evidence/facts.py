"""The facts an evidence bundle states, as plain JSON-able data.

The collector (``collect.py``) reads them once from the database; every renderer (the JSON
files, the report, OSCAL, the ML-BOM, the model card) works from these structures alone, so
the same facts give the same bytes and no renderer touches the ORM. Times are RFC 3339 UTC
strings (``log_format.format_time``), digests are lowercase sha256 hex.
"""

from __future__ import annotations

from typing import Literal, TypedDict

Scope = Literal["model_version", "registered_model", "inventory"]


class BundleFacts(TypedDict):
    id: int
    scope: Scope
    title: str  # e.g. "fraud-detector version 3" / "fraud-detector, 2026-01-01 to 2026-07-01"
    model: str | None  # registered model name (None for the inventory)
    version: int | None  # for the model_version scope
    period_start: str | None
    period_end: str | None
    generated_at: str
    generated_by: str  # the Compliance Officer's name as it was
    registry_url: str
    log_origin: str


class ApproverFacts(TypedDict):
    name: str
    decision: Literal["approve", "reject"]
    roles: list[str]  # the roles this approval counted for, as held at that moment
    comment: str
    decided_at: str
    model_digest: str  # the digest the decision was bound to
    attestation_sha256: str  # registry-signed approval attestation ("" when none)
    voided_at: str | None


class PromotionFacts(TypedDict):
    id: int
    model: str
    version: int
    alias: str
    status: str  # PromotionStatus value
    risk_tier: str
    break_glass: bool
    requested_by: str
    requested_at: str
    reason: str
    model_digest: str
    required: list[dict[str, object]]  # [{"roles": [keys], "count": n}] snapshot of the policy
    gates: list[dict[str, object]]  # [{"gate": key, "passed": bool, "detail": str}] last run
    approvals: list[ApproverFacts]
    executed_at: str | None
    attestation_sha256: str  # the promotion attestation ("" when not promoted)


class ScanFacts(TypedDict):
    verdict: str  # clean / warning / unsafe / unknown / pending
    scanners: list[dict[str, str]]  # [{"name", "version"}]
    findings: list[dict[str, object]]  # [{"file", "scanner", "severity", "operator", "detail"}]
    scanned_at: str | None
    attestation_sha256: str


class VersionFacts(TypedDict):
    model: str
    version: int
    author: str  # the MLflow run's user
    source: str
    run_id: str
    created_at: str | None
    description: str
    model_digest: str  # "" when not hashed yet
    files: list[dict[str, object]]  # [{"path", "sha256", "size"}] from the manifest
    datasets: list[str]  # dataset sha256 digests it was trained on (from verified provenance)
    base_models: list[str]  # sha256 of base models it derives from
    aliases: list[str]  # aliases pointing at it now
    scan: ScanFacts
    attestations: list[str]  # envelope sha256s about this version
    evaluations: list[
        dict[str, object]
    ]  # [{"result": "PASSED"|..., "metrics": {...}, "attestation_sha256"}]
    model_sig: str | None  # path in the bundle of the registry's model.sig, if any


class ModelFacts(TypedDict):
    name: str
    description: str
    risk_tier: str
    aliases: dict[str, int]  # alias -> version now
    versions: list[int]
    role_holders: list[dict[str, str]]  # [{"role", "user"}] active grants on the model


class DatasetFacts(TypedDict):
    digest: str
    names: list[str]  # names MLflow reported for it
    sources: list[str]
    has_provenance: bool  # a verified attestation produced it (ETL run)
    provenance_attestations: list[str]  # envelope sha256s
    used_by: list[str]  # "<model>/<version>" in scope


class AliasMoveFacts(TypedDict):
    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    changed_at: str
    changed_by: str
    source: str  # registry / mlflow (out of band) / reconcile / break_glass
    promotion_id: int | None


class IncidentFacts(TypedDict):
    id: int
    kind: str
    status: str
    model: str | None
    version: int | None
    summary: str
    opened_at: str
    resolved_at: str | None
    resolution: str


class AttestationFacts(TypedDict):
    file: str  # attestations/<sha256>.intoto.jsonl
    envelope_sha256: str
    format: Literal["dsse", "sigstore", "model_sig"]
    predicate_type: str
    subjects: list[dict[str, object]]  # [{"name", "digest": {"sha256": hex}}]
    signer: dict[str, str]  # {"kind": registry|key|sigstore, "keyid", "name"}
    verification_status: str
    received_at: str


class LogFacts(TypedDict):
    origin: str
    tree_size: int  # of the checkpoint every proof is against
    root_hash: str  # hex
    checkpoint_issued_at: str
    entries: int  # how many entries the bundle carries
    first_index: int | None
    last_index: int | None
    previous_bundle: int | None  # id of the bundle the consistency proof starts from
    previous_tree_size: int | None
    last_verification: dict[str, object] | None  # {"finished_at", "ok", "tree_size"}


class LineageNodeFacts(TypedDict):
    id: int
    kind: str  # dataset / run / model_version / base_model / evaluation / alias
    label: str  # e.g. "fraud-detector/3", "sha256:ab12…", "run 4f2c…"


class LineageEdgeFacts(TypedDict):
    source: int
    target: int
    kind: str  # trained-on / produced / evaluated-by / derived-from / promoted-to
    verified: bool  # the attestation proving it verifies today
    attestation_sha256: str


class LineageFacts(TypedDict):
    nodes: list[LineageNodeFacts]
    edges: list[LineageEdgeFacts]


class EvidenceFacts(TypedDict):
    bundle: BundleFacts
    models: list[ModelFacts]
    versions: list[VersionFacts]
    datasets: list[DatasetFacts]
    promotions: list[PromotionFacts]
    alias_history: list[AliasMoveFacts]
    incidents: list[IncidentFacts]
    attestations: list[AttestationFacts]
    log: LogFacts
    lineage: LineageFacts  # upstream and downstream of the versions in scope
    event_counts: dict[str, int]  # log event type -> entries of that type in the bundle
