"""Security gates of a promotion, evaluated when it is requested and again before execution.

A policy's ``gates`` document switches checks on and parameterises them:

``require_scan_clean`` (default true)
    the version's files were scanned and found clean (unknown or unsafe always fails).
``scan_allow_warning`` (default false)
    also accept the ``warning`` verdict: pickle-based formats with no finding.
``required_predicates`` (default [])
    predicate types that must each have a verified attestation about the model digest.
``require_dataset_provenance`` (default false)
    a verified training provenance names the datasets, and each dataset has a verified
    provenance of its own (the build that produced it).
``require_evaluation_passed`` (default false)
    a verified in-toto test-result about the digest reports ``PASSED``.
``metric_thresholds`` (default [])
    ``[{"metric": "auc", "min": 0.9}, {"metric": "latency_ms", "max": 40}]``, read from the
    ``metrics`` object of that passing test-result.
``require_no_open_incident`` (default true)
    no open incident on the version.

The digest check always runs: approvals are bound to the digest the request was made for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from compliance.choices import IncidentStatus
from compliance.models import Incident
from compliance.quorum import PolicyInvalid
from provenance import selectors as provenance_selectors
from provenance.attestation_verify import PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_TEST_RESULT
from provenance.models import Attestation, VerificationStatus
from registry import selectors as registry_selectors
from registry.models import ModelVersion

GATE_KEYS = frozenset(
    {
        "require_scan_clean",
        "scan_allow_warning",
        "required_predicates",
        "require_dataset_provenance",
        "require_evaluation_passed",
        "metric_thresholds",
        "require_no_open_incident",
    }
)


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gates_parse(document: Any) -> dict[str, Any]:
    """Validate a policy's ``gates``; raises PolicyInvalid naming what is wrong."""
    if not isinstance(document, Mapping):
        raise PolicyInvalid("gates must be an object")
    unknown = sorted(set(document) - GATE_KEYS)
    if unknown:
        raise PolicyInvalid(f"unknown gates: {', '.join(unknown)}")
    for flag in GATE_KEYS - {"required_predicates", "metric_thresholds"}:
        if flag in document and not isinstance(document[flag], bool):
            raise PolicyInvalid(f"gates.{flag} must be true or false")
    predicates = document.get("required_predicates", [])
    if not isinstance(predicates, list) or not all(isinstance(p, str) for p in predicates):
        raise PolicyInvalid("gates.required_predicates must be a list of predicate types")
    for index, threshold in enumerate(document.get("metric_thresholds", [])):
        _check_threshold(index, threshold)
    return dict(document)


def _check_threshold(index: int, threshold: Any) -> None:
    where = f"gates.metric_thresholds[{index}]"
    if not isinstance(threshold, Mapping) or not isinstance(threshold.get("metric"), str):
        raise PolicyInvalid(f"{where} must be an object with a metric name")
    bounds = {k: v for k, v in threshold.items() if k in {"min", "max"}}
    if not bounds or set(threshold) - {"metric", "min", "max"}:
        raise PolicyInvalid(f"{where} needs min and/or max, and nothing else")
    for value in bounds.values():
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise PolicyInvalid(f"{where} bounds must be finite numbers")


def gates_evaluate(
    *, version: ModelVersion, bound_digest: str, gates: Mapping[str, Any]
) -> list[GateResult]:
    """Every gate the policy switches on, with why it passed or failed."""
    measured = version.model_artifact.digest if version.model_artifact else ""
    results = [
        GateResult(
            "model_digest_unchanged",
            bool(measured) and measured == bound_digest,
            f"sha256:{measured}"
            if measured == bound_digest
            else f"bound to sha256:{bound_digest}, now sha256:{measured or '(not hashed)'}",
        )
    ]
    if not measured:
        return results
    verified = list(
        provenance_selectors.attestations_about(digests=[measured]).filter(
            verification_status=VerificationStatus.VERIFIED
        )
    )
    if gates.get("require_scan_clean", True):
        results.append(_scan_gate(version, allow_warning=gates.get("scan_allow_warning", False)))
    for predicate_type in gates.get("required_predicates", []):
        present = any(a.predicate_type == predicate_type for a in verified)
        results.append(
            GateResult(
                f"attested:{predicate_type}",
                present,
                "verified attestation present" if present else "no verified attestation",
            )
        )
    if gates.get("require_dataset_provenance", False):
        results.append(_dataset_gate(verified))
    if gates.get("require_evaluation_passed", False) or gates.get("metric_thresholds"):
        results += _evaluation_gates(verified, gates.get("metric_thresholds", []))
    if gates.get("require_no_open_incident", True):
        results.append(_incident_gate(version))
    return results


def _scan_gate(version: ModelVersion, *, allow_warning: bool) -> GateResult:
    verdict = registry_selectors.scan_verdict(version=version)
    if verdict is None:
        return GateResult("scan_clean", False, "the files have not been scanned")
    accepted = {"clean", "warning"} if allow_warning else {"clean"}
    return GateResult("scan_clean", verdict in accepted, f"scan verdict: {verdict}")


def _dataset_gate(verified: list[Attestation]) -> GateResult:
    training = [a for a in verified if a.predicate_type == PREDICATE_SLSA_PROVENANCE_V1]
    if not training:
        return GateResult("dataset_provenance", False, "no verified training provenance")
    datasets, unproven = provenance_selectors.training_datasets(attestations=training)
    if not datasets:
        return GateResult("dataset_provenance", False, "the training provenance names no dataset")
    if unproven:
        return GateResult(
            "dataset_provenance",
            False,
            f"{len(unproven)} of {len(datasets)} dataset(s) lack verified provenance: "
            + ", ".join(unproven[:5]),
        )
    return GateResult(
        "dataset_provenance", True, f"all {len(datasets)} dataset(s) have verified provenance"
    )


def _evaluation_gates(
    verified: list[Attestation], thresholds: list[Mapping[str, Any]]
) -> list[GateResult]:
    passing = [
        a
        for a in verified
        if a.predicate_type == PREDICATE_TEST_RESULT
        and (a.statement.get("predicate") or {}).get("result") == "PASSED"
        and a.signer is not None  # the registry's own scans are not evaluations
    ]
    if not passing:
        return [GateResult("evaluation_passed", False, "no verified evaluation that PASSED")]
    latest = max(passing, key=lambda a: a.received_at)
    results = [GateResult("evaluation_passed", True, f"sha256:{latest.envelope_digest}")]
    metrics = (latest.statement.get("predicate") or {}).get("metrics") or {}
    for threshold in thresholds:
        results.append(_threshold_result(threshold, metrics))
    return results


def _threshold_result(threshold: Mapping[str, Any], metrics: Mapping[str, Any]) -> GateResult:
    name = str(threshold["metric"])
    value = metrics.get(name)
    gate = f"metric:{name}"
    if not isinstance(value, int | float) or isinstance(value, bool):
        return GateResult(gate, False, "not reported by the evaluation")
    low, high = threshold.get("min"), threshold.get("max")
    ok = (low is None or value >= low) and (high is None or value <= high)
    bounds = " and ".join(
        part
        for part in (f"≥ {low}" if low is not None else "", f"≤ {high}" if high is not None else "")
        if part
    )
    return GateResult(gate, ok, f"{value} (needs {bounds})")


def _incident_gate(version: ModelVersion) -> GateResult:
    open_count = Incident.objects.filter(version=version, status=IncidentStatus.OPEN).count()
    return GateResult(
        "no_open_incident",
        open_count == 0,
        "none open" if open_count == 0 else f"{open_count} open incident(s) on this version",
    )
