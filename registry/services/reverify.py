"""Asking for a version to be re-hashed and re-verified (the work itself is
``model_version_reverify``, in a Celery task: hashing a large model never runs in a request)."""

from __future__ import annotations

from django.db import transaction

from config.errors import Conflict
from registry.models import ModelVersion


def model_version_reverify_request(*, version: ModelVersion, requested_by: int | None) -> None:
    """Queue the re-verification of ``version`` once the caller's transaction commits.

    A version never hashed has no digest to compare a new measurement with: ``not_hashed``.
    The outcome is a registry-signed attestation and a log entry, written by the task.
    """
    if version.model_artifact_id is None:
        raise Conflict(
            f"{version.registered_model.name}/{version.version} has not been hashed yet: "
            "there is nothing to re-verify",
            code="not_hashed",
        )
    from registry import tasks  # noqa: PLC0415  (tasks import services: no import cycle)

    version_pk = version.pk
    transaction.on_commit(lambda: tasks.model_version_reverify.delay(version_pk, requested_by))
