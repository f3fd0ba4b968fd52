"""Risk tiers of registered models: which policy applies to a model's promotions."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from compliance.choices import RiskTier
from compliance.models import ModelRiskTier
from config.errors import InvalidInput
from provenance.log_format import Actor, Event
from provenance.services import log_append
from registry.models import RegisteredModel


@transaction.atomic
def risk_tier_set(
    *, registered_model: RegisteredModel, tier: str, actor: Actor, reason: str
) -> ModelRiskTier:
    """Classify ``registered_model``; a logged ``risk_tier.changed`` when the tier moves.

    Requests already made keep the policy they snapshotted; new ones follow the new tier.
    """
    if tier not in RiskTier.values:
        raise InvalidInput(
            f"risk tier must be one of {', '.join(RiskTier.values)}", code="risk_tier_invalid"
        )
    current = (
        ModelRiskTier.objects.select_for_update()
        .filter(registered_model_id=registered_model.pk)
        .first()
    )
    before = current.tier if current else None
    if current is not None and current.tier == tier and current.reason == reason.strip():
        return current
    classified, _ = ModelRiskTier.objects.update_or_create(
        registered_model=registered_model,
        defaults={
            "tier": tier,
            "reason": reason.strip()[:500],
            "set_by_name": actor.name,
            "set_at": timezone.now(),
        },
    )
    log_append(
        Event(
            event_type="risk_tier.changed",
            actor=actor,
            object_type="registered_model",
            object_id=registered_model.name,
            before={"tier": before},
            after={"tier": tier},
            reason=classified.reason,
        )
    )
    return classified
