"""Promotion policies: data, edited in the admin or as YAML, every change logged.

The default catalogue ships with the product (a data migration installs it) and follows the
eight SecMLOps roles: the higher the risk tier and the closer to production, the more
independent people must agree, and the more evidence the gates demand.
"""

from __future__ import annotations

from typing import Any

import yaml
from django.db import transaction
from django.utils import timezone

from compliance.choices import RiskTier
from compliance.gates import gates_parse
from compliance.models import PromotionPolicy, SecurityRole
from compliance.quorum import PolicyInvalid, requirements_parse
from config.errors import InvalidInput
from provenance.attestation_verify import PREDICATE_SLSA_PROVENANCE_V1
from provenance.log_format import Actor, Event
from provenance.services import log_append

_VALIDATOR = {"roles": ["model_validator"], "count": 1}
_SECURITY = {"roles": ["security_architect", "security_operations"], "count": 1}
_COMPLIANCE = {"roles": ["compliance_officer"], "count": 1}
_RISK = {"roles": ["risk_owner"], "count": 1}
# Low and medium tiers accept pickle-based models whose scan found nothing (verdict warning);
# high and critical tiers want formats that cannot carry code (safetensors, ONNX…).
_BASE_GATES = {
    "require_scan_clean": True,
    "scan_allow_warning": True,
    "require_no_open_incident": True,
}
_EVIDENCE_GATES = {
    **_BASE_GATES,
    "scan_allow_warning": False,
    "required_predicates": [PREDICATE_SLSA_PROVENANCE_V1],
    "require_evaluation_passed": True,
}

DEFAULT_POLICIES: list[dict[str, Any]] = [
    {"alias": "staging", "risk_tier": "low", "approvals": [_VALIDATOR], "gates": _BASE_GATES},
    {"alias": "staging", "risk_tier": "medium", "approvals": [_VALIDATOR], "gates": _BASE_GATES},
    {"alias": "staging", "risk_tier": "high", "approvals": [_VALIDATOR, _SECURITY],
     "gates": _EVIDENCE_GATES},
    {"alias": "staging", "risk_tier": "critical", "approvals": [_VALIDATOR, _SECURITY, _COMPLIANCE],
     "gates": _EVIDENCE_GATES},
    {"alias": "production", "risk_tier": "low",
     "approvals": [_VALIDATOR, {"roles": ["mlops_engineer"], "count": 1}], "gates": _BASE_GATES},
    {"alias": "production", "risk_tier": "medium", "approvals": [_VALIDATOR, _SECURITY],
     "gates": _EVIDENCE_GATES},
    {"alias": "production", "risk_tier": "high",
     "approvals": [_VALIDATOR, _SECURITY, _COMPLIANCE, _RISK],
     "gates": {**_EVIDENCE_GATES, "require_dataset_provenance": True},
     "revert_out_of_band": True},
    {"alias": "production", "risk_tier": "critical",
     "approvals": [{"roles": ["model_validator"], "count": 2}, _SECURITY, _COMPLIANCE, _RISK,
                   {"roles": ["data_steward"], "count": 1}],
     "gates": {**_EVIDENCE_GATES, "require_dataset_provenance": True},
     "request_ttl_hours": 48, "approval_ttl_hours": 48, "revert_out_of_band": True},
]  # fmt: skip

_FIELDS = (
    "approvals",
    "gates",
    "request_ttl_hours",
    "approval_ttl_hours",
    "revert_out_of_band",
)


def policy_validate(document: dict[str, Any]) -> dict[str, Any]:
    """A clean policy document, or InvalidInput naming what is wrong."""
    try:
        alias = document.get("alias")
        if not isinstance(alias, str) or not alias:
            raise PolicyInvalid("alias must be a non-empty string")
        if document.get("risk_tier") not in RiskTier.values:
            raise PolicyInvalid(f"risk_tier must be one of {', '.join(RiskTier.values)}")
        unknown = sorted(set(document) - {"alias", "risk_tier", *_FIELDS})
        if unknown:
            raise PolicyInvalid(f"unknown fields: {', '.join(unknown)}")
        known_roles = SecurityRole.objects.values_list("key", flat=True)
        approvals = requirements_parse(document.get("approvals"), known_roles=known_roles)
        cleaned = {
            "alias": alias,
            "risk_tier": document["risk_tier"],
            "approvals": [r.to_dict() for r in approvals],
            "gates": gates_parse(document.get("gates", {})),
            "revert_out_of_band": bool(document.get("revert_out_of_band", False)),
        }
        for ttl in ("request_ttl_hours", "approval_ttl_hours"):
            value = document.get(ttl, 72)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 24 * 90:
                raise PolicyInvalid(f"{ttl} must be a whole number of hours from 1 to 2160")
            cleaned[ttl] = value
    except PolicyInvalid as exc:
        raise InvalidInput(
            f"policy {document.get('alias')}/{document.get('risk_tier')}: {exc}",
            code="policy_invalid",
        ) from None
    return cleaned


def _as_document(policy: PromotionPolicy) -> dict[str, Any]:
    return {
        "alias": policy.alias,
        "risk_tier": policy.risk_tier,
        **{name: getattr(policy, name) for name in _FIELDS},
    }


@transaction.atomic
def policy_save(
    *, document: dict[str, Any], actor: Actor, is_default: bool = False
) -> PromotionPolicy:
    """Create or replace the policy for (alias, risk tier); a logged ``policy.changed``."""
    cleaned = policy_validate(document)
    existing = (
        PromotionPolicy.objects.select_for_update()
        .filter(alias=cleaned["alias"], risk_tier=cleaned["risk_tier"])
        .first()
    )
    before = _as_document(existing) if existing else None
    if before == cleaned:
        return existing  # type: ignore[return-value]  # equal documents imply it exists
    policy, _ = PromotionPolicy.objects.update_or_create(
        alias=cleaned["alias"],
        risk_tier=cleaned["risk_tier"],
        defaults={
            **{name: cleaned[name] for name in _FIELDS},
            "is_default": is_default,
            "updated_at": timezone.now(),
            "updated_by_name": actor.name,
        },
    )
    log_append(
        Event(
            event_type="policy.changed",
            actor=actor,
            object_type="promotion_policy",
            object_id=f"{policy.alias}/{policy.risk_tier}",
            before=before,
            after=cleaned,
        )
    )
    return policy


def policies_export() -> str:
    documents = [_as_document(p) for p in PromotionPolicy.objects.order_by("alias", "risk_tier")]
    return yaml.safe_dump({"policies": documents}, sort_keys=False, allow_unicode=True)


@transaction.atomic
def policies_import(*, text: str, actor: Actor) -> int:
    """Create or replace every policy in a YAML export; all or nothing."""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"not valid YAML: {exc}", code="policy_invalid") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("policies"), list):
        raise InvalidInput("expected a mapping with a 'policies' list", code="policy_invalid")
    for document in loaded["policies"]:
        if not isinstance(document, dict):
            raise InvalidInput("each policy must be a mapping", code="policy_invalid")
        policy_validate(document)
    for document in loaded["policies"]:
        policy_save(document=document, actor=actor)
    return len(loaded["policies"])


def default_policies_seed(policy_model: Any = PromotionPolicy) -> int:
    """Seed the shipped catalogue where no policy exists for an (alias, tier) yet.

    Used by the data migration (with its historical model) and after a test database flush:
    the product's initial state, not a change, so not a log event.
    """
    seeded = 0
    for document in DEFAULT_POLICIES:
        _, created = policy_model.objects.get_or_create(
            alias=document["alias"],
            risk_tier=document["risk_tier"],
            defaults={
                "approvals": document["approvals"],
                "gates": document["gates"],
                "request_ttl_hours": document.get("request_ttl_hours", 72),
                "approval_ttl_hours": document.get("approval_ttl_hours", 72),
                "revert_out_of_band": document.get("revert_out_of_band", False),
                "is_default": True,
                "updated_at": timezone.now(),
                "updated_by_name": "registry:defaults",
            },
        )
        seeded += int(created)
    return seeded
