from __future__ import annotations

from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Listen to the registry: out-of-band alias moves raise incidents, changed digests
        void approvals (the registry may not import this app, so it calls us through hooks)."""
        # apps are loading: imported here; compliance.checks registers the deploy checks
        from compliance import checks, incidents, promotions  # noqa: PLC0415, F401
        from registry import hooks  # noqa: PLC0415

        hooks.on_out_of_band_alias(incidents.alias_out_of_band)
        hooks.on_digest_changed(promotions.digest_changed)
