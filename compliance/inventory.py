"""The compliance state of the model inventory: each model's risk tier, its open incidents,
and how each alias reached the version it points at (an approved promotion, break-glass, a
revert by the registry, or out of band, behind the registry's back).

The registry's inventory page shows it through ``templatetags/inventory_tags.py``, since the
registry may not import this app. A fixed number of queries (three) for any number of models.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db.models import Count

from compliance.choices import IncidentStatus, PromotionStatus, RiskTier
from compliance.models import Incident, ModelRiskTier, PromotionRequest
from compliance.promotions import DEFAULT_TIER
from registry.choices import AliasChangeSource
from registry.models import ModelAlias, RegisteredModel

# How an alias reached its version, from the most to the least governed.
PROMOTION = "promotion"
BREAK_GLASS = "break_glass"
REVERT = "registry"
OUT_OF_BAND = "out_of_band"

ROUTE_LABELS = {
    PROMOTION: "approved promotion",
    BREAK_GLASS: "break-glass promotion",
    REVERT: "restored by the registry",
    OUT_OF_BAND: "out of band",
}
CLEAN = "clean"


@dataclass(frozen=True)
class AliasState:
    """An alias now: its version, the latest scan verdict of the version's files (None: not
    scanned), and the route by which it got there (with the promotion request, if one)."""

    alias: ModelAlias
    scan_verdict: str | None
    route: str
    promotion_id: int | None

    @property
    def route_label(self) -> str:
        return ROUTE_LABELS[self.route]

    @property
    def approved(self) -> bool:
        """Reached through the registry with the approvals the policy asked for."""
        return self.route == PROMOTION

    @property
    def needs_review(self) -> bool:
        """Reached without approvals: behind the registry's back, or by break-glass."""
        return self.route in (BREAK_GLASS, OUT_OF_BAND)


@dataclass(frozen=True)
class InventoryRow:
    model: RegisteredModel
    risk_tier: str
    tier_is_default: bool
    open_incidents: int
    aliases: list[AliasState]

    @property
    def risk_tier_label(self) -> str:
        return str(RiskTier(self.risk_tier).label)

    @property
    def approved_aliases(self) -> int:
        return sum(1 for state in self.aliases if state.approved)

    @property
    def aliases_to_review(self) -> int:
        return sum(1 for state in self.aliases if state.needs_review)

    @property
    def unclean_scans(self) -> int:
        """Aliases on a version whose files are not known to be clean (never scanned counts)."""
        return sum(1 for state in self.aliases if state.scan_verdict != CLEAN)


def inventory_state(*, models: Iterable[RegisteredModel]) -> list[InventoryRow]:
    """The state of each model, in the order given.

    ``models`` come from ``registry.visible_selectors.inventory_visible``: already narrowed
    to what the reader may see, with their aliases prefetched and annotated with
    ``scan_verdict`` and ``moved_by`` (the ``AliasChangeSource`` of the alias's last move).
    """
    rows = list(models)
    if not rows:
        return []
    ids = [model.pk for model in rows]
    aliases = {model.pk: list(model.aliases.all()) for model in rows}
    tiers = dict(
        ModelRiskTier.objects.filter(registered_model_id__in=ids).values_list(
            "registered_model_id", "tier"
        )
    )
    incidents = dict(
        Incident.objects.filter(registered_model_id__in=ids, status=IncidentStatus.OPEN)
        .values_list("registered_model_id")
        .annotate(count=Count("pk"))
        .values_list("registered_model_id", "count")
    )
    promotions = _promotions_behind([alias for found in aliases.values() for alias in found])
    return [
        InventoryRow(
            model=model,
            risk_tier=tiers.get(model.pk, DEFAULT_TIER),
            tier_is_default=model.pk not in tiers,
            open_incidents=incidents.get(model.pk, 0),
            aliases=[_state(alias, promotions) for alias in aliases[model.pk]],
        )
        for model in rows
    ]


_Key = tuple[int, str, int]


def _promotions_behind(aliases: Sequence[ModelAlias]) -> dict[_Key, tuple[int, bool]]:
    """(model, alias, version) → (request id, break-glass) of the latest promotion executed
    onto each aliased version (one query)."""
    if not aliases:
        return {}
    executed = (
        PromotionRequest.objects.filter(
            status=PromotionStatus.PROMOTED,
            version_id__in={alias.version_id for alias in aliases},
        )
        .order_by("executed_at", "pk")
        .values_list("registered_model_id", "alias", "version_id", "pk", "break_glass")
    )
    return {(model, alias, version): (pk, glass) for model, alias, version, pk, glass in executed}


def _state(alias: ModelAlias, promotions: dict[_Key, tuple[int, bool]]) -> AliasState:
    moved_by = getattr(alias, "moved_by", None)
    promotion = promotions.get((alias.registered_model_id, alias.alias, alias.version_id))
    if moved_by != AliasChangeSource.REGISTRY:
        route, promotion_id = OUT_OF_BAND, None
    elif promotion is None:  # the registry undid an out-of-band move
        route, promotion_id = REVERT, None
    else:
        route, promotion_id = (BREAK_GLASS if promotion[1] else PROMOTION), promotion[0]
    return AliasState(
        alias=alias,
        scan_verdict=getattr(alias, "scan_verdict", None),
        route=route,
        promotion_id=promotion_id,
    )
