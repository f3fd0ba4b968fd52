"""Celery tasks of the provenance app."""

from __future__ import annotations

from celery import shared_task

from provenance import services


@shared_task(acks_late=True, max_retries=3, default_retry_delay=30)
def log_checkpoint() -> int | None:
    """Sign the current tree head (beat, and every LOG_CHECKPOINT_EVERY_ENTRIES appends)."""
    checkpoint = services.checkpoint_issue()
    return checkpoint.tree_size if checkpoint else None
