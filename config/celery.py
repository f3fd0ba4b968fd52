"""The Celery application: configured from Django settings (``CELERY_*``), tasks autodiscovered."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("secmlops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _task_request_id(task_id: str | None = None, **_: Any) -> None:
    """A task's log lines and governance-log entries carry ``task:<id>`` as their request id."""
    from config.middleware import set_request_id  # noqa: PLC0415  (Django is set up by now)

    set_request_id(f"task:{task_id}" if task_id else "-")
