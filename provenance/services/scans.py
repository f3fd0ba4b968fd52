"""Scan results: signed by the registry as in-toto test-result attestations, and logged."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from provenance import model_scan, predicates
from provenance.attestation_verify import PREDICATE_TEST_RESULT
from provenance.log_format import Actor, Event
from provenance.models import Artifact, ModelScan
from provenance.services.log import log_append
from provenance.services.registry_attestations import registry_attestation_issue


@transaction.atomic
def model_scan_record(
    *, artifact: Artifact, subject_name: str, report: model_scan.ScanReport, actor: Actor
) -> ModelScan:
    """Sign the scan's test-result about the model digest, store the report, log the verdict."""
    statement = predicates.statement(
        subjects=[(subject_name, artifact.digest)],
        predicate_type=PREDICATE_TEST_RESULT,
        predicate=report.to_test_result_predicate(),
    )
    attestation = registry_attestation_issue(statement=statement, actor=actor)
    verdict = str(report.verdict)
    scan = ModelScan.objects.create(
        artifact=artifact,
        verdict=verdict,
        policy=report.policy.name,
        scanners=[s.to_dict() for s in report.scanners],
        report=report.to_dict(),
        counts=report.counts(),
        attestation=attestation,
        scanned_at=timezone.now(),
    )
    findings = sorted(
        {f"{f.path}: {finding.operator}" for f in report.files for finding in f.findings}
    )
    log_append(
        Event(
            event_type="scan.finished",
            actor=actor,
            object_type="artifact",
            object_id=f"sha256:{artifact.digest}",
            after={
                "verdict": verdict,
                "subject": subject_name,
                "policy": report.policy.name,
                "scanners": [f"{s.name}=={s.version}" for s in report.scanners],
                "counts": report.counts(),
                "findings": findings[:50],
            },
            evidence=[f"sha256:{attestation.envelope_digest}", f"sha256:{artifact.digest}"],
        )
    )
    return scan
