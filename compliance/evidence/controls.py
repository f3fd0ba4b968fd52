"""The control catalogue an evidence bundle is assessed against, kept as data.

Each control names its framework, its id, what the registry's evidence shows for it, and a rule:
a small function over the bundle's facts that says whether the facts demonstrate the control,
why, and which bundle files carry the evidence. The OSCAL assessment results
(``oscal.py``) turn each outcome into an observation and a finding; the report lists them too.

A rule never gives the benefit of the doubt: nothing to show (no promotion in the period, no
evaluation, no log entry) is *not satisfied*, with a reason saying what is missing. The OSCAL
writer adds one more condition the facts alone cannot know: every file a rule names must be in
the bundle, with its hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from compliance.evidence.facts import (
    AliasMoveFacts,
    ApproverFacts,
    EvidenceFacts,
    IncidentFacts,
    PromotionFacts,
    VersionFacts,
)

# Files of the bundle the rules point at (docs/evidence.md, "What is inside").
REPORT_PDF = "report/evidence-report.pdf"
REPORT_HTML = "report/evidence-report.html"
ML_BOM = "model/ml-bom.cdx.json"
MODEL_CARD = "model/model-card.md"
ATTESTATION_INDEX = "attestations/index.json"
LOG_ENTRIES = "log/entries.jsonl"
LOG_CHECKPOINT = "log/checkpoint.txt"
LOG_INCLUSION_PROOFS = "log/inclusion-proofs.jsonl"
LOG_KEY = "keys/log-key.vkey"
# The machine-readable facts, as the bundle builder (``build.py``) writes them.
JSON_INVENTORY = "json/inventory.json"
JSON_VERSIONS = "json/versions.json"
JSON_DATASETS = "json/datasets.json"
JSON_PROMOTIONS = "json/approvals.json"  # the promotions, each with its approvals
JSON_ALIAS_HISTORY = "json/alias-history.json"
JSON_INCIDENTS = "json/incidents.json"
JSON_LOG_SUMMARY = "json/log-summary.json"

LOG_FILES = [LOG_ENTRIES, LOG_CHECKPOINT, LOG_INCLUSION_PROOFS, LOG_KEY, JSON_LOG_SUMMARY]

APPROVED_STATUSES = frozenset({"approved", "executing", "promoted"})
DECIDED_STATUSES = APPROVED_STATUSES | {"rejected"}
OUT_OF_BAND_INCIDENT = "out_of_band_alias"
BREAK_GLASS_INCIDENT = "break_glass"
INDEPENDENT_VALIDATOR_ROLE = "model_validator"


class Outcome(NamedTuple):
    """What a rule concludes: satisfied or not, why, and the bundle files that show it."""

    satisfied: bool
    reason: str
    evidence: list[str]


Rule = Callable[[EvidenceFacts], Outcome]


@dataclass(frozen=True)
class Control:
    framework: str
    id: str  # the OSCAL control id (a token: letters, digits, '.', '-')
    label: str  # as the framework writes it
    title: str
    statement: str  # what the registry's evidence shows for this control
    rule: Rule


def assess(facts: EvidenceFacts) -> list[tuple[Control, Outcome]]:
    """Every control of the catalogue with the outcome of its rule, in catalogue order."""
    return [(control, control.rule(facts)) for control in CONTROLS]


# --- helpers -------------------------------------------------------------------------------


def attestation_path(facts: EvidenceFacts, envelope_sha256: str) -> str:
    """The bundle file holding an attestation (the collector's name for it when known)."""
    for attestation in facts["attestations"]:
        if attestation["envelope_sha256"] == envelope_sha256:
            return attestation["file"]
    return f"attestations/{envelope_sha256}.intoto.jsonl"


def find_version(facts: EvidenceFacts, model: str, version: int) -> VersionFacts | None:
    for candidate in facts["versions"]:
        if candidate["model"] == model and candidate["version"] == version:
            return candidate
    return None


def active_approvals(promotion: PromotionFacts) -> list[ApproverFacts]:
    """Approving decisions that still count (not voided)."""
    return [
        approval
        for approval in promotion["approvals"]
        if approval["decision"] == "approve" and approval["voided_at"] is None
    ]


def requirement_roles(requirement: dict[str, object]) -> list[str]:
    """The roles a policy requirement accepts: ``{"role": key}`` as the contract states it, or
    ``{"roles": [key, …]}`` (any one of them) as policies snapshot it."""
    roles = requirement.get("roles")
    if isinstance(roles, list):
        return [str(role) for role in roles]
    return [str(requirement.get("role", ""))]


def quorum_shortfall(promotion: PromotionFacts) -> list[str]:
    """The requirements not covered by enough approvals, as ``"role (have/need)"``."""
    approvals = active_approvals(promotion)
    missing = []
    for requirement in promotion["required"]:
        roles, need = requirement_roles(requirement), _int(requirement.get("count", 1))
        have = sum(1 for approval in approvals if set(approval["roles"]) & set(roles))
        if have < need:
            missing.append(f"{' or '.join(roles)} ({have}/{need})")
    return missing


def gate_passed(gate: dict[str, object]) -> bool:
    """A gate's last evaluation held (``ok`` in the contract; ``passed`` as gates record it)."""
    return gate.get("ok", gate.get("passed")) is True


def failed_gates(promotion: PromotionFacts) -> list[str]:
    return [str(gate.get("gate", "?")) for gate in promotion["gates"] if not gate_passed(gate)]


def bare_digest(digest: str) -> str:
    """A sha256 as lowercase hex, whether or not it came as ``sha256:<hex>``."""
    return digest.removeprefix("sha256:").lower()


def sod_violations(facts: EvidenceFacts, promotion: PromotionFacts) -> list[str]:
    """Separation of duties: requester, the version's author and each approver are different
    people, and one person approves once."""
    version = find_version(facts, promotion["model"], promotion["version"])
    author = version["author"] if version else ""
    requester = promotion["requested_by"]
    problems: list[str] = []
    if author and requester == author:
        problems.append(f"{requester} requested the promotion of their own version")
    approvers = [approval["name"] for approval in active_approvals(promotion)]
    for name in sorted(set(approvers)):
        if name == requester:
            problems.append(f"{name} approved their own request")
        if author and name == author:
            problems.append(f"{name} approved their own version")
        if approvers.count(name) > 1:
            problems.append(f"{name} approved more than once")
    return problems


def promotion_name(promotion: PromotionFacts) -> str:
    model, version, alias = promotion["model"], promotion["version"], promotion["alias"]
    return f"promotion #{promotion['id']} ({model} v{version} → {alias})"


def passed_evaluations(version: VersionFacts) -> list[dict[str, object]]:
    return [e for e in version["evaluations"] if str(e.get("result", "")) == "PASSED"]


def version_name(version: VersionFacts) -> str:
    return f"{version['model']} v{version['version']}"


def _count(n: int, noun: str, plural: str = "") -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _all(n: int, noun: str, plural: str = "") -> str:
    return f"The only {noun}" if n == 1 else f"All {_count(n, noun, plural)}"


def _int(value: object) -> int:
    return value if isinstance(value, int) else int(str(value))


def _approved(facts: EvidenceFacts) -> list[PromotionFacts]:
    return [p for p in facts["promotions"] if p["status"] in APPROVED_STATUSES]


def _promotion_evidence(facts: EvidenceFacts, promotions: Iterable[PromotionFacts]) -> list[str]:
    paths = [JSON_PROMOTIONS]
    for promotion in promotions:
        if promotion["attestation_sha256"]:
            paths.append(attestation_path(facts, promotion["attestation_sha256"]))
        for approval in active_approvals(promotion):
            if approval["attestation_sha256"]:
                paths.append(attestation_path(facts, approval["attestation_sha256"]))
    return _unique(paths)


def _unique(paths: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(paths))


def _verdict(problems: list[str], ok: str) -> Outcome:
    """Satisfied when there are no problems (callers add the evidence)."""
    if problems:
        return Outcome(False, "; ".join(problems) + ".", [])
    return Outcome(True, ok, [])


def _with(outcome: Outcome, evidence: Iterable[str]) -> Outcome:
    return outcome._replace(evidence=_unique([*outcome.evidence, *evidence]))


def _out_of_band_incidents(facts: EvidenceFacts, move: AliasMoveFacts) -> list[IncidentFacts]:
    """Incidents raised for an alias move made outside a promotion. Such an incident names
    the version the alias was moved to; the registry's revert moves away from it."""
    versions = {move["to_version"], move["from_version"], None}
    return [
        incident
        for incident in facts["incidents"]
        if incident["kind"] == OUT_OF_BAND_INCIDENT
        and incident["model"] == move["model"]
        and incident["version"] in versions
    ]


def _move_problem(facts: EvidenceFacts, move: AliasMoveFacts) -> str | None:
    """Why an alias move is not accounted for, or None when it is."""
    what = (
        f"{move['model']} alias {move['alias']} moved {move['from_version'] or '-'} → "
        f"{move['to_version'] or '-'} at {move['changed_at']} ({move['source']})"
    )
    promotion = next((p for p in facts["promotions"] if p["id"] == move["promotion_id"]), None)
    if move["source"] == "registry" and promotion and promotion["status"] == "promoted":
        if not promotion["break_glass"] or _break_glass_reviewed(facts, promotion):
            return None
        return f"{what}: break-glass promotion #{promotion['id']} not reviewed"
    incidents = _out_of_band_incidents(facts, move)
    if not incidents:
        return f"{what} without an approved promotion or an incident"
    still_open = [f"#{i['id']}" for i in incidents if i["resolved_at"] is None]
    if still_open:
        return f"{what}: incident {', '.join(still_open)} still open"
    return None


# --- rules ---------------------------------------------------------------------------------


def alias_moves_through_promotions(facts: EvidenceFacts) -> Outcome:
    """Every alias move came through an approved promotion, or was an out-of-band move (or a
    break-glass promotion) raised as an incident that has been resolved."""
    evidence = [JSON_ALIAS_HISTORY, JSON_INCIDENTS, *_promotion_evidence(facts, _approved(facts))]
    moves = facts["alias_history"]
    if not moves:
        return Outcome(False, "No alias moved in the period: no change to show.", evidence)
    problems = [p for p in (_move_problem(facts, move) for move in moves) if p]
    ok = f"{_all(len(moves), 'alias move')} came through an approved promotion or a resolved "
    ok += "incident."
    return _with(_verdict(problems, ok), evidence)


def executed_changes_controlled(facts: EvidenceFacts) -> Outcome:
    """Every promoted change had its quorum, passing gates and approvals bound to its digest;
    a break-glass promotion counts once its review incident is resolved."""
    promoted = [p for p in facts["promotions"] if p["status"] == "promoted"]
    evidence = _promotion_evidence(facts, promoted)
    if not promoted:
        return Outcome(False, "No promotion was executed in the period.", evidence)
    problems: list[str] = []
    for promotion in promoted:
        if promotion["break_glass"]:
            if not _break_glass_reviewed(facts, promotion):
                problems.append(f"{promotion_name(promotion)} was break-glass, not yet reviewed")
            continue
        problems.extend(_execution_problems(promotion))
    ok = f"{_all(len(promoted), 'executed promotion')} met its policy's quorum and gates."
    return _with(_verdict(problems, ok), evidence)


def _execution_problems(promotion: PromotionFacts) -> list[str]:
    name = promotion_name(promotion)
    problems: list[str] = []
    if shortfall := quorum_shortfall(promotion):
        problems.append(f"{name} lacks approvals: {', '.join(shortfall)}")
    if failed := failed_gates(promotion):
        problems.append(f"{name} had failing gates: {', '.join(failed)}")
    if not promotion["gates"]:
        problems.append(f"{name} has no gate evaluation recorded")
    unbound = [
        a["name"]
        for a in active_approvals(promotion)
        if a["model_digest"] != promotion["model_digest"]
    ]
    if unbound:
        problems.append(f"{name} has approvals not bound to its digest: {', '.join(unbound)}")
    return problems


def _break_glass_reviewed(facts: EvidenceFacts, promotion: PromotionFacts) -> bool:
    reviews = [
        incident
        for incident in facts["incidents"]
        if incident["kind"] == BREAK_GLASS_INCIDENT
        and incident["model"] == promotion["model"]
        and incident["version"] == promotion["version"]
    ]
    return bool(reviews) and all(incident["resolved_at"] is not None for incident in reviews)


def separation_of_duties(facts: EvidenceFacts) -> Outcome:
    """Requester, author and approvers of every approved promotion are different people."""
    approved = _approved(facts)
    evidence = [JSON_VERSIONS, *_promotion_evidence(facts, approved)]
    if not approved:
        return Outcome(
            False, "No approved promotion in the period: no duties to compare.", evidence
        )
    problems: list[str] = []
    for promotion in approved:
        problems.extend(
            f"{promotion_name(promotion)}: {p}" for p in sod_violations(facts, promotion)
        )
        if not promotion["break_glass"] and not active_approvals(promotion):
            problems.append(f"{promotion_name(promotion)} has no approval")
    ok = f"{_all(len(approved), 'approved promotion')} had a requester, author and approvers "
    ok += "who are different people."
    return _with(_verdict(problems, ok), evidence)


def human_approvals_bound_to_digest(facts: EvidenceFacts) -> Outcome:
    """Every approved promotion has approvals by named people, each bound to the promoted
    digest and signed by the registry as an attestation."""
    approved = [p for p in _approved(facts) if not p["break_glass"]]
    evidence = _promotion_evidence(facts, approved)
    if not approved:
        return Outcome(False, "No promotion was approved by people in the period.", evidence)
    problems: list[str] = []
    for promotion in approved:
        name, approvals = promotion_name(promotion), active_approvals(promotion)
        if not approvals:
            problems.append(f"{name} has no approval")
        for approval in approvals:
            if approval["model_digest"] != promotion["model_digest"]:
                problems.append(f"{name}: {approval['name']}'s approval is for another digest")
            if not approval["attestation_sha256"]:
                problems.append(f"{name}: {approval['name']}'s approval is not attested")
    ok = f"{_all(len(approved), 'approved promotion')} had signed approvals bound to its digest."
    return _with(_verdict(problems, ok), evidence)


def evaluated_and_scanned(facts: EvidenceFacts) -> Outcome:
    """Every version in scope passed an evaluation and its files were scanned clean."""
    versions = facts["versions"]
    evidence = [JSON_VERSIONS, *_evaluation_evidence(facts), *_scan_evidence(facts)]
    if not versions:
        return Outcome(False, "No model version in scope.", evidence)
    problems: list[str] = []
    for version in versions:
        if not passed_evaluations(version):
            problems.append(f"{version_name(version)} has no passed evaluation")
        if version["scan"]["verdict"] != "clean":
            problems.append(f"{version_name(version)} scan verdict is {version['scan']['verdict']}")
    ok = f"{_all(len(versions), 'version')} passed an evaluation and had a clean scan."
    return _with(_verdict(problems, ok), evidence)


def verified_evaluations(facts: EvidenceFacts) -> Outcome:
    """Every version in scope has a passed evaluation reported as a signed test result."""
    versions = facts["versions"]
    evidence = [JSON_VERSIONS, *_evaluation_evidence(facts)]
    if not versions:
        return Outcome(False, "No model version in scope.", evidence)
    problems = [
        f"{version_name(v)} has no signed passed evaluation"
        for v in versions
        if not any(e.get("attestation_sha256") for e in passed_evaluations(v))
    ]
    ok = f"{_all(len(versions), 'version')} had a signed, passed evaluation."
    return _with(_verdict(problems, ok), evidence)


def _evaluation_evidence(facts: EvidenceFacts) -> list[str]:
    """The signed test results of the passed evaluations."""
    return [
        attestation_path(facts, str(evaluation["attestation_sha256"]))
        for version in facts["versions"]
        for evaluation in passed_evaluations(version)
        if evaluation.get("attestation_sha256")
    ]


def _scan_evidence(facts: EvidenceFacts) -> list[str]:
    return [
        attestation_path(facts, version["scan"]["attestation_sha256"])
        for version in facts["versions"]
        if version["scan"]["attestation_sha256"]
    ]


def log_with_checkpoint(facts: EvidenceFacts) -> Outcome:
    """The governance-log entries about the scope are in the bundle with a signed checkpoint
    and an inclusion proof each."""
    log = facts["log"]
    problems: list[str] = []
    if log["entries"] <= 0:
        problems.append("The bundle carries no log entry")
    if log["tree_size"] <= 0 or not log["root_hash"]:
        problems.append("There is no checkpoint to prove entries against")
    ok = f"{_count(log['entries'], 'log entry', 'log entries')}, each provable against the "
    ok += "checkpoint of size "
    ok += f"{log['tree_size']}."
    return _with(_verdict(problems, ok), LOG_FILES)


def log_verified(facts: EvidenceFacts) -> Outcome:
    """Log entries are present and the registry's last full verification of the log held."""
    outcome = log_with_checkpoint(facts)
    last = facts["log"]["last_verification"]
    problems = [] if outcome.satisfied else [outcome.reason.rstrip(".")]
    finished = last.get("finished_at") if last else None
    if last is None:
        problems.append("The log has never been verified end to end")
    elif last.get("ok") is not True:
        problems.append(f"The last log verification ({finished}) failed")
    if problems:
        return Outcome(False, "; ".join(problems) + ".", outcome.evidence)
    return outcome._replace(
        reason=f"{outcome.reason} The last full verification ({finished}) held."
    )


def events_logged(facts: EvidenceFacts) -> Outcome:
    """Governance events of the scope are recorded in the log, with proofs."""
    outcome = log_with_checkpoint(facts)
    if not facts["event_counts"]:
        return outcome._replace(satisfied=False, reason="No governance event is recorded.")
    kinds = ", ".join(f"{k}: {n}" for k, n in sorted(facts["event_counts"].items()))
    return outcome._replace(reason=f"{outcome.reason} Events: {kinds}.")


def documented(facts: EvidenceFacts) -> Outcome:
    """The technical documentation exists for every version in scope: the report, the ML-BOM,
    the model card, each version identified by its digest and file manifest."""
    versions = facts["versions"]
    evidence = [REPORT_PDF, REPORT_HTML, ML_BOM, MODEL_CARD, JSON_VERSIONS]
    if not versions:
        return Outcome(False, "No model version in scope to document.", evidence)
    problems: list[str] = []
    for version in versions:
        if not version["model_digest"]:
            problems.append(f"{version_name(version)} has not been hashed")
        elif not version["files"]:
            problems.append(f"{version_name(version)} has no file manifest")
    ok = f"Report, ML-BOM and model card document {_count(len(versions), 'version')} by digest."
    return _with(_verdict(problems, ok), evidence)


def policies_and_roles(facts: EvidenceFacts) -> Outcome:
    """Quality management: every promotion followed a snapshotted policy, and every model in
    scope has people assigned to the security roles."""
    promotions = facts["promotions"]
    evidence = [JSON_INVENTORY, *_promotion_evidence(facts, promotions)]
    if not promotions:
        return Outcome(False, "No promotion in the period: no policy was applied.", evidence)
    problems = [
        f"{promotion_name(p)} has no policy requirement recorded"
        for p in promotions
        if not p["required"] and not p["break_glass"]
    ]
    problems += [
        f"model {m['name']} has no role holder" for m in facts["models"] if not m["role_holders"]
    ]
    ok = f"{_all(len(promotions), 'promotion')} followed a snapshotted policy; roles are assigned."
    return _with(_verdict(problems, ok), evidence)


def deployed_through_promotions(facts: EvidenceFacts) -> Outcome:
    """Every alias now pointing at a version in scope was set by an executed promotion."""
    in_scope = {(v["model"], v["version"]) for v in facts["versions"]}
    deployed = sorted(
        (model["name"], alias, version)
        for model in facts["models"]
        for alias, version in model["aliases"].items()
        if (model["name"], version) in in_scope
    )
    promoted = {
        (p["model"], p["alias"], p["version"]): p
        for p in facts["promotions"]
        if p["status"] == "promoted"
    }
    evidence = [JSON_INVENTORY, JSON_ALIAS_HISTORY, *_promotion_evidence(facts, promoted.values())]
    if not deployed:
        return Outcome(False, "No alias points at a version in scope: nothing deployed.", evidence)
    problems = [
        f"{model} alias {alias} → v{version} was not set by a promotion"
        for model, alias, version in deployed
        if (model, alias, version) not in promoted
    ]
    ok = f"{_all(len(deployed), 'deployed alias', 'deployed aliases')} came from an executed "
    ok += "promotion."
    return _with(_verdict(problems, ok), evidence)


def monitored(facts: EvidenceFacts) -> Outcome:
    """Every version in scope has been scanned, and no incident is left open."""
    evidence = [JSON_INCIDENTS, JSON_VERSIONS, *_scan_evidence(facts)]
    if not facts["versions"]:
        return Outcome(False, "No model version in scope.", evidence)
    problems = [
        f"{version_name(v)} was not scanned"
        for v in facts["versions"]
        if v["scan"]["scanned_at"] is None or v["scan"]["verdict"] in {"pending", "unknown"}
    ]
    problems += [
        f"incident #{i['id']} ({i['kind']}) is open"
        for i in facts["incidents"]
        if i["resolved_at"] is None
    ]
    ok = f"Every version scanned; {_count(len(facts['incidents']), 'incident')}, none open."
    return _with(_verdict(problems, ok), evidence)


def data_provenance(facts: EvidenceFacts) -> Outcome:
    """Every version names its training data, and each dataset has verified provenance."""
    datasets = {bare_digest(d["digest"]): d for d in facts["datasets"]}
    evidence = [JSON_DATASETS, *_provenance_evidence(facts)]
    if not facts["versions"]:
        return Outcome(False, "No model version in scope.", evidence)
    problems: list[str] = []
    for version in facts["versions"]:
        if not version["datasets"]:
            problems.append(f"{version_name(version)} names no training dataset")
        for digest in map(bare_digest, version["datasets"]):
            dataset = datasets.get(digest)
            if dataset is None or not dataset["has_provenance"]:
                problems.append(f"dataset sha256:{digest[:12]}… has no verified provenance")
    ok = f"{_all(len(datasets), 'training dataset')} had verified provenance."
    return _with(_verdict(_unique(problems), ok), evidence)


def _provenance_evidence(facts: EvidenceFacts) -> list[str]:
    return [
        attestation_path(facts, sha)
        for dataset in facts["datasets"]
        for sha in dataset["provenance_attestations"]
    ]


def inventoried(facts: EvidenceFacts) -> Outcome:
    """The models in scope are inventoried with a risk tier, each version by its digest."""
    evidence = [JSON_INVENTORY, JSON_VERSIONS, ML_BOM]
    if not facts["models"]:
        return Outcome(False, "No registered model in scope.", evidence)
    problems = [
        f"model {m['name']} has no risk tier" for m in facts["models"] if not m["risk_tier"]
    ]
    problems += [
        f"{version_name(v)} has no digest" for v in facts["versions"] if not v["model_digest"]
    ]
    ok = f"{_count(len(facts['models']), 'model')} and {_count(len(facts['versions']), 'version')} "
    ok += "inventoried with risk tier and digest."
    return _with(_verdict(problems, ok), evidence)


def independent_validation(facts: EvidenceFacts) -> Outcome:
    """Every approved promotion was approved by a Model Validator who neither built the
    version nor asked for its promotion."""
    approved = [p for p in _approved(facts) if not p["break_glass"]]
    evidence = [JSON_VERSIONS, *_promotion_evidence(facts, approved)]
    if not approved:
        return Outcome(False, "No approved promotion: no independent validation shown.", evidence)
    problems = [
        f"{promotion_name(p)} has no independent {INDEPENDENT_VALIDATOR_ROLE} approval"
        for p in approved
        if not _independent_validators(facts, p)
    ]
    ok = f"{_all(len(approved), 'approved promotion')} had an independent validator's approval."
    return _with(_verdict(problems, ok), evidence)


def _independent_validators(facts: EvidenceFacts, promotion: PromotionFacts) -> list[str]:
    version = find_version(facts, promotion["model"], promotion["version"])
    involved = {promotion["requested_by"], version["author"] if version else ""}
    return [
        approval["name"]
        for approval in active_approvals(promotion)
        if INDEPENDENT_VALIDATOR_ROLE in approval["roles"] and approval["name"] not in involved
    ]


def go_no_go_decided(facts: EvidenceFacts) -> Outcome:
    """Promotion requests end in a recorded go/no-go decision, and every go met its policy."""
    decided = [p for p in facts["promotions"] if p["status"] in DECIDED_STATUSES]
    evidence = _promotion_evidence(facts, decided)
    if not decided:
        return Outcome(False, "No go/no-go decision was recorded in the period.", evidence)
    problems: list[str] = []
    for promotion in decided:
        if promotion["status"] == "promoted" and not promotion["break_glass"]:
            problems.extend(_execution_problems(promotion))
    go = sum(1 for p in decided if p["status"] != "rejected")
    ok = f"{_count(len(decided), 'decision')} recorded ({go} go, {len(decided) - go} no-go)."
    return _with(_verdict(problems, ok), evidence)


# --- the catalogue -------------------------------------------------------------------------

SOC2 = "SOC 2 (2017 TSC)"
ISO27001 = "ISO/IEC 27001:2022"
ISO42001 = "ISO/IEC 42001:2023"
EU_AI_ACT = "EU AI Act (Regulation (EU) 2024/1689)"
NIST_AI_RMF = "NIST AI RMF 1.0"

CONTROLS: tuple[Control, ...] = (
    Control(
        SOC2,
        "soc2-cc8.1",
        "CC8.1",
        "Change management",
        "Model changes reach production aliases only through approved promotions; aliases "
        "moved behind the registry's back are raised as incidents and resolved.",
        alias_moves_through_promotions,
    ),
    Control(
        ISO27001,
        "iso27001-a.5.3",
        "A.5.3",
        "Segregation of duties",
        "The requester of a promotion, the author of the version and its approvers are "
        "different people.",
        separation_of_duties,
    ),
    Control(
        ISO27001,
        "iso27001-a.8.15",
        "A.8.15",
        "Logging",
        "Governance events are kept in an append-only Merkle log with signed checkpoints, and "
        "the log verifies.",
        log_verified,
    ),
    Control(
        ISO27001,
        "iso27001-a.8.32",
        "A.8.32",
        "Change management",
        "Each executed promotion met its policy's quorum and security gates, with approvals "
        "bound to the promoted model digest.",
        executed_changes_controlled,
    ),
    Control(
        ISO42001,
        "iso42001-a.6.2.4",
        "A.6.2.4",
        "AI system verification and validation",
        "Each version carries a passed evaluation reported as a signed in-toto test result.",
        verified_evaluations,
    ),
    Control(
        ISO42001,
        "iso42001-a.6.2.5",
        "A.6.2.5",
        "AI system deployment",
        "Each deployed alias points at a version through an executed, approved promotion.",
        deployed_through_promotions,
    ),
    Control(
        ISO42001,
        "iso42001-a.6.2.6",
        "A.6.2.6",
        "AI system operation and monitoring",
        "Versions are scanned, alias changes are watched, and incidents are tracked to resolution.",
        monitored,
    ),
    Control(
        ISO42001,
        "iso42001-a.6.2.7",
        "A.6.2.7",
        "AI system technical documentation",
        "The bundle documents each version: report, CycloneDX ML-BOM and model card, by digest.",
        documented,
    ),
    Control(
        ISO42001,
        "iso42001-a.6.2.8",
        "A.6.2.8",
        "AI system recording of event logs",
        "Governance events about the scope are logged, with inclusion proofs against a signed "
        "checkpoint.",
        events_logged,
    ),
    Control(
        ISO42001,
        "iso42001-a.7.5",
        "A.7.5",
        "Data provenance",
        "Training datasets are named by digest in verified training provenance and have "
        "verified provenance of their own.",
        data_provenance,
    ),
    Control(
        EU_AI_ACT,
        "eu-ai-act-art.11",
        "Art. 11",
        "Technical documentation",
        "The report follows Annex IV and, with the ML-BOM and model card, documents each version.",
        documented,
    ),
    Control(
        EU_AI_ACT,
        "eu-ai-act-art.12",
        "Art. 12",
        "Record-keeping",
        "Events are logged automatically in a tamper-evident log, with proofs in the bundle.",
        log_with_checkpoint,
    ),
    Control(
        EU_AI_ACT,
        "eu-ai-act-art.14",
        "Art. 14",
        "Human oversight",
        "People in the required roles approve each promotion; each decision is signed and bound "
        "to the exact model digest.",
        human_approvals_bound_to_digest,
    ),
    Control(
        EU_AI_ACT,
        "eu-ai-act-art.15",
        "Art. 15",
        "Accuracy, robustness and cybersecurity",
        "Each version passed its evaluation and its files were scanned clean.",
        evaluated_and_scanned,
    ),
    Control(
        EU_AI_ACT,
        "eu-ai-act-art.17",
        "Art. 17",
        "Quality management system",
        "Promotions follow snapshotted policies, and security roles are assigned per model.",
        policies_and_roles,
    ),
    Control(
        NIST_AI_RMF,
        "nist-ai-rmf-govern-1.6",
        "GOVERN 1.6",
        "AI system inventory",
        "Models are inventoried with risk tier, versions and digests.",
        inventoried,
    ),
    Control(
        NIST_AI_RMF,
        "nist-ai-rmf-measure-1.3",
        "MEASURE 1.3",
        "Independent assessment",
        "A Model Validator independent of the developer and the requester approves each promotion.",
        independent_validation,
    ),
    Control(
        NIST_AI_RMF,
        "nist-ai-rmf-manage-1.1",
        "MANAGE 1.1",
        "Go/no-go decision",
        "Every promotion request ends in a recorded decision; each go met its policy.",
        go_no_go_decided,
    ),
)
