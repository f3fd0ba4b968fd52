"""The registry's own predicate types, and the statements it builds and signs with them.

Each type is documented with a JSON Schema and an example in docs/predicates.md. Statements are
plain dicts (ARCHITECTURE: formats), signed as RFC 8785 canonical JSON, so equal facts give equal
bytes. Pure Python: no Django imports, so the standalone evidence verifier can share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from provenance.attestation_verify import REGISTRY_PREDICATE_PREFIX, STATEMENT_TYPE_V1

PREDICATE_OBSERVATION = f"{REGISTRY_PREDICATE_PREFIX}observation/v1"
"""What the registry saw in MLflow: run R produced version V from source S; aliases on V."""

PREDICATE_PROMOTION = f"{REGISTRY_PREDICATE_PREFIX}promotion/v1"
"""The registry set an alias on a version, after the approvals its policy required."""

PREDICATE_APPROVAL = f"{REGISTRY_PREDICATE_PREFIX}approval/v1"
"""A person approved or rejected a promotion request, bound to the model digest."""

PREDICATE_VERIFICATION = f"{REGISTRY_PREDICATE_PREFIX}verification/v1"
"""The registry re-hashed a version and re-verified the attestations it depends on."""

REGISTRY_PREDICATE_TYPES = (
    PREDICATE_OBSERVATION,
    PREDICATE_PROMOTION,
    PREDICATE_APPROVAL,
    PREDICATE_VERIFICATION,
)


def utc(moment: datetime) -> str:
    """RFC 3339 in UTC with a trailing ``Z``, as in-toto predicates write times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def statement(
    *, subjects: Sequence[tuple[str, str]], predicate_type: str, predicate: Mapping[str, Any]
) -> dict[str, Any]:
    """An in-toto Statement v1 about ``subjects`` given as (name, sha256 hex) pairs."""
    return {
        "_type": STATEMENT_TYPE_V1,
        "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in subjects],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }


def observation_statement(
    *,
    observer: str,
    observed_at: datetime,
    model_digest: str,
    model_version: Mapping[str, Any],
    run: Mapping[str, Any] | None,
    tracking_uri: str,
) -> dict[str, Any]:
    """ "MLflow reported that run R produced version V from source S", as a statement.

    ``model_version`` holds name, version, source, runId, loggedModelId, user, createdAt and
    the aliases pointing at it; ``run`` what MLflow reported of the run (its datasets as MLflow
    fingerprints them: reported, not proven). The subject is the digest the registry measured.
    """
    name = f"{model_version['name']}/{model_version['version']}"
    predicate: dict[str, Any] = {
        "observer": {"id": observer},
        "observedAt": utc(observed_at),
        "source": {"system": "mlflow", "trackingUri": tracking_uri},
        "modelVersion": dict(model_version),
    }
    if run is not None:
        predicate["run"] = dict(run)
    return statement(
        subjects=[(name, model_digest)],
        predicate_type=PREDICATE_OBSERVATION,
        predicate=predicate,
    )


def verification_statement(
    *,
    verifier: str,
    verified_at: datetime,
    model_version: Mapping[str, Any],
    expected_digest: str,
    measured_digest: str,
    attestations: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The registry re-hashed a version and re-verified what it depends on: the outcome.

    ``attestations`` holds ``{"digest", "predicateType", "status", "problem"}`` per attestation.
    ``result`` is PASSED only when the files still hash to ``expected_digest`` and every
    attestation still verifies.
    """
    rehash_ok = measured_digest == expected_digest
    passed = rehash_ok and all(a["status"] == "verified" for a in attestations)
    name = f"{model_version['name']}/{model_version['version']}"
    return statement(
        subjects=[(name, expected_digest)],
        predicate_type=PREDICATE_VERIFICATION,
        predicate={
            "verifier": {"id": verifier},
            "verifiedAt": utc(verified_at),
            "modelVersion": dict(model_version),
            "rehash": {
                "expected": {"sha256": expected_digest},
                "measured": {"sha256": measured_digest},
                "match": rehash_ok,
            },
            "attestations": [dict(a) for a in attestations],
            "result": "PASSED" if passed else "FAILED",
        },
    )


def approval_statement(
    *,
    model_digest: str,
    model_version: Mapping[str, Any],
    request: Mapping[str, Any],
    approver: Mapping[str, Any],
    decision: str,
    comment: str,
    decided_at: datetime,
) -> dict[str, Any]:
    """A person's decision on a promotion request, bound to the model digest they saw."""
    name = f"{model_version['name']}/{model_version['version']}"
    return statement(
        subjects=[(name, model_digest)],
        predicate_type=PREDICATE_APPROVAL,
        predicate={
            "request": dict(request),
            "modelVersion": dict(model_version),
            "approver": dict(approver),
            "decision": decision,
            "comment": comment,
            "decidedAt": utc(decided_at),
        },
    )


def promotion_statement(
    *,
    model_digest: str,
    model_version: Mapping[str, Any],
    alias: str,
    request: Mapping[str, Any],
    approvals: Sequence[Mapping[str, Any]],
    gates: Sequence[Mapping[str, Any]],
    promoted_at: datetime,
    break_glass: bool,
) -> dict[str, Any]:
    """The registry pointed ``alias`` at a version, after the approvals and gates listed."""
    name = f"{model_version['name']}/{model_version['version']}"
    return statement(
        subjects=[(name, model_digest)],
        predicate_type=PREDICATE_PROMOTION,
        predicate={
            "modelVersion": dict(model_version),
            "alias": alias,
            "request": dict(request),
            "approvals": [dict(a) for a in approvals],
            "gates": [dict(g) for g in gates],
            "breakGlass": break_glass,
            "promotedAt": utc(promoted_at),
        },
    )
