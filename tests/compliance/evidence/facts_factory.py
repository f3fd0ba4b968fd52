"""Evidence facts for the renderer tests, as the collector would state them.

``realistic_facts()``: fraud-detector over the first half of 2026, two versions. v2 was
trained on a dataset with verified provenance and one without, from a base model; v3 on the
proven dataset alone. v3 went to ``production`` through promotion #11, approved by a Model
Validator and a Risk Owner; promotion #12 (v2 → staging) was rejected. Someone set ``staging``
in MLflow behind the registry's back; the incident it raised (#5) was resolved and the
registry rolled the alias back. Both versions were scanned clean and passed evaluations.

``bare_facts()``: one registered version and nothing else: no evaluation, no scan yet, no
promotion, no dataset, an empty log extract.

``large_facts(versions, attestations)``: the realistic period scaled up to the evidence
benchmark's size (``bench/bench_evidence.py``): many versions of one model, each with a
training provenance, a scan result and signed evaluations, promotions of every tenth version,
shared datasets, and a lineage graph too big to draw whole.

``bundle_files(facts)``: every file a complete bundle for those facts would hold, with a fake
sha256 each, as the bundle builder passes them to the OSCAL writer.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta

from compliance.evidence.facts import (
    AliasMoveFacts,
    ApproverFacts,
    AttestationFacts,
    DatasetFacts,
    EvidenceFacts,
    LineageEdgeFacts,
    LineageFacts,
    LineageNodeFacts,
    PromotionFacts,
    VersionFacts,
)

GENERATED_AT = "2026-07-01T09:30:00.000000Z"
MODEL = "fraud-detector"
SLSA = "https://slsa.dev/provenance/v1"
TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
APPROVAL = "https://secmlops.dev/attestation/approval/v1"
PROMOTION = "https://secmlops.dev/attestation/promotion/v1"


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


DIGEST_V2 = sha("model v2")
DIGEST_V3 = sha("model v3")
DATASET_PROVEN = sha("transactions-2025")
DATASET_UNPROVEN = sha("chargebacks-scraped")
BASE_MODEL = sha("tabular-foundation-base")

ATT_TRAIN_V2 = sha("slsa v2")
ATT_TRAIN_V3 = sha("slsa v3")
ATT_EVAL_V2 = sha("eval v2")
ATT_EVAL_V3 = sha("eval v3")
ATT_EVAL_V3_FAILED = sha("eval v3 first try")
ATT_SCAN_V2 = sha("scan v2")
ATT_SCAN_V3 = sha("scan v3")
ATT_DATASET = sha("dataset build")
ATT_APPROVE_VERA = sha("approval vera")
ATT_APPROVE_RITA = sha("approval rita")
ATT_REJECT_VERA = sha("rejection vera")
ATT_PROMOTION_11 = sha("promotion 11")


def _attestation(
    envelope: str, predicate: str, subject: str, signer: str, kind: str = "key"
) -> AttestationFacts:
    return {
        "file": f"attestations/{envelope}.intoto.jsonl",
        "envelope_sha256": envelope,
        "format": "dsse",
        "predicate_type": predicate,
        "subjects": [{"name": "subject", "digest": {"sha256": subject}}],
        "signer": {"kind": kind, "keyid": f"key-{signer}", "name": signer},
        "verification_status": "verified",
        "received_at": "2026-02-01T10:00:00.000000Z",
    }


def _version(number: int, digest: str, **changes: object) -> VersionFacts:
    version: VersionFacts = {
        "model": MODEL,
        "version": number,
        "author": "dana",
        "source": f"s3://mlflow-artifacts/7/run{number}/artifacts/model",
        "run_id": f"run{number}aa{number}bb",
        "created_at": f"2026-0{number}-10T08:00:00.000000Z",
        "description": f"Gradient boosting, feature set {number}",
        "model_digest": digest,
        "files": [
            {"path": "MLmodel", "sha256": sha(f"MLmodel {number}"), "size": 512},
            {"path": "model.skops", "sha256": sha(f"weights {number}"), "size": 90_000},
        ],
        "datasets": [],
        "base_models": [],
        "aliases": [],
        "scan": {
            "verdict": "clean",
            "scanners": [{"name": "modelscan", "version": "0.8.8"}],
            "findings": [],
            "scanned_at": f"2026-0{number}-10T08:05:00.000000Z",
            "attestation_sha256": "",
        },
        "attestations": [],
        "evaluations": [],
        "model_sig": f"model/{MODEL}/{number}/model.sig",
    }
    version.update(changes)  # type: ignore[typeddict-item]
    return version


def _approval(
    name: str, role: str, digest: str, attestation: str, **changes: object
) -> ApproverFacts:
    approval: ApproverFacts = {
        "name": name,
        "decision": "approve",
        "roles": [role],
        "comment": "",
        "decided_at": "2026-03-02T14:00:00.000000Z",
        "model_digest": digest,
        "attestation_sha256": attestation,
        "voided_at": None,
    }
    approval.update(changes)  # type: ignore[typeddict-item]
    return approval


def realistic_facts() -> EvidenceFacts:
    v2 = _version(
        2,
        DIGEST_V2,
        datasets=[DATASET_PROVEN, DATASET_UNPROVEN],
        base_models=[BASE_MODEL],
        attestations=[ATT_TRAIN_V2, ATT_EVAL_V2, ATT_SCAN_V2, ATT_REJECT_VERA],
        evaluations=[
            {
                "result": "PASSED",
                "metrics": {"auc": 0.91, "latency_ms": 38},
                "attestation_sha256": ATT_EVAL_V2,
                "received_at": "2026-02-11T08:00:00.000000Z",
            }
        ],
    )
    v2["scan"]["attestation_sha256"] = ATT_SCAN_V2
    v3 = _version(
        3,
        DIGEST_V3,
        description="Retrained on 2025 transactions <b>with</b> drift fixes",
        datasets=[DATASET_PROVEN],
        aliases=["production"],
        attestations=[
            ATT_TRAIN_V3,
            ATT_EVAL_V3_FAILED,
            ATT_EVAL_V3,
            ATT_SCAN_V3,
            ATT_APPROVE_VERA,
            ATT_APPROVE_RITA,
            ATT_PROMOTION_11,
        ],
        evaluations=[
            {
                "result": "FAILED",
                "metrics": {"auc": 0.84},
                "attestation_sha256": ATT_EVAL_V3_FAILED,
                "received_at": "2026-03-01T08:00:00.000000Z",
            },
            {
                "result": "PASSED",
                "metrics": {"auc": 0.93, "latency_ms": 31, "robust_accuracy": 0.88},
                "attestation_sha256": ATT_EVAL_V3,
                "received_at": "2026-03-01T12:00:00.000000Z",
            },
        ],
    )
    v3["scan"]["attestation_sha256"] = ATT_SCAN_V3
    return {
        "bundle": {
            "id": 42,
            "scope": "registered_model",
            "title": f"{MODEL}, 2026-01-01 to 2026-07-01",
            "model": MODEL,
            "version": None,
            "period_start": "2026-01-01T00:00:00.000000Z",
            "period_end": "2026-07-01T00:00:00.000000Z",
            "generated_at": GENERATED_AT,
            "generated_by": "Carla Compliance",
            "registry_url": "https://registry.example.org",
            "log_origin": "registry.example.org/governance-log",
        },
        "models": [
            {
                "name": MODEL,
                "description": "Scores card transactions for fraud",
                "risk_tier": "high",
                "aliases": {"production": 3},
                "versions": [2, 3],
                "role_holders": [
                    {"role": "model_validator", "user": "vera"},
                    {"role": "risk_owner", "user": "rita"},
                    {"role": "model_developer", "user": "dana"},
                    {"role": "mlops_engineer", "user": "paul"},
                ],
            }
        ],
        "versions": [v2, v3],
        "datasets": [
            {
                "digest": DATASET_PROVEN,
                "names": ["transactions-2025"],
                "sources": ["s3://lake/transactions/2025/"],
                "has_provenance": True,
                "provenance_attestations": [ATT_DATASET],
                "used_by": [f"{MODEL}/2", f"{MODEL}/3"],
            },
            {
                "digest": DATASET_UNPROVEN,
                "names": ["chargebacks <scraped>"],
                "sources": [],
                "has_provenance": False,
                "provenance_attestations": [],
                "used_by": [f"{MODEL}/2"],
            },
        ],
        "promotions": [
            {
                "id": 11,
                "model": MODEL,
                "version": 3,
                "alias": "production",
                "status": "promoted",
                "risk_tier": "high",
                "break_glass": False,
                "requested_by": "paul",
                "requested_at": "2026-03-02T09:00:00.000000Z",
                "reason": "Quarterly retrain",
                "model_digest": DIGEST_V3,
                "required": [
                    {"role": "model_validator", "count": 1},
                    {"role": "risk_owner", "count": 1},
                ],
                "gates": [
                    {"gate": "digest", "ok": True, "detail": "digest unchanged"},
                    {"gate": "require_scan_clean", "ok": True, "detail": "clean"},
                    {"gate": "require_evaluation_passed", "ok": True, "detail": "PASSED"},
                ],
                "approvals": [
                    _approval("vera", "model_validator", DIGEST_V3, ATT_APPROVE_VERA),
                    _approval(
                        "rita",
                        "risk_owner",
                        DIGEST_V3,
                        ATT_APPROVE_RITA,
                        comment="Residual risk accepted",
                    ),
                ],
                "executed_at": "2026-03-02T15:00:00.000000Z",
                "attestation_sha256": ATT_PROMOTION_11,
            },
            {
                "id": 12,
                "model": MODEL,
                "version": 2,
                "alias": "staging",
                "status": "rejected",
                "risk_tier": "high",
                "break_glass": False,
                "requested_by": "paul",
                "requested_at": "2026-02-12T09:00:00.000000Z",
                "reason": "Shadow test",
                "model_digest": DIGEST_V2,
                "required": [{"role": "model_validator", "count": 1}],
                "gates": [{"gate": "require_scan_clean", "ok": True, "detail": "clean"}],
                "approvals": [
                    _approval(
                        "vera",
                        "model_validator",
                        DIGEST_V2,
                        ATT_REJECT_VERA,
                        decision="reject",
                        comment="Unproven training data",
                    ),
                ],
                "executed_at": None,
                "attestation_sha256": "",
            },
        ],
        "alias_history": [
            {
                "model": MODEL,
                "alias": "staging",
                "from_version": None,
                "to_version": 2,
                "changed_at": "2026-02-14T22:10:00.000000Z",
                "changed_by": "mallory",
                "source": "webhook",
                "promotion_id": None,
            },
            {
                "model": MODEL,
                "alias": "staging",
                "from_version": 2,
                "to_version": None,
                "changed_at": "2026-02-15T08:00:00.000000Z",
                "changed_by": "registry",
                "source": "reconcile",
                "promotion_id": None,
            },
            {
                "model": MODEL,
                "alias": "production",
                "from_version": 2,
                "to_version": 3,
                "changed_at": "2026-03-02T15:00:00.000000Z",
                "changed_by": "registry",
                "source": "registry",
                "promotion_id": 11,
            },
        ],
        "incidents": [
            {
                "id": 5,
                "kind": "out_of_band_alias",
                "status": "resolved",
                "model": MODEL,
                "version": 2,
                "summary": "Alias staging set to v2 in MLflow by mallory",
                "opened_at": "2026-02-14T22:11:00.000000Z",
                "resolved_at": "2026-02-15T08:00:00.000000Z",
                "resolution": "Rolled back; access of mallory revoked",
            }
        ],
        "attestations": [
            _attestation(ATT_TRAIN_V2, SLSA, DIGEST_V2, "ci-train"),
            _attestation(ATT_TRAIN_V3, SLSA, DIGEST_V3, "ci-train"),
            _attestation(ATT_EVAL_V2, TEST_RESULT, DIGEST_V2, "ci-eval"),
            _attestation(ATT_EVAL_V3_FAILED, TEST_RESULT, DIGEST_V3, "ci-eval"),
            _attestation(ATT_EVAL_V3, TEST_RESULT, DIGEST_V3, "ci-eval"),
            _attestation(ATT_SCAN_V2, TEST_RESULT, DIGEST_V2, "registry", "registry"),
            _attestation(ATT_SCAN_V3, TEST_RESULT, DIGEST_V3, "registry", "registry"),
            _attestation(ATT_DATASET, SLSA, DATASET_PROVEN, "etl"),
            _attestation(ATT_APPROVE_VERA, APPROVAL, DIGEST_V3, "registry", "registry"),
            _attestation(ATT_APPROVE_RITA, APPROVAL, DIGEST_V3, "registry", "registry"),
            _attestation(ATT_REJECT_VERA, APPROVAL, DIGEST_V2, "registry", "registry"),
            _attestation(ATT_PROMOTION_11, PROMOTION, DIGEST_V3, "registry", "registry"),
        ],
        "log": {
            "origin": "registry.example.org/governance-log",
            "tree_size": 1207,
            "root_hash": sha("root 1207"),
            "checkpoint_issued_at": "2026-07-01T09:29:00.000000Z",
            "entries": 23,
            "first_index": 101,
            "last_index": 1190,
            "previous_bundle": 40,
            "previous_tree_size": 980,
            "last_verification": {
                "finished_at": "2026-07-01T03:00:00.000000Z",
                "ok": True,
                "tree_size": 1200,
            },
        },
        "lineage": {
            "nodes": [
                {"id": 1, "kind": "dataset", "label": "transactions-2025"},
                {"id": 2, "kind": "dataset", "label": "chargebacks <scraped>"},
                {"id": 3, "kind": "base_model", "label": f"sha256:{BASE_MODEL[:12]}…"},
                {"id": 4, "kind": "run", "label": "run run2aa2bb"},
                {"id": 5, "kind": "run", "label": "run run3aa3bb"},
                {"id": 6, "kind": "model_version", "label": f"{MODEL} v2"},
                {"id": 7, "kind": "model_version", "label": f"{MODEL} v3"},
                {"id": 8, "kind": "evaluation", "label": "evaluation v2"},
                {"id": 9, "kind": "evaluation", "label": "evaluation v3"},
                {"id": 10, "kind": "alias", "label": f"{MODEL}@production"},
            ],
            "edges": [
                _edge(1, 4, "trained-on", ATT_TRAIN_V2),
                _edge(2, 4, "trained-on", ATT_TRAIN_V2),
                _edge(3, 4, "derived-from", ATT_TRAIN_V2),
                _edge(1, 5, "trained-on", ATT_TRAIN_V3),
                _edge(4, 6, "produced", ATT_TRAIN_V2),
                _edge(5, 7, "produced", ATT_TRAIN_V3),
                _edge(6, 8, "evaluated-by", ATT_EVAL_V2, verified=False),
                _edge(7, 9, "evaluated-by", ATT_EVAL_V3),
                _edge(7, 10, "promoted-to", ATT_PROMOTION_11),
            ],
        },
        "event_counts": {
            "alias.out_of_band": 1,
            "approval.decided": 3,
            "attestation.accepted": 11,
            "incident.opened": 1,
            "incident.resolved": 1,
            "promotion.executed": 1,
            "promotion.requested": 2,
        },
    }


def _edge(
    source: int, target: int, kind: str, attestation: str, *, verified: bool = True
) -> LineageEdgeFacts:
    return {
        "source": source,
        "target": target,
        "kind": kind,
        "verified": verified,
        "attestation_sha256": attestation,
    }


def bare_facts() -> EvidenceFacts:
    """One version, registered and hashed, with nothing else to show."""
    facts = realistic_facts()
    facts["bundle"].update(
        {
            "id": 43,
            "scope": "model_version",
            "title": f"{MODEL} version 4",
            "version": 4,
            "period_start": None,
            "period_end": None,
        }
    )
    version = _version(4, sha("model v4"), model_sig=None)
    version["scan"].update({"verdict": "pending", "scanners": [], "scanned_at": None})
    facts["models"][0].update({"aliases": {}, "versions": [4], "role_holders": []})
    facts.update(
        {
            "versions": [version],
            "datasets": [],
            "promotions": [],
            "alias_history": [],
            "incidents": [],
            "attestations": [],
            "lineage": {"nodes": [], "edges": []},
            "event_counts": {},
        }
    )
    facts["log"].update(
        {
            "entries": 0,
            "first_index": None,
            "last_index": None,
            "previous_bundle": None,
            "previous_tree_size": None,
            "last_verification": None,
        }
    )
    return facts


LARGE_START = datetime(2026, 1, 1, tzinfo=UTC)
LARGE_DATASETS = 20
PROMOTED_EVERY = 10  # every tenth version went to staging through a promotion
FAILED_EVERY = 7  # every seventh evaluation failed
UNVERIFIED_EVERY = 97  # every 97th attestation no longer verifies
UNSCANNED_EVERY = 50  # every 50th version has not been scanned yet
WARNING_EVERY = 17  # every 17th version's scan found something


def _moment(hours: float) -> str:
    return (LARGE_START + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def large_facts(versions: int = 200, attestations: int = 2000) -> EvidenceFacts:
    """``versions`` versions of fraud-detector and ``attestations`` attestations about them:
    attestation ``i`` is about version ``i % versions + 1``; its first round is the training
    provenance (SLSA), the second the registry's scan result, the rest signed evaluations."""
    facts = realistic_facts()
    numbers = range(1, versions + 1)
    digests = {n: sha(f"large model v{n}") for n in numbers}
    built = [_large_version(n, digests[n]) for n in numbers]
    facts["attestations"] = [_large_attestation(index, built) for index in range(attestations)]
    facts["datasets"] = _large_datasets(built)
    facts["promotions"] = [
        _large_promotion(n, digests[n]) for n in numbers if n % PROMOTED_EVERY == 0
    ]
    facts["alias_history"] = [_large_move(p) for p in facts["promotions"]]
    staging = max((p["version"] for p in facts["promotions"]), default=None)
    aliases = {"production": versions} | ({"staging": staging} if staging else {})
    for alias, number in aliases.items():
        built[number - 1]["aliases"].append(alias)
    facts["models"][0].update({"aliases": dict(sorted(aliases.items())), "versions": [*numbers]})
    facts["versions"] = built
    facts["incidents"] = []
    facts["lineage"] = _large_lineage(built)
    entries = 10 * attestations
    facts["log"].update({"entries": entries, "first_index": 7, "last_index": entries + 6})
    facts["log"]["tree_size"] = entries + 8
    facts["event_counts"] = {
        "attestation.accepted": attestations,
        "model_version.observed": entries - attestations - 2 * len(facts["promotions"]),
        "promotion.executed": len(facts["promotions"]),
        "promotion.requested": len(facts["promotions"]),
    }
    return facts


def _large_version(number: int, digest: str) -> VersionFacts:
    version = _version(number, digest, created_at=_moment(number * 20))
    version["datasets"] = [sha(f"dataset {number % LARGE_DATASETS}")]
    version["scan"]["scanned_at"] = _moment(number * 20 + 1)
    if number % UNSCANNED_EVERY == 0:
        version["scan"].update({"verdict": "pending", "scanners": [], "scanned_at": None})
    elif number % WARNING_EVERY == 0:
        version["scan"]["verdict"] = "warning"
        version["scan"]["findings"] = [
            {
                "file": "model.skops",
                "scanner": "modelscan",
                "severity": "MEDIUM",
                "operator": "builtins.getattr",
                "detail": f"Unsafe operator in version {number}",
            }
        ]
    return version


def _large_attestation(index: int, built: list[VersionFacts]) -> AttestationFacts:
    number, round_ = index % len(built) + 1, index // len(built)
    version = built[number - 1]
    digest = version["model_digest"]
    envelope = sha(f"large attestation {index}")
    received_at = _moment(number * 20 + 2 + round_)
    if round_ == 0:
        attestation = _attestation(envelope, SLSA, digest, "ci-train")
    elif round_ == 1:
        attestation = _attestation(envelope, TEST_RESULT, digest, "registry", "registry")
        if version["scan"]["scanned_at"]:
            version["scan"]["attestation_sha256"] = envelope
    else:
        attestation = _attestation(envelope, TEST_RESULT, digest, "ci-eval")
        version["evaluations"].append(
            {
                "result": "FAILED" if index % FAILED_EVERY == 0 else "PASSED",
                "metrics": {"auc": round(0.8 + (index % 19) / 100, 2), "latency_ms": 30},
                "attestation_sha256": envelope,
                "received_at": received_at,
            }
        )
    if index % UNVERIFIED_EVERY == 0:
        attestation["verification_status"] = "failed"
    attestation["received_at"] = received_at
    version["attestations"].append(envelope)
    return attestation


def _large_datasets(built: list[VersionFacts]) -> list[DatasetFacts]:
    datasets: list[DatasetFacts] = []
    for index in range(LARGE_DATASETS):
        digest = sha(f"dataset {index}")
        proven = index % 2 == 0
        datasets.append(
            {
                "digest": digest,
                "names": [f"transactions part {index}"],
                "sources": [f"s3://lake/transactions/part-{index}/"],
                "has_provenance": proven,
                "provenance_attestations": [sha(f"etl {index}")] if proven else [],
                "used_by": [f"{MODEL}/{v['version']}" for v in built if digest in v["datasets"]],
            }
        )
    return sorted(datasets, key=lambda d: d["digest"])


def _large_promotion(number: int, digest: str) -> PromotionFacts:
    requested = number * 20 + 10
    return {
        "id": 100 + number,
        "model": MODEL,
        "version": number,
        "alias": "staging",
        "status": "promoted",
        "risk_tier": "high",
        "break_glass": False,
        "requested_by": "paul",
        "requested_at": _moment(requested),
        "reason": f"Shadow test of version {number}",
        "model_digest": digest,
        "required": [{"role": "model_validator", "count": 1}],
        "gates": [{"gate": "require_scan_clean", "ok": True, "detail": "clean"}],
        "approvals": [
            _approval(
                "vera",
                "model_validator",
                digest,
                sha(f"large approval {number}"),
                decided_at=_moment(requested + 1),
            )
        ],
        "executed_at": _moment(requested + 2),
        "attestation_sha256": sha(f"large promotion {number}"),
    }


def _large_move(promotion: PromotionFacts) -> AliasMoveFacts:
    number = promotion["version"]
    return {
        "model": MODEL,
        "alias": "staging",
        "from_version": number - PROMOTED_EVERY if number > PROMOTED_EVERY else None,
        "to_version": number,
        "changed_at": promotion["executed_at"] or promotion["requested_at"],
        "changed_by": "registry",
        "source": "registry",
        "promotion_id": promotion["id"],
    }


def _large_lineage(built: list[VersionFacts]) -> LineageFacts:
    """Datasets → runs → versions → evaluations, and the aliases: far more than a picture
    holds."""
    nodes: list[LineageNodeFacts] = [
        {"id": index + 1, "kind": "dataset", "label": f"transactions part {index}"}
        for index in range(LARGE_DATASETS)
    ]
    edges: list[LineageEdgeFacts] = []

    def add(kind: str, label: str) -> int:
        nodes.append({"id": len(nodes) + 1, "kind": kind, "label": label})
        return len(nodes)

    for version in built:
        number = version["version"]
        train = version["attestations"][0] if version["attestations"] else ""
        run = add("run", f"run {version['run_id']}")
        node = add("model_version", f"{MODEL} v{number}")
        edges.append(_edge(1 + number % LARGE_DATASETS, run, "trained-on", train))
        edges.append(_edge(run, node, "produced", train))
        for evaluation in version["evaluations"]:
            evaluated = add("evaluation", f"evaluation v{number}")
            edges.append(
                _edge(node, evaluated, "evaluated-by", str(evaluation["attestation_sha256"]))
            )
        for alias in version["aliases"]:
            edges.append(_edge(node, add("alias", f"{MODEL}@{alias}"), "promoted-to", train))
    return {"nodes": nodes, "edges": edges}


def bundle_files(facts: EvidenceFacts) -> dict[str, str]:
    """What a complete bundle for ``facts`` holds (but the OSCAL files), each with a sha256."""
    paths = [
        "README.txt",
        "verify.py",
        "report/evidence-report.html",
        "report/evidence-report.pdf",
        "model/ml-bom.cdx.json",
        "model/model-card.md",
        "attestations/index.json",
        "log/entries.jsonl",
        "log/checkpoint.txt",
        "log/inclusion-proofs.jsonl",
        "log/consistency-proof.json",
        "keys/registry-keys.json",
        "keys/trusted-signers.json",
        "keys/log-key.vkey",
        *(
            f"json/{name}.json"
            for name in (
                "bundle",
                "inventory",
                "versions",
                "datasets",
                "approvals",
                "alias-history",
                "incidents",
                "log-summary",
            )
        ),
        *(a["file"] for a in facts["attestations"]),
        *(v["model_sig"] for v in facts["versions"] if v["model_sig"]),
    ]
    return {path: sha(f"file {path}") for path in sorted(paths)}


def deep(facts: EvidenceFacts) -> EvidenceFacts:
    """An independent copy a test may change."""
    return copy.deepcopy(facts)
