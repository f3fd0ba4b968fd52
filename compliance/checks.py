"""System checks of the registry's production settings (``manage.py check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def throttles_shared(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """API throttles that count in each process's memory, unless CACHE_URL chose that."""
    framework: dict[str, Any] = settings.REST_FRAMEWORK
    rates: dict[str, str | None] = framework.get("DEFAULT_THROTTLE_RATES", {})
    if settings.CACHE_URL or not any(rates.values()):
        return []
    return [
        checks.Warning(
            "API throttles count in each process's memory: with several web processes, a token "
            "or client address may make its rate once per process.",
            hint="Set CACHE_URL to a Redis URL every web process shares "
            "(redis://redis.internal:6379/1), or to locmem:// to count per process on purpose.",
            id="secmlops.W001",
        )
    ]
