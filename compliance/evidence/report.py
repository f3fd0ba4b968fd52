"""The evidence report: one Django template rendered to HTML, and the same HTML to PDF/A-3b.

The sections follow the EU AI Act Annex IV technical documentation (``SECTIONS``). The report
is a pure function of the facts: the template gets display rows computed here, the PDF's
creation date is the bundle's generation time (``dcterms.created`` in the HTML head), its file
identifier is derived from the facts, and WeasyPrint may fetch nothing (the HTML carries its
styles and the lineage picture inline), so the same facts give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from weasyprint import HTML  # type: ignore[import-untyped]
from weasyprint.urls import FatalURLFetchingError, URLFetcher  # type: ignore[import-untyped]

from compliance.evidence.controls import (
    active_approvals,
    assess,
    attestation_path,
    failed_gates,
    find_version,
    quorum_shortfall,
    sod_violations,
)
from compliance.evidence.facts import (
    AliasMoveFacts,
    EvidenceFacts,
    IncidentFacts,
    PromotionFacts,
    VersionFacts,
)
from provenance.lineage_picture import PictureEdge, PictureNode, lineage_svg

TEMPLATE = "compliance/evidence/report.html"
PDF_VARIANT = "pdf/a-3b"
PORTRAIT_WIDTH_PX = 680  # A4 less the margins, in CSS pixels: wider pictures go landscape

_SVG_WIDTH = re.compile(r'<svg [^>]*?width="([0-9.]+)"')

# (id, heading) in EU AI Act Annex IV order; the template renders them in this order.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("identity", "Identity and version history"),
    ("development", "Development process and third-party components"),
    ("data", "Data and dataset provenance"),
    ("validation", "Validation and testing"),
    ("oversight", "Independent validation and separation of duties"),
    ("risk", "Risk and security measures"),
    ("changes", "Changes in the period"),
    ("logging", "Logging and the log extract's integrity"),
    ("monitoring", "Post-market monitoring and incidents"),
    ("controls", "Control assessment"),
)


class _OfflineFetcher(URLFetcher):  # type: ignore[misc]
    """Refuses every URL: a report that needs to fetch something is a bug, not a network
    request made from the worker."""

    def fetch(self, url: str, headers: Any = None) -> Any:
        raise FatalURLFetchingError(f"the evidence report fetches nothing, not {url[:80]!r}")


def render_html(facts: EvidenceFacts) -> str:
    """The report as a self-contained HTML document."""
    return render_to_string(TEMPLATE, report_context(facts))


def render_pdf(html: str, facts: EvidenceFacts) -> bytes:
    """The report HTML as PDF/A-3b, byte-identical for the same facts."""
    document = HTML(string=html, url_fetcher=_OfflineFetcher())
    pdf: bytes = document.write_pdf(pdf_variant=PDF_VARIANT, pdf_identifier=pdf_identifier(facts))
    return pdf


def pdf_identifier(facts: EvidenceFacts) -> bytes:
    """The PDF's permanent file identifier: a digest of the facts it documents."""
    canonical = json.dumps(facts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32].encode()


def report_context(facts: EvidenceFacts) -> dict[str, Any]:
    bundle = facts["bundle"]
    return {
        "bundle": bundle,
        "created": w3c_time(bundle["generated_at"]),
        "generated": display_time(bundle["generated_at"]),
        "period": _period(facts),
        "sections": [{"id": key, "title": title} for key, title in SECTIONS],
        "titles": dict(SECTIONS),
        "models": _models(facts),
        "versions": [_version_row(facts, v) for v in facts["versions"]],
        "lineage": (lineage := _lineage(facts)),
        "lineage_wide": _svg_width(lineage) > PORTRAIT_WIDTH_PX,
        "datasets": _datasets(facts),
        "promotions": [_promotion_row(facts, p) for p in facts["promotions"]],
        "alias_moves": [_move_row(m) for m in facts["alias_history"]],
        "incidents": [_incident_row(i) for i in facts["incidents"]],
        "log": _log(facts),
        "event_counts": sorted(facts["event_counts"].items()),
        "attestation_count": len(facts["attestations"]),
        "controls": [
            {"control": control, "outcome": outcome} for control, outcome in assess(facts)
        ],
    }


# --- formatting ------------------------------------------------------------------------------


def _parse(moment: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def w3c_time(moment: str) -> str:
    """A W3C date-time to whole seconds in UTC, the form WeasyPrint reads for PDF dates."""
    parsed = _parse(moment)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else ""


def display_time(moment: str | None) -> str:
    if not moment:
        return ""
    parsed = _parse(moment)
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if parsed else moment


def _period(facts: EvidenceFacts) -> str:
    bundle = facts["bundle"]
    if not (bundle["period_start"] or bundle["period_end"]):
        return ""
    start = display_time(bundle["period_start"]) or "the beginning"
    return f"{start} to {display_time(bundle['period_end']) or 'now'}"


def _attestation(facts: EvidenceFacts, sha: str) -> dict[str, str]:
    """What the bundle says of an attestation, by envelope sha256."""
    for attestation in facts["attestations"]:
        if attestation["envelope_sha256"] == sha:
            signer = attestation["signer"]
            return {
                "sha256": sha,
                "file": attestation["file"],
                "predicate_type": attestation["predicate_type"],
                "signer": signer.get("name") or signer.get("keyid") or signer.get("kind", ""),
                "status": attestation["verification_status"],
            }
    return {
        "sha256": sha,
        "file": attestation_path(facts, sha),
        "predicate_type": "",
        "signer": "",
        "status": "not in the bundle",
    }


# --- sections --------------------------------------------------------------------------------


def _models(facts: EvidenceFacts) -> list[dict[str, Any]]:
    return [
        {
            "name": model["name"],
            "description": model["description"],
            "risk_tier": model["risk_tier"],
            "aliases": sorted(model["aliases"].items()),
            "versions": model["versions"],
            "role_holders": sorted(
                (h.get("role", ""), h.get("user", "")) for h in model["role_holders"]
            ),
        }
        for model in facts["models"]
    ]


def _version_row(facts: EvidenceFacts, version: VersionFacts) -> dict[str, Any]:
    evaluations = [
        {
            "result": str(e.get("result", "")),
            "passed": str(e.get("result", "")) == "PASSED",
            "metrics": _metric_pairs(e.get("metrics")),
            "attestation": _attestation(facts, str(e["attestation_sha256"]))
            if e.get("attestation_sha256")
            else None,
        }
        for e in version["evaluations"]
    ]
    scan = version["scan"]
    return {
        "name": f"{version['model']} v{version['version']}",
        "version": version,
        "created": display_time(version["created_at"]),
        "file_count": len(version["files"]),
        "evaluations": evaluations,
        "scan": scan,
        "scan_clean": scan["verdict"] == "clean",
        "scanned": display_time(scan["scanned_at"]),
        "scan_attestation": _attestation(facts, scan["attestation_sha256"])
        if scan["attestation_sha256"]
        else None,
        "attestations": [_attestation(facts, sha) for sha in version["attestations"]],
    }


def _metric_pairs(metrics: object) -> list[tuple[str, str]]:
    if not isinstance(metrics, dict):
        return []
    return [
        (str(name), json.dumps(value, ensure_ascii=False, sort_keys=True).strip('"'))
        for name, value in sorted(metrics.items(), key=lambda item: str(item[0]))
    ]


def _lineage(facts: EvidenceFacts) -> str:
    nodes = [PictureNode(n["id"], n["kind"], n["label"]) for n in facts["lineage"]["nodes"]]
    edges = [
        PictureEdge(e["source"], e["target"], e["kind"], e["verified"])
        for e in facts["lineage"]["edges"]
    ]
    if not nodes:
        return ""
    in_scope = {f"{v['model']}/{v['version']}" for v in facts["versions"]}
    in_scope |= {f"{v['model']} v{v['version']}" for v in facts["versions"]}
    highlight = {n.id for n in nodes if n.kind == "model_version" and n.label in in_scope}
    # lineage_svg escapes every label and attribute it writes.
    return mark_safe(lineage_svg(nodes, edges, highlight=highlight))  # noqa: S308


def _svg_width(svg: str) -> float:
    found = _SVG_WIDTH.search(svg)
    return float(found.group(1)) if found else 0.0


def _datasets(facts: EvidenceFacts) -> list[dict[str, Any]]:
    return [
        {
            "dataset": dataset,
            "attestations": [
                _attestation(facts, sha) for sha in dataset["provenance_attestations"]
            ],
        }
        for dataset in facts["datasets"]
    ]


def _promotion_row(facts: EvidenceFacts, promotion: PromotionFacts) -> dict[str, Any]:
    version = find_version(facts, promotion["model"], promotion["version"])
    return {
        "promotion": promotion,
        "author": version["author"] if version else "",
        "requested": display_time(promotion["requested_at"]),
        "executed": display_time(promotion["executed_at"]),
        "required": [
            (str(r.get("role", "")), str(r.get("count", ""))) for r in promotion["required"]
        ],
        "gates": [
            {
                "gate": str(g.get("gate", "")),
                "ok": g.get("ok") is True,
                "detail": str(g.get("detail", "")),
            }
            for g in promotion["gates"]
        ],
        "failed_gates": failed_gates(promotion),
        "approvals": [
            {
                "approval": a,
                "decided": display_time(a["decided_at"]),
                "voided": display_time(a["voided_at"]),
                "bound": a["model_digest"] == promotion["model_digest"],
            }
            for a in promotion["approvals"]
        ],
        "active_approvals": len(active_approvals(promotion)),
        "shortfall": quorum_shortfall(promotion),
        "sod_violations": sod_violations(facts, promotion),
        "attestation": _attestation(facts, promotion["attestation_sha256"])
        if promotion["attestation_sha256"]
        else None,
    }


def _move_row(move: AliasMoveFacts) -> dict[str, Any]:
    return {
        "move": move,
        "changed": display_time(move["changed_at"]),
        "out_of_band": move["source"] != "registry",
    }


def _incident_row(incident: IncidentFacts) -> dict[str, Any]:
    return {
        "incident": incident,
        "opened": display_time(incident["opened_at"]),
        "resolved": display_time(incident["resolved_at"]),
    }


def _log(facts: EvidenceFacts) -> dict[str, Any]:
    log = facts["log"]
    last = log["last_verification"]
    return {
        "facts": log,
        "issued": display_time(log["checkpoint_issued_at"]),
        "last_verification": {
            "finished": display_time(str(last.get("finished_at") or "")),
            "ok": last.get("ok") is True,
            "tree_size": last.get("tree_size"),
        }
        if last
        else None,
    }
