"""OSCAL 1.1.2 assessment plan and assessment results of an evidence bundle.

The plan (``oscal/assessment-plan.json``) declares the control catalogue (``controls.py``) as
local objectives; the results (``oscal/assessment-results.json``) import it and hold one
result for the bundle's period: per control an observation pointing at the evidence files and
a finding ``satisfied`` or ``not-satisfied``.

Each evidence file appears twice, so that both plain readers and OSCAL tools find its hash: as
an observation's ``relevant-evidence`` (``href`` the bundle-relative path, a ``sha256``
property in the registry's namespace) and as a back-matter resource whose ``rlink`` carries
the hash in OSCAL's own ``hashes`` field. A file a rule names but the bundle lacks makes the
finding *not satisfied*.

Both documents are validated with compliance-trestle's models before they are written, and
serialised from the dicts built here, so the bytes depend on the facts alone: UUIDs are
version-5 UUIDs over the registry, the bundle and the element they name.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from trestle.oscal.assessment_plan import AssessmentPlan
from trestle.oscal.assessment_results import AssessmentResults

from compliance.evidence.controls import CONTROLS, Control, Outcome, assess
from compliance.evidence.facts import EvidenceFacts

OSCAL_VERSION = "1.1.2"
PLAN_HREF = "assessment-plan.json"  # next to the results, in oscal/
PROPERTY_NS = "https://secmlops.dev/ns/oscal"
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://secmlops.dev/evidence/oscal")

MEDIA_TYPES = (
    (".cdx.json", "application/vnd.cyclonedx+json"),
    (".intoto.jsonl", "application/vnd.in-toto+jsonl"),
    (".jsonl", "application/jsonl"),
    (".json", "application/json"),
    (".pdf", "application/pdf"),
    (".html", "text/html"),
    (".md", "text/markdown"),
    (".sig", "application/json"),
)

Json = dict[str, Any]


def assessment_documents(facts: EvidenceFacts, files: dict[str, str]) -> tuple[bytes, bytes]:
    """``(assessment-plan.json, assessment-results.json)`` for the bundle; ``files`` maps each
    bundle path already written to its sha256."""
    assessed = assess(facts)
    plan = _plan(facts)
    results = _results(facts, assessed, files)
    AssessmentPlan.model_validate(plan)
    AssessmentResults.model_validate(results)
    return _dump({"assessment-plan": plan}), _dump({"assessment-results": results})


def objective_id(control: Control) -> str:
    return f"{control.id}_obj"


def _plan(facts: EvidenceFacts) -> Json:
    system = _uuid(facts, "system")
    return {
        "uuid": _uuid(facts, "assessment-plan"),
        "metadata": _metadata(facts, f"Assessment plan: {facts['bundle']['title']}"),
        "import-ssp": {
            "href": f"#{system}",
            "remarks": "No system security plan ships in the bundle; the back-matter resource "
            "names the system assessed.",
        },
        "local-definitions": {
            "objectives-and-methods": [_objective(control) for control in CONTROLS],
            "activities": [
                {
                    "uuid": _uuid(facts, "activity", "examine"),
                    "title": "Examine the evidence bundle",
                    "description": "The registry evaluates each control's rule over the facts "
                    "the bundle states and checks that every evidence file the rule names is "
                    "in the bundle, with its sha256.",
                    "props": [{"name": "method", "value": "EXAMINE"}],
                }
            ],
        },
        "reviewed-controls": _reviewed_controls(),
        "back-matter": {"resources": [_system_resource(facts, system)]},
    }


def _objective(control: Control) -> Json:
    return {
        "control-id": control.id,
        "description": f"{control.framework} {control.label}: {control.title}",
        "props": _control_props(control),
        "parts": [{"id": objective_id(control), "name": "objective", "prose": control.statement}],
    }


def _system_resource(facts: EvidenceFacts, system: str) -> Json:
    bundle = facts["bundle"]
    resource: Json = {
        "uuid": system,
        "title": "SecMLOps Registry",
        "description": _line(
            f"The registry that produced evidence bundle {bundle['id']} ({bundle['title']})."
        ),
    }
    if bundle["registry_url"]:
        resource["rlinks"] = [{"href": bundle["registry_url"]}]
    return resource


def _results(
    facts: EvidenceFacts, assessed: list[tuple[Control, Outcome]], files: dict[str, str]
) -> Json:
    bundle = facts["bundle"]
    observations: list[Json] = []
    findings: list[Json] = []
    cited: set[str] = set()
    for control, facts_outcome in assessed:
        outcome = _with_files(facts_outcome, files)
        observation = _observation(facts, control, outcome, files)
        observations.append(observation)
        findings.append(_finding(facts, control, outcome, observation["uuid"]))
        cited.update(path for path in outcome.evidence if path in files)
    result: Json = {
        "uuid": _uuid(facts, "result"),
        "title": _line(f"Evidence bundle {bundle['id']}: {bundle['title']}"),
        "description": _line(
            f"Assessment of the {bundle['scope'].replace('_', ' ')} scope from the facts of "
            f"evidence bundle {bundle['id']}, generated {bundle['generated_at']}."
        ),
        "start": bundle["period_start"] or bundle["generated_at"],
        "end": bundle["period_end"] or bundle["generated_at"],
        "props": _bundle_props(facts),
        "reviewed-controls": _reviewed_controls(),
        "observations": observations,
        "findings": findings,
    }
    document: Json = {
        "uuid": _uuid(facts, "assessment-results"),
        "metadata": _metadata(facts, f"Assessment results: {bundle['title']}"),
        "import-ap": {"href": PLAN_HREF},
        "results": [result],
    }
    if cited:
        resources = [_evidence_resource(facts, path, files[path]) for path in sorted(cited)]
        document["back-matter"] = {"resources": resources}
    return document


def _with_files(outcome: Outcome, files: dict[str, str]) -> Outcome:
    missing = [path for path in outcome.evidence if path not in files]
    if not missing:
        return outcome
    reason = f"{outcome.reason} Evidence missing from the bundle: {', '.join(missing)}."
    return outcome._replace(satisfied=False, reason=reason)


def _observation(
    facts: EvidenceFacts, control: Control, outcome: Outcome, files: dict[str, str]
) -> Json:
    observation: Json = {
        "uuid": _uuid(facts, "observation", control.id),
        "title": _line(f"{control.label} {control.title}"),
        "description": outcome.reason,
        "props": _control_props(control),
        "methods": ["EXAMINE"],
        "types": ["control-objective"],
        "collected": facts["bundle"]["generated_at"],
    }
    evidence = [
        _relevant_evidence(facts, path, files[path]) for path in outcome.evidence if path in files
    ]
    if evidence:
        observation["relevant-evidence"] = evidence
    return observation


def _relevant_evidence(facts: EvidenceFacts, path: str, sha256: str) -> Json:
    return {
        "href": path,
        "description": f"{path}, sha256 {sha256}",
        "props": [{"name": "sha256", "ns": PROPERTY_NS, "value": sha256}],
        "links": [{"href": f"#{_uuid(facts, 'evidence', path)}", "rel": "reference"}],
    }


def _finding(facts: EvidenceFacts, control: Control, outcome: Outcome, observation: str) -> Json:
    state = "satisfied" if outcome.satisfied else "not-satisfied"
    return {
        "uuid": _uuid(facts, "finding", control.id),
        "title": _line(f"{control.framework} {control.label} {control.title}"),
        "description": outcome.reason,
        "props": _control_props(control),
        "target": {
            "type": "objective-id",
            "target-id": objective_id(control),
            "title": _line(f"{control.label} {control.title}"),
            "description": control.statement,
            "status": {"state": state, "reason": "pass" if outcome.satisfied else "fail"},
        },
        "related-observations": [{"observation-uuid": observation}],
    }


def _evidence_resource(facts: EvidenceFacts, path: str, sha256: str) -> Json:
    return {
        "uuid": _uuid(facts, "evidence", path),
        "title": path,
        "rlinks": [
            {
                "href": path,
                "media-type": _media_type(path),
                "hashes": [{"algorithm": "SHA-256", "value": sha256}],
            }
        ],
    }


def _metadata(facts: EvidenceFacts, title: str) -> Json:
    bundle = facts["bundle"]
    metadata: Json = {
        "title": _line(title),
        "last-modified": bundle["generated_at"],
        "version": f"evidence-bundle-{bundle['id']}",
        "oscal-version": OSCAL_VERSION,
        "props": _bundle_props(facts),
    }
    if preparer := _line(bundle["generated_by"], default=""):
        party = _uuid(facts, "party", preparer)
        metadata["roles"] = [{"id": "prepared-by", "title": "Prepared by"}]
        metadata["parties"] = [{"uuid": party, "type": "person", "name": preparer}]
        metadata["responsible-parties"] = [{"role-id": "prepared-by", "party-uuids": [party]}]
    return metadata


def _bundle_props(facts: EvidenceFacts) -> list[Json]:
    bundle = facts["bundle"]
    values = [("evidence-bundle", str(bundle["id"])), ("scope", bundle["scope"])]
    if bundle["model"]:
        values.append(("model", bundle["model"]))
    if bundle["version"] is not None:
        values.append(("model-version", str(bundle["version"])))
    return [{"name": name, "ns": PROPERTY_NS, "value": _line(value)} for name, value in values]


def _control_props(control: Control) -> list[Json]:
    return [
        {"name": "framework", "ns": PROPERTY_NS, "value": control.framework},
        {"name": "control-label", "ns": PROPERTY_NS, "value": control.label},
    ]


def _reviewed_controls() -> Json:
    return {
        "control-selections": [
            {"include-controls": [{"control-id": control.id} for control in CONTROLS]}
        ]
    }


def _uuid(facts: EvidenceFacts, *names: str) -> str:
    bundle = facts["bundle"]
    return str(
        uuid.uuid5(UUID_NAMESPACE, "|".join((bundle["registry_url"], str(bundle["id"]), *names)))
    )


def _line(text: str, *, default: str = "-") -> str:
    """One line, no surrounding blanks: what OSCAL's titles and property values allow."""
    return " ".join(text.split()) or default


def _media_type(path: str) -> str:
    for suffix, media_type in MEDIA_TYPES:
        if path.endswith(suffix):
            return media_type
    return "text/plain"


def _dump(document: Json) -> bytes:
    return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"
