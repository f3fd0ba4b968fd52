"""Project wiring: settings, URLs, the Celery app. No domain logic lives here."""

from __future__ import annotations

from config.celery import app as celery_app

__all__ = ["celery_app"]
