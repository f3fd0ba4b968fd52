"""The bundle's CycloneDX 1.6 ML-BOM (``model/ml-bom.cdx.json``) and Markdown model card.

The ML-BOM has one ``machine-learning-model`` component per version in scope, hashed by its
model digest (the model_signing root digest, a SHA-256) with its files as nested ``file``
components, a ``modelCard`` naming its training data by reference and its evaluation metrics,
``data`` components for the datasets, base models as components of their own, and the
dependencies between them. Attestations and the model signature are external references by
their bundle path.

Both renderings state only what the facts hold: what the registry does not know (intended
use, users, limitations nobody recorded) is said to be unknown, never invented. The bytes are
a function of the facts: the serial number is a version-5 UUID over the registry and bundle.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from typing import Any

from compliance.evidence.controls import (
    MODEL_CARD,
    attestation_path,
    bare_digest,
    passed_evaluations,
    version_name,
)
from compliance.evidence.facts import (
    DatasetFacts,
    EvidenceFacts,
    ModelFacts,
    PromotionFacts,
    VersionFacts,
)

SPEC_VERSION = "1.6"
TOOL_NAME = "SecMLOps Registry"
PROPERTY_PREFIX = "secmlops"
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://secmlops.dev/evidence/ml-bom")
UNKNOWN_USE = (
    "Intended use, intended users and out-of-scope uses are not recorded in the registry; "
    "they are unknown to this card and must come from the model owner."
)
_SHA256 = re.compile(r"[0-9a-f]{64}")

Json = dict[str, Any]


# --- CycloneDX -----------------------------------------------------------------------------


def ml_bom(facts: EvidenceFacts) -> bytes:
    """The ML-BOM as CycloneDX 1.6 JSON bytes."""
    bundle = facts["bundle"]
    datasets = _datasets_by_digest(facts)
    version_refs = {
        bare_digest(v["model_digest"]): _model_ref(v)
        for v in facts["versions"]
        if v["model_digest"]
    }
    base_models = sorted(
        {d for v in facts["versions"] for d in _base_models(v) if d not in version_refs}
    )
    components = [_model_component(facts, v) for v in facts["versions"]]
    components += [_base_model_component(digest) for digest in base_models]
    components += [_data_component(facts, d) for d in datasets.values()]
    document: Json = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{_uuid(facts, 'ml-bom')}",
        "version": 1,
        "metadata": {
            "timestamp": bundle["generated_at"],
            "tools": {"components": [_tool(facts)]},
            "properties": _props(
                ("evidence-bundle", str(bundle["id"])),
                ("scope", bundle["scope"]),
                ("title", bundle["title"]),
                ("period-start", bundle["period_start"] or ""),
                ("period-end", bundle["period_end"] or ""),
            ),
        },
        "components": components,
        "dependencies": _dependencies(facts, version_refs, base_models, datasets),
    }
    return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"


def _tool(facts: EvidenceFacts) -> Json:
    tool: Json = {"type": "application", "name": TOOL_NAME}
    if url := facts["bundle"]["registry_url"]:
        tool["externalReferences"] = [{"type": "website", "url": url}]
    return tool


def _model_component(facts: EvidenceFacts, version: VersionFacts) -> Json:
    model = _model(facts, version["model"])
    component: Json = {
        "type": "machine-learning-model",
        "bom-ref": _model_ref(version),
        "name": version["model"],
        "version": str(version["version"]),
    }
    if version["author"]:
        component["authors"] = [{"name": version["author"]}]
    if version["description"]:
        component["description"] = version["description"]
    component["hashes"] = _hashes(bare_digest(version["model_digest"]))
    if not component["hashes"]:
        del component["hashes"]
    component["externalReferences"] = _references(facts, version)
    component["modelCard"] = _card(facts, version)
    component["properties"] = _props(
        ("run-id", version["run_id"]),
        ("source", version["source"]),
        ("created-at", version["created_at"] or ""),
        ("risk-tier", model["risk_tier"] if model else ""),
        ("scan-verdict", version["scan"]["verdict"]),
        *(("alias", alias) for alias in sorted(version["aliases"])),
    )
    if files := [_file_component(version, f) for f in version["files"]]:
        component["components"] = files
    return component


def _file_component(version: VersionFacts, file: dict[str, object]) -> Json:
    path = str(file.get("path", ""))
    component: Json = {
        "type": "file",
        "bom-ref": f"{_model_ref(version)}#{path}",
        "name": path,
    }
    if hashes := _hashes(str(file.get("sha256", ""))):
        component["hashes"] = hashes
    if "size" in file:
        component["properties"] = _props(("size", str(file["size"])))
    return component


def _references(facts: EvidenceFacts, version: VersionFacts) -> list[Json]:
    references: list[Json] = [{"type": "model-card", "url": MODEL_CARD}]
    if version["model_sig"]:
        references.append(
            {
                "type": "digital-signature",
                "url": version["model_sig"],
                "comment": "The registry's model_signing signature (Sigstore bundle).",
            }
        )
    for sha in sorted(set(version["attestations"])):
        references.append(
            {
                "type": "attestation",
                "url": attestation_path(facts, sha),
                "comment": f"{_predicate(facts, sha)}; envelope sha256 {sha}",
            }
        )
    return references


def _card(facts: EvidenceFacts, version: VersionFacts) -> Json:
    metrics = [
        {"type": str(name), "value": _metric_text(value), "slice": _evaluation_slice(evaluation)}
        for evaluation in version["evaluations"]
        for name, value in sorted(_metrics(evaluation).items())
    ]
    card: Json = {
        "bom-ref": f"{_model_ref(version)}#model-card",
        "modelParameters": {
            "datasets": [{"ref": _data_ref(d)} for d in sorted(_datasets(version))]
        },
        "considerations": {"technicalLimitations": _limitations(facts, version)},
        "properties": _props(
            ("intended-use", "unknown"),
            *(
                (f"evaluation:{i}", f"{e.get('result', '')} {e.get('attestation_sha256', '')}")
                for i, e in enumerate(version["evaluations"], start=1)
            ),
        ),
    }
    if not version["datasets"]:
        del card["modelParameters"]
    if metrics:
        card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    return card


def _limitations(facts: EvidenceFacts, version: VersionFacts) -> list[str]:
    """What a reader must know before relying on the model, as far as the facts tell."""
    notes = [UNKNOWN_USE]
    if not version["evaluations"]:
        notes.append("No evaluation of this version has been reported to the registry.")
    elif not passed_evaluations(version):
        notes.append("No reported evaluation of this version passed.")
    if version["scan"]["verdict"] != "clean":
        notes.append(f"The security scan verdict is {version['scan']['verdict']}, not clean.")
    datasets = _datasets_by_digest(facts)
    unproven = [d for d in _datasets(version) if not datasets[d]["has_provenance"]]
    if unproven:
        names = ", ".join(f"sha256:{d[:12]}…" for d in sorted(unproven))
        notes.append(f"Training data without verified provenance: {names}.")
    if not version["datasets"]:
        notes.append("No verified training provenance names the training data.")
    return notes


def _base_model_component(digest: str) -> Json:
    return {
        "type": "machine-learning-model",
        "bom-ref": _base_ref(digest),
        "name": f"base model sha256:{digest[:12]}",
        "hashes": _hashes(digest) or [],
        "properties": _props(("role", "base-model")),
    }


def _data_component(facts: EvidenceFacts, dataset: DatasetFacts) -> Json:
    name = dataset["names"][0] if dataset["names"] else f"dataset sha256:{dataset['digest'][:12]}"
    component: Json = {
        "type": "data",
        "bom-ref": _data_ref(dataset["digest"]),
        "name": name,
        "data": [{"type": "dataset", "name": name}],
        "properties": _props(
            ("provenance", "verified" if dataset["has_provenance"] else "none"),
            *(("name", n) for n in dataset["names"]),
            *(("source", s) for s in dataset["sources"]),
            *(("used-by", u) for u in dataset["used_by"]),
        ),
    }
    if hashes := _hashes(dataset["digest"]):
        component["hashes"] = hashes
    if dataset["provenance_attestations"]:
        component["externalReferences"] = [
            {
                "type": "attestation",
                "url": attestation_path(facts, sha),
                "comment": f"envelope sha256 {sha}",
            }
            for sha in dataset["provenance_attestations"]
        ]
    return component


def _dependencies(
    facts: EvidenceFacts,
    version_refs: dict[str, str],
    base_models: list[str],
    datasets: dict[str, DatasetFacts],
) -> list[Json]:
    dependencies = []
    for version in facts["versions"]:
        needs = [_data_ref(d) for d in _datasets(version)]
        needs += [version_refs.get(d, _base_ref(d)) for d in _base_models(version)]
        entry: Json = {"ref": _model_ref(version)}
        if needs:
            entry["dependsOn"] = sorted(set(needs) - {_model_ref(version)})
        dependencies.append(entry)
    dependencies += [{"ref": _base_ref(d)} for d in base_models]
    dependencies += [{"ref": _data_ref(d)} for d in datasets]
    return dependencies


def _datasets_by_digest(facts: EvidenceFacts) -> dict[str, DatasetFacts]:
    """Every dataset a version names, with what the facts say of it (a bare entry when the
    collector had nothing more), sorted by digest."""
    known = {bare_digest(d["digest"]): d for d in facts["datasets"]}
    for version in facts["versions"]:
        for digest in _datasets(version):
            known.setdefault(
                digest,
                {
                    "digest": digest,
                    "names": [],
                    "sources": [],
                    "has_provenance": False,
                    "provenance_attestations": [],
                    "used_by": [],
                },
            )
    return dict(sorted(known.items()))


def _datasets(version: VersionFacts) -> list[str]:
    return [bare_digest(digest) for digest in version["datasets"]]


def _base_models(version: VersionFacts) -> list[str]:
    return [bare_digest(digest) for digest in version["base_models"]]


def _model(facts: EvidenceFacts, name: str) -> ModelFacts | None:
    return next((m for m in facts["models"] if m["name"] == name), None)


def _predicate(facts: EvidenceFacts, sha: str) -> str:
    for attestation in facts["attestations"]:
        if attestation["envelope_sha256"] == sha:
            return attestation["predicate_type"]
    return "attestation"


def _metrics(evaluation: dict[str, object]) -> dict[str, object]:
    metrics = evaluation.get("metrics")
    return {str(k): v for k, v in metrics.items()} if isinstance(metrics, dict) else {}


def _metric_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _evaluation_slice(evaluation: dict[str, object]) -> str:
    sha = str(evaluation.get("attestation_sha256", ""))
    return f"evaluation {sha[:12]} ({evaluation.get('result', '')})" if sha else "evaluation"


def _hashes(digest: str) -> list[Json]:
    return [{"alg": "SHA-256", "content": digest}] if _SHA256.fullmatch(digest) else []


def _props(*pairs: tuple[str, str]) -> list[Json]:
    return [{"name": f"{PROPERTY_PREFIX}:{name}", "value": value} for name, value in pairs if value]


def _model_ref(version: VersionFacts) -> str:
    return f"model:{version['model']}/{version['version']}"


def _base_ref(digest: str) -> str:
    return f"base-model:sha256:{digest}"


def _data_ref(digest: str) -> str:
    return f"dataset:sha256:{digest}"


def _uuid(facts: EvidenceFacts, name: str) -> uuid.UUID:
    bundle = facts["bundle"]
    return uuid.uuid5(UUID_NAMESPACE, f"{bundle['registry_url']}|{bundle['id']}|{name}")


# --- model card ----------------------------------------------------------------------------


def model_card(facts: EvidenceFacts) -> str:
    """A Markdown model card for the versions in scope; every user-supplied text escaped."""
    bundle = facts["bundle"]
    lines = [
        f"# Model card: {_md(bundle['title'])}",
        "",
        f"Evidence bundle {bundle['id']}, generated {bundle['generated_at']} by "
        f"{_md(bundle['generated_by']) or 'the registry'} from the registry's records. It states "
        "what the registry holds evidence for; anything it does not know is marked unknown.",
        "",
    ]
    if not facts["versions"]:
        lines += ["No model version is in scope.", ""]
    for version in facts["versions"]:
        lines += _version_card(facts, version)
    return "\n".join(lines).rstrip("\n") + "\n"


def _version_card(facts: EvidenceFacts, version: VersionFacts) -> list[str]:
    model = _model(facts, version["model"])
    lines = [
        f"## {_md(version_name(version))}",
        "",
        f"- Model digest (model_signing root, sha256): {_code(version['model_digest'])}",
        f"- Author: {_md(version['author']) or 'unknown'}",
        f"- Registered: {version['created_at'] or 'unknown'}",
        f"- MLflow run: {_code(version['run_id'])}",
        f"- Source: {_code(version['source'])}",
        f"- Risk tier: {_md(model['risk_tier']) if model else 'unknown'}",
        f"- Description: {_md(version['description']) or 'none recorded'}",
        "",
        "### Intended use",
        "",
        UNKNOWN_USE,
        "",
    ]
    for section in (_training_data, _evaluation, _security, _approvals, _aliases):
        lines += section(facts, version)
    return lines


def _training_data(facts: EvidenceFacts, version: VersionFacts) -> list[str]:
    lines = ["### Training data", ""]
    if not version["datasets"]:
        return [*lines, "No verified training provenance names the training data.", ""]
    datasets = _datasets_by_digest(facts)
    lines += ["| dataset (sha256) | names | provenance |", "| --- | --- | --- |"]
    for digest in _datasets(version):
        dataset = datasets[digest]
        names = ", ".join(_md(n) for n in dataset["names"]) or "unknown"
        proven = "verified" if dataset["has_provenance"] else "**none**"
        lines.append(f"| {_code(digest)} | {names} | {proven} |")
    if version["base_models"]:
        lines += ["", "Base models: " + ", ".join(_code(d) for d in _base_models(version))]
    return [*lines, ""]


def _evaluation(facts: EvidenceFacts, version: VersionFacts) -> list[str]:
    lines = ["### Evaluation", ""]
    if not version["evaluations"]:
        return [*lines, "No evaluation has been reported for this version.", ""]
    lines += ["| result | metrics | signed test result (sha256) |", "| --- | --- | --- |"]
    for evaluation in version["evaluations"]:
        metrics = ", ".join(
            f"{_md(name)} = {_md(_metric_text(value))}"
            for name, value in sorted(_metrics(evaluation).items())
        )
        result = _md(str(evaluation.get("result", ""))) or "unknown"
        sha = str(evaluation.get("attestation_sha256", ""))
        lines.append(f"| {result} | {metrics or '—'} | {_code(sha)} |")
    return [*lines, ""]


def _security(facts: EvidenceFacts, version: VersionFacts) -> list[str]:
    scan = version["scan"]
    scanners = ", ".join(
        f"{_md(s.get('name', ''))} {_md(s.get('version', ''))}".strip() for s in scan["scanners"]
    )
    lines = [
        "### Security scan",
        "",
        f"Verdict **{_md(scan['verdict'])}**, scanned {scan['scanned_at'] or 'never'}"
        + (f" by {scanners}" if scanners else "")
        + (
            f"; attestation {_code(scan['attestation_sha256'])}."
            if scan["attestation_sha256"]
            else "."
        ),
        "",
    ]
    for finding in scan["findings"]:
        lines.append(
            f"- {_md(str(finding.get('severity', '')))}: {_md(str(finding.get('detail', '')))} "
            f"in {_code(str(finding.get('file', '')))} ({_md(str(finding.get('scanner', '')))})"
        )
    return [*lines, ""] if scan["findings"] else lines


def _approvals(facts: EvidenceFacts, version: VersionFacts) -> list[str]:
    promotions = _promotions_of(facts, version)
    lines = ["### Approvals and promotions", ""]
    if not promotions:
        return [*lines, "No promotion of this version was requested in the period.", ""]
    for promotion in promotions:
        lines.append(
            f"- Promotion #{promotion['id']} to {_md(promotion['alias'])}: "
            f"{_md(promotion['status'])}, requested by {_md(promotion['requested_by'])} "
            f"at {promotion['requested_at']}"
            + (" (break-glass)" if promotion["break_glass"] else "")
        )
        for approval in promotion["approvals"]:
            roles = ", ".join(_md(role) for role in approval["roles"]) or "no role"
            voided = f", voided {approval['voided_at']}" if approval["voided_at"] else ""
            lines.append(
                f"  - {_md(approval['decision'])} by {_md(approval['name'])} as {roles} at "
                f"{approval['decided_at']}{voided}"
            )
    return [*lines, ""]


def _aliases(facts: EvidenceFacts, version: VersionFacts) -> list[str]:
    aliases = ", ".join(_md(a) for a in sorted(version["aliases"]))
    return ["### Aliases", "", f"Points at this version now: {aliases or 'no alias'}.", ""]


def _promotions_of(facts: EvidenceFacts, version: VersionFacts) -> Iterable[PromotionFacts]:
    return [
        p
        for p in facts["promotions"]
        if p["model"] == version["model"] and p["version"] == version["version"]
    ]


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def _md(text: str) -> str:
    """User text as inert Markdown on one line: specials backslash-escaped, HTML defused."""
    flat = " ".join(text.split())
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", flat)
    return escaped.replace("&", "&amp;").replace("<", "&lt;")


def _code(text: str) -> str:
    """Inline code for digests and ids; anything else is escaped like prose."""
    if re.fullmatch(r"[A-Za-z0-9:/._@-]+", text):
        return f"`{text}`"
    return _md(text) or "—"
