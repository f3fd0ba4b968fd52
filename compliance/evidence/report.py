"""The evidence report: one Django template rendered to HTML, and the same HTML to PDF/A-3b.

The sections follow the EU AI Act Annex IV technical documentation (``SECTIONS``). The report
is a pure function of the facts: the template gets display rows computed here, the PDF's
creation date is the bundle's generation time (``dcterms.created`` in the HTML head), its file
identifier is derived from the facts, and WeasyPrint may fetch nothing (the HTML carries its
styles and the lineage picture inline), so the same facts give the same bytes.

The report states every figure exactly but lists rows only up to a limit (``DETAILED_VERSIONS``
and the other limits below): past it, it says how many there are, which ones it shows and in
which file of the bundle the rest are. A registered model with hundreds of versions and
thousands of attestations would otherwise make a PDF of hundreds of pages that WeasyPrint
takes minutes to lay out, and that no auditor reads row by row; they read the JSON files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from weasyprint import HTML  # type: ignore[import-untyped]
from weasyprint.urls import FatalURLFetchingError, URLFetcher  # type: ignore[import-untyped]

from compliance.evidence.controls import (
    ATTESTATION_INDEX,
    JSON_ALIAS_HISTORY,
    JSON_DATASETS,
    JSON_INCIDENTS,
    JSON_INVENTORY,
    JSON_PROMOTIONS,
    JSON_VERSIONS,
    Outcome,
    active_approvals,
    assess,
    bare_digest,
    failed_gates,
    find_version,
    gate_passed,
    passed_evaluations,
    quorum_shortfall,
    requirement_roles,
    sod_violations,
    version_name,
)
from compliance.evidence.facts import (
    AliasMoveFacts,
    AttestationFacts,
    DatasetFacts,
    EvidenceFacts,
    IncidentFacts,
    LineageFacts,
    PromotionFacts,
    VersionFacts,
)
from provenance.lineage_picture import PictureEdge, PictureNode, lineage_svg

TEMPLATE = "compliance/evidence/report.html"
PDF_VARIANT = "pdf/a-3b"
PORTRAIT_WIDTH_PX = 680  # A4 less the margins, in CSS pixels: wider pictures go landscape

OSCAL_RESULTS = "oscal/assessment-results.json"

# How much the report lists before it summarises (see the module docstring).
DETAILED_VERSIONS = 25  # versions with their own development, validation and scan blocks
SUMMARY_ROWS = 400  # versions listed one row each when there are more than DETAILED_VERSIONS
DETAILED_PROMOTIONS = 25  # promotions with their own approvals block
ATTESTATION_ROWS = 30  # attestations listed per version
EVALUATION_ROWS = 10  # evaluations listed per version, the most recent
FINDING_ROWS = 30  # scan findings listed per version
TABLE_ROWS = 50  # rows of the datasets, promotions, alias moves and incidents tables
NAMES_SHOWN = 30  # entries of a running list (versions using a dataset, versions failing, …)
PROBLEMS_SHOWN = 10  # problems listed in a control's reason
PICTURE_NODES = 60  # a larger lineage is drawn around a few versions only
PICTURE_VERSIONS = 10  # the versions such a picture is drawn around
DIGEST_PREFIX = 12

_SVG_WIDTH = re.compile(r'<svg [^>]*?width="([0-9.]+)"')
_VERSION_SEGMENT = re.compile(r"v?[0-9]+(\.[0-9]+)*")
_NEVER = datetime.min.replace(tzinfo=UTC)


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
    generated = _parse(facts["bundle"]["generated_at"])
    with _font_timestamps(int(generated.timestamp()) if generated else 0):
        pdf: bytes = document.write_pdf(
            pdf_variant=PDF_VARIANT, pdf_identifier=pdf_identifier(facts)
        )
    return pdf


_SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"
_environment_lock = threading.Lock()


@contextmanager
def _font_timestamps(epoch: int) -> Iterator[None]:
    """The embedded font subsets dated ``epoch``, not now.

    fontTools stamps the time of writing into each subset's ``head`` table unless
    SOURCE_DATE_EPOCH (reproducible-builds.org) says otherwise; a rebuild a second later
    would embed different fonts. Set for the rendering only, then put back as it was.
    """
    with _environment_lock:
        previous = os.environ.get(_SOURCE_DATE_EPOCH)
        os.environ[_SOURCE_DATE_EPOCH] = str(epoch)
        try:
            yield
        finally:
            if previous is None:
                del os.environ[_SOURCE_DATE_EPOCH]
            else:
                os.environ[_SOURCE_DATE_EPOCH] = previous


def pdf_identifier(facts: EvidenceFacts) -> bytes:
    """The PDF's permanent file identifier: a digest of the facts it documents."""
    canonical = json.dumps(facts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32].encode()


def report_context(facts: EvidenceFacts) -> dict[str, Any]:
    bundle = facts["bundle"]
    lookup = _lookup(facts)
    summarised = len(facts["versions"]) > DETAILED_VERSIONS
    ranked = _ranked_versions(facts, lookup) if summarised else facts["versions"]
    detailed = ranked[:DETAILED_VERSIONS]
    promotions = [_promotion_row(facts, lookup, p) for p in facts["promotions"]]
    return {
        "bundle": bundle,
        "created": w3c_time(bundle["generated_at"]),
        "generated": display_time(bundle["generated_at"]),
        "period": _period(facts),
        "sections": [{"id": key, "title": title} for key, title in SECTIONS],
        "titles": dict(SECTIONS),
        "files": _files(),
        "predicates": sorted((n, t) for t, n in lookup.predicates.items() if t and n != t),
        "models": _models(facts),
        "version_count": len(facts["versions"]),
        "summarised": summarised,
        "summaries": _summary_rows(facts, lookup, ranked) if summarised else None,
        "versions": [_version_row(lookup, v) for v in detailed],
        "base_models": _base_models(facts),
        "evaluated": _evaluated(facts),
        "scans": _scans(facts),
        "lineage": _lineage(facts, detailed),
        "datasets": _datasets(facts, lookup),
        "promotion_blocks": _promotion_blocks(promotions),
        "promotions": _last(promotions, TABLE_ROWS),
        "alias_moves": _last([_move_row(m) for m in facts["alias_history"]], TABLE_ROWS),
        "incidents": _incidents(facts),
        "log": _log(facts),
        "event_counts": sorted(facts["event_counts"].items()),
        "attestation_count": len(facts["attestations"]),
        "controls": [
            {"control": control, "outcome": outcome, "reason": _reason(outcome)}
            for control, outcome in assess(facts)
        ],
    }


def _files() -> dict[str, str]:
    """The bundle's machine-readable files the report points at for what it does not list."""
    return {
        "versions": JSON_VERSIONS,
        "attestations": ATTESTATION_INDEX,
        "datasets": JSON_DATASETS,
        "promotions": JSON_PROMOTIONS,
        "alias_history": JSON_ALIAS_HISTORY,
        "incidents": JSON_INCIDENTS,
        "inventory": JSON_INVENTORY,
    }


# --- lists and lookups ----------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    """The rows a table or a list shows, out of ``total``; the rest are in the bundle's files."""

    rows: list[Any]
    total: int

    @property
    def hidden(self) -> int:
        return self.total - len(self.rows)


def _first(rows: Sequence[Any], limit: int) -> Listed:
    return Listed(list(rows[:limit]), len(rows))


def _last(rows: Sequence[Any], limit: int) -> Listed:
    return Listed(list(rows[-limit:]), len(rows))


@dataclass(frozen=True)
class _Lookup:
    """The facts indexed once, so that no row searches the whole list again."""

    attestations: dict[str, AttestationFacts]
    predicates: dict[str, str]  # predicate type -> the short name the tables use
    promotions: dict[tuple[str, int], list[PromotionFacts]]
    moves: dict[tuple[str, int | None], list[AliasMoveFacts]]


def _lookup(facts: EvidenceFacts) -> _Lookup:
    promotions: dict[tuple[str, int], list[PromotionFacts]] = defaultdict(list)
    for promotion in facts["promotions"]:
        promotions[(promotion["model"], promotion["version"])].append(promotion)
    moves: dict[tuple[str, int | None], list[AliasMoveFacts]] = defaultdict(list)
    for move in facts["alias_history"]:
        for number in {move["from_version"], move["to_version"]} - {None}:
            moves[(move["model"], number)].append(move)
    # reversed: of two entries for one envelope, the first wins, as a search would find it
    attestations = {a["envelope_sha256"]: a for a in reversed(facts["attestations"])}
    return _Lookup(attestations, _predicate_names(facts), promotions, moves)


def _predicate_names(facts: EvidenceFacts) -> dict[str, str]:
    """A short name for each predicate type (``provenance``, ``test-result``), or the type
    itself where two types would share one."""
    types = sorted({a["predicate_type"] for a in facts["attestations"]})
    shared = Counter(_predicate_kind(t) for t in types)
    return {t: _predicate_kind(t) if shared[_predicate_kind(t)] == 1 else t for t in types}


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


def _attestation(lookup: _Lookup, sha: str) -> dict[str, str]:
    """What the bundle says of an attestation, by envelope sha256."""
    attestation = lookup.attestations.get(sha)
    if attestation is None:
        return {
            "sha256": sha,
            "file": f"attestations/{sha}.intoto.jsonl",
            "predicate_type": "",
            "kind": "not in the bundle",
            "signer": "",
            "status": "not in the bundle",
            "received_at": "",
        }
    signer = attestation["signer"]
    return {
        "sha256": sha,
        "file": attestation["file"],
        "predicate_type": attestation["predicate_type"],
        "kind": lookup.predicates.get(attestation["predicate_type"]) or attestation["format"],
        "signer": signer.get("name") or signer.get("keyid") or signer.get("kind", ""),
        "status": attestation["verification_status"],
        "received_at": attestation["received_at"],
    }


def _predicate_kind(predicate_type: str) -> str:
    """The short name of a predicate type: its last path segment that is not a version
    (``https://slsa.dev/provenance/v1`` → ``provenance``)."""
    segments = [s for s in predicate_type.split("/") if s and not _VERSION_SEGMENT.fullmatch(s)]
    return segments[-1] if len(segments) > 1 else predicate_type


def _attestation_counts(attestations: Iterable[dict[str, str]]) -> str:
    """``verified/total`` per predicate kind, e.g. ``provenance 1/1, test-result 8/9``."""
    total: Counter[str] = Counter()
    verified: Counter[str] = Counter()
    for attestation in attestations:
        total[attestation["kind"]] += 1
        verified[attestation["kind"]] += attestation["status"] == "verified"
    return ", ".join(f"{kind} {verified[kind]}/{total[kind]}" for kind in sorted(total))


def _names(names: Sequence[str]) -> Listed:
    return _first(names, NAMES_SHOWN)


def _ranges(numbers: Iterable[int]) -> str:
    """Version numbers, each run of three or more written as a range (first, en dash, last)."""
    runs: list[list[int]] = []
    for number in sorted(set(numbers)):
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(
        f"{run[0]}\N{EN DASH}{run[-1]}" if len(run) > 2 else ", ".join(map(str, run))
        for run in runs
    )


# --- sections --------------------------------------------------------------------------------


def _models(facts: EvidenceFacts) -> list[dict[str, Any]]:
    return [
        {
            "name": model["name"],
            "description": model["description"],
            "risk_tier": model["risk_tier"],
            "aliases": sorted(model["aliases"].items()),
            "versions": _ranges(model["versions"]),
            "role_holders": sorted(
                (h.get("role", ""), h.get("user", "")) for h in model["role_holders"]
            ),
        }
        for model in facts["models"]
    ]


def _ranked_versions(facts: EvidenceFacts, lookup: _Lookup) -> list[VersionFacts]:
    """The versions in the order the report picks them to detail or list when it cannot show
    all: those aliases point at first, then the most recently changed."""

    def precedence(version: VersionFacts) -> tuple[bool, float, int, str]:
        changed = _last_change(lookup, version).timestamp()
        return (not version["aliases"], -changed, -version["version"], version["model"])

    return sorted(facts["versions"], key=precedence)


def _summary_rows(facts: EvidenceFacts, lookup: _Lookup, ranked: Sequence[VersionFacts]) -> Listed:
    """One row per version in scope, in the facts' order; past ``SUMMARY_ROWS``, the first
    ones ranked."""
    listed = {id(v) for v in ranked[:SUMMARY_ROWS]}
    rows = [_version_summary(lookup, v) for v in facts["versions"] if id(v) in listed]
    return Listed(rows, len(facts["versions"]))


def _last_change(lookup: _Lookup, version: VersionFacts) -> datetime:
    """When the version last changed: registered, scanned, attested, promoted or moved."""
    key = (version["model"], version["version"])
    moments = [version["created_at"], version["scan"]["scanned_at"]]
    moments += [
        lookup.attestations[sha]["received_at"]
        for sha in version["attestations"]
        if sha in lookup.attestations
    ]
    for promotion in lookup.promotions.get(key, []):
        moments += [promotion["requested_at"], promotion["executed_at"]]
    moments += [move["changed_at"] for move in lookup.moves.get(key, [])]
    return max((_parse(m) or _NEVER for m in moments if m), default=_NEVER)


def _version_row(lookup: _Lookup, version: VersionFacts) -> dict[str, Any]:
    """A version's detail block: development, evaluations and scan. The development block's
    table leaves out the signed test reports and the scan result, which the evaluations and
    the scan show."""
    scan = version["scan"]
    attestations = [_attestation(lookup, sha) for sha in version["attestations"]]
    shown_elsewhere = {str(e.get("attestation_sha256")) for e in version["evaluations"]}
    shown_elsewhere.add(scan["attestation_sha256"])
    others = [a for a in attestations if a["sha256"] not in shown_elsewhere]
    if len(others) > ATTESTATION_ROWS:  # list the most recently received
        others.sort(key=lambda a: (a["received_at"], a["sha256"]), reverse=True)
    return {
        "name": version_name(version),
        "version": version,
        "created": display_time(version["created_at"]),
        "file_count": len(version["files"]),
        "evaluations": _last(
            [_evaluation(lookup, e) for e in version["evaluations"]], EVALUATION_ROWS
        ),
        "scan": scan,
        "scan_clean": scan["verdict"] == "clean",
        "scanned": display_time(scan["scanned_at"]),
        "scan_attestation": _attestation(lookup, scan["attestation_sha256"])
        if scan["attestation_sha256"]
        else None,
        "findings": _first(scan["findings"], FINDING_ROWS),
        "attestation_count": len(attestations),
        "attestation_counts": _attestation_counts(attestations),
        "attestations": _first(others, ATTESTATION_ROWS),
        "shown_elsewhere": len(attestations) - len(others),
        "base_models": [bare_digest(d) for d in version["base_models"]],
    }


def _evaluation(lookup: _Lookup, evaluation: dict[str, object]) -> dict[str, Any]:
    sha = str(evaluation.get("attestation_sha256") or "")
    return {
        "result": str(evaluation.get("result", "")),
        "passed": str(evaluation.get("result", "")) == "PASSED",
        "metrics": _metric_pairs(evaluation.get("metrics")),
        "attestation": _attestation(lookup, sha) if sha else None,
    }


def _version_summary(lookup: _Lookup, version: VersionFacts) -> dict[str, Any]:
    """A version in one table row, for scopes too large to detail every version."""
    evaluations = version["evaluations"]
    promotions = lookup.promotions.get((version["model"], version["version"]), [])
    last = max(promotions, key=lambda p: (p["requested_at"], p["id"]), default=None)
    return {
        "name": version_name(version),
        "version": version,
        "digest": version["model_digest"][:DIGEST_PREFIX],
        "scan_clean": version["scan"]["verdict"] == "clean",
        "attestation_counts": _attestation_counts(
            _attestation(lookup, sha) for sha in version["attestations"]
        ),
        "evaluations": len(evaluations),
        "passed": len(passed_evaluations(version)),
        "promotion": last,
    }


def _metric_pairs(metrics: object) -> list[tuple[str, str]]:
    if not isinstance(metrics, dict):
        return []
    return [
        (str(name), json.dumps(value, ensure_ascii=False, sort_keys=True).strip('"'))
        for name, value in sorted(metrics.items(), key=lambda item: str(item[0]))
    ]


def _base_models(facts: EvidenceFacts) -> Listed:
    """Every base model the versions in scope derive from, with how many versions use it."""
    used = Counter(bare_digest(d) for v in facts["versions"] for d in set(v["base_models"]))
    return _first(sorted(used.items(), key=lambda item: (-item[1], item[0])), NAMES_SHOWN)


def _evaluated(facts: EvidenceFacts) -> dict[str, Any]:
    """Evaluation figures over every version in scope."""
    versions = facts["versions"]
    passed = [passed_evaluations(v) for v in versions]
    return {
        "evaluations": sum(len(v["evaluations"]) for v in versions),
        "passed": sum(1 for p in passed if p),
        "signed": sum(1 for p in passed if any(e.get("attestation_sha256") for e in p)),
        "failing": _names(
            [version_name(v) for v, p in zip(versions, passed, strict=True) if not p]
        ),
    }


def _scans(facts: EvidenceFacts) -> dict[str, Any]:
    """Scan verdicts over every version in scope."""
    versions = facts["versions"]
    verdicts = Counter(v["scan"]["verdict"] for v in versions)
    not_clean = [
        f"{version_name(v)} ({v['scan']['verdict']})"
        for v in versions
        if v["scan"]["verdict"] != "clean"
    ]
    return {"verdicts": sorted(verdicts.items()), "not_clean": _names(not_clean)}


def _lineage(facts: EvidenceFacts, detailed: Sequence[VersionFacts]) -> dict[str, Any]:
    """The lineage picture, whole when it is small, else drawn around a few versions."""
    lineage = facts["lineage"]
    picture: dict[str, Any] = {
        "svg": "",
        "nodes": len(lineage["nodes"]),
        "edges": len(lineage["edges"]),
        "partial": len(lineage["nodes"]) > PICTURE_NODES,
    }
    if not lineage["nodes"]:
        return picture
    shown, around = _picture_nodes(lineage, detailed[:PICTURE_VERSIONS])
    nodes = [
        PictureNode(n["id"], n["kind"], n["label"])
        for n in lineage["nodes"]
        if not picture["partial"] or n["id"] in shown
    ]
    edges = [
        PictureEdge(e["source"], e["target"], e["kind"], e["verified"]) for e in lineage["edges"]
    ]
    in_scope = {f"{v['model']}/{v['version']}" for v in facts["versions"]}
    in_scope |= {version_name(v) for v in facts["versions"]}
    highlight = {n.id for n in nodes if n.kind == "model_version" and n.label in in_scope}
    # lineage_svg escapes every label and attribute it writes.
    svg = mark_safe(lineage_svg(nodes, edges, highlight=highlight))  # noqa: S308
    return picture | {
        "svg": svg,
        "wide": _svg_width(svg) > PORTRAIT_WIDTH_PX,
        "drawn": len(nodes),
        "around": around,
    }


def _picture_nodes(lineage: LineageFacts, focus: Sequence[VersionFacts]) -> tuple[set[int], int]:
    """The nodes a partial picture draws, and around how many versions: the focus versions,
    the aliases pointing at them and what is upstream of them, nearest first. When no focus
    version is in the graph, its first nodes by id."""
    labels = {f"{v['model']}/{v['version']}" for v in focus} | {version_name(v) for v in focus}
    kinds = {n["id"]: n["kind"] for n in lineage["nodes"]}
    versions = [
        n["id"] for n in lineage["nodes"] if n["kind"] == "model_version" and n["label"] in labels
    ]
    if not versions:
        return set(sorted(kinds)[:PICTURE_NODES]), 0
    upstream: dict[int, list[int]] = defaultdict(list)
    aliases = []
    for edge in lineage["edges"]:
        upstream[edge["target"]].append(edge["source"])
        if kinds.get(edge["target"]) == "alias" and edge["source"] in versions:
            aliases.append(edge["target"])
    reached = list(dict.fromkeys([*versions, *sorted(aliases)]))
    seen = set(reached)
    for node_id in reached:  # breadth first: the list grows while it is walked
        if len(reached) >= PICTURE_NODES:
            break
        fresh = [up for up in sorted(upstream[node_id]) if up in kinds and up not in seen]
        reached += fresh
        seen.update(fresh)
    return set(reached[:PICTURE_NODES]), len(versions)


def _svg_width(svg: str) -> float:
    found = _SVG_WIDTH.search(svg)
    return float(found.group(1)) if found else 0.0


def _datasets(facts: EvidenceFacts, lookup: _Lookup) -> dict[str, Any]:
    """The datasets table; past ``TABLE_ROWS``, those without verified provenance first."""
    datasets = facts["datasets"]
    ordered = datasets
    if len(datasets) > TABLE_ROWS:
        ordered = sorted(datasets, key=lambda d: d["has_provenance"])
    return {
        "table": Listed([_dataset_row(lookup, d) for d in ordered[:TABLE_ROWS]], len(datasets)),
        "proven": (proven := sum(1 for d in datasets if d["has_provenance"])),
        "unproven": len(datasets) - proven,
    }


def _dataset_row(lookup: _Lookup, dataset: DatasetFacts) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "attestations": _first(
            [_attestation(lookup, sha) for sha in dataset["provenance_attestations"]], 5
        ),
        "used_by": _by_model(dataset["used_by"][:NAMES_SHOWN]),
        "used_by_more": max(len(dataset["used_by"]) - NAMES_SHOWN, 0),
    }


def _by_model(names: Sequence[str]) -> list[str]:
    """``m/3``, ``m/4``, ``m/5``, ``m/9`` as ``m: 3`` en dash ``5, 9``: one entry per model."""
    numbers: dict[str, list[int]] = defaultdict(list)
    others: list[str] = []
    for name in names:
        model, _, number = name.rpartition("/")
        if model and number.isdigit():
            numbers[model].append(int(number))
        else:
            others.append(name)
    return [f"{model}: {_ranges(n)}" for model, n in sorted(numbers.items())] + others


def _promotion_row(
    facts: EvidenceFacts, lookup: _Lookup, promotion: PromotionFacts
) -> dict[str, Any]:
    version = find_version(facts, promotion["model"], promotion["version"])
    approvals = [
        {
            "approval": a,
            "decided": display_time(a["decided_at"]),
            "voided": display_time(a["voided_at"]),
            "bound": a["model_digest"] == promotion["model_digest"],
        }
        for a in promotion["approvals"]
    ]
    failed, shortfall = failed_gates(promotion), quorum_shortfall(promotion)
    violations = sod_violations(facts, promotion)
    return {
        "promotion": promotion,
        "author": version["author"] if version else "",
        "requested": display_time(promotion["requested_at"]),
        "executed": display_time(promotion["executed_at"]),
        "required": [
            (" or ".join(requirement_roles(r)), str(r.get("count", "")))
            for r in promotion["required"]
        ],
        "gates": [
            {
                "gate": str(g.get("gate", "")),
                "ok": gate_passed(g),
                "detail": str(g.get("detail", "")),
            }
            for g in promotion["gates"]
        ],
        "failed_gates": failed,
        "approvals": approvals,
        "active_approvals": len(active_approvals(promotion)),
        "shortfall": shortfall,
        "sod_violations": violations,
        "attestation": _attestation(lookup, promotion["attestation_sha256"])
        if promotion["attestation_sha256"]
        else None,
        "questioned": bool(
            promotion["break_glass"]
            or failed
            or shortfall
            or violations
            or not all(a["bound"] for a in approvals)
        ),
    }


def _promotion_blocks(rows: list[dict[str, Any]]) -> Listed:
    """The promotions detailed in section 5; past ``DETAILED_PROMOTIONS``, those with a
    problem (break-glass, a failed gate, no quorum, a separation-of-duties violation, an
    approval for another digest) first, then the most recent."""
    if len(rows) <= DETAILED_PROMOTIONS:
        return Listed(rows, len(rows))
    latest_first = sorted(
        rows, key=lambda r: (r["promotion"]["requested_at"], r["promotion"]["id"]), reverse=True
    )
    ordered = sorted(latest_first, key=lambda r: not r["questioned"])
    return _first(ordered, DETAILED_PROMOTIONS)


def _move_row(move: AliasMoveFacts) -> dict[str, Any]:
    return {
        "move": move,
        "changed": display_time(move["changed_at"]),
        "out_of_band": move["source"] != "registry",
    }


def _incidents(facts: EvidenceFacts) -> dict[str, Any]:
    """The incidents table; past ``TABLE_ROWS``, the open ones first, then the most recent."""
    incidents = facts["incidents"]
    still_open = [i for i in incidents if not i["resolved_at"]]
    ordered = incidents
    if len(incidents) > TABLE_ROWS:
        ordered = still_open + [i for i in reversed(incidents) if i["resolved_at"]]
    return {
        "table": Listed([_incident_row(i) for i in ordered[:TABLE_ROWS]], len(incidents)),
        "open": len(still_open),
    }


def _incident_row(incident: IncidentFacts) -> dict[str, Any]:
    return {
        "incident": incident,
        "opened": display_time(incident["opened_at"]),
        "resolved": display_time(incident["resolved_at"]),
    }


def _reason(outcome: Outcome) -> str:
    """A control's reason, its list of problems cut at ``PROBLEMS_SHOWN``."""
    problems = outcome.reason.removesuffix(".").split("; ")
    if outcome.satisfied or len(problems) <= PROBLEMS_SHOWN:
        return outcome.reason
    listed = "; ".join(problems[:PROBLEMS_SHOWN])
    more = len(problems) - PROBLEMS_SHOWN
    return f"{listed}; and {more} more, all listed in the finding in {OSCAL_RESULTS}."


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
