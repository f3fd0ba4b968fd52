"""What one caller may see: the visibility every API read is narrowed to.

Compliance decides it from the roles a person holds (``compliance.selectors.visibility_of``,
reached from the lower apps through ``config.access``); the registry and provenance selectors
apply it. It lives here, in the lowest app, because every app's selectors take it.

The rule (docs/api.md): staff, superusers and holders of any role granted globally see
everything. Someone holding roles on particular models sees those models and what hangs off
them — versions, runs, the datasets those runs used, aliases, attestations about their artifacts
and the lineage upstream of their versions — and nothing tied only to other models. Everyone
else sees nothing, and is told "not found" rather than "forbidden", so that no model's
existence leaks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Visibility:
    """``everything``: no narrowing at all. ``model_names``: the registered models a caller
    holding per-model roles may see. ``has_role``: holds any role at all (which opens the
    catalogues: roles, trusted signers)."""

    everything: bool
    has_role: bool
    model_names: frozenset[str] = frozenset()

    @classmethod
    def nothing(cls) -> Visibility:
        return cls(everything=False, has_role=False)

    @classmethod
    def unrestricted(cls) -> Visibility:
        return cls(everything=True, has_role=True)

    def sees_model(self, name: str) -> bool:
        return self.everything or name in self.model_names
