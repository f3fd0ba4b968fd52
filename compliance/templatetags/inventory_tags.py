"""The compliance columns of the model inventory (the registry's template loads this library:
the registry never imports the compliance app)."""

from __future__ import annotations

from collections.abc import Iterable

from django import template

from compliance.inventory import InventoryRow, inventory_state
from registry.models import RegisteredModel

register = template.Library()


@register.simple_tag
def inventory_rows(models: Iterable[RegisteredModel]) -> list[InventoryRow]:
    """Each model with its risk tier, open incidents and the state of its aliases."""
    return inventory_state(models=models)
