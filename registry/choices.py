"""Status vocabularies of the registry app."""

from __future__ import annotations

from django.db import models


class MlflowVersionStatus(models.TextChoices):
    """What MLflow says of a version's registration (mirrored verbatim)."""

    PENDING_REGISTRATION = "PENDING_REGISTRATION", "Pending registration"
    FAILED_REGISTRATION = "FAILED_REGISTRATION", "Failed registration"
    READY = "READY", "Ready"


class VersionStatus(models.TextChoices):
    """The registry's own lifecycle of a version; later issues add states after ``registered``."""

    REGISTERED = "registered", "Registered"
    DELETED = "deleted", "Deleted in MLflow"


class AliasChangeSource(models.TextChoices):
    RECONCILE = "reconcile", "Periodic reconcile"
    WEBHOOK = "webhook", "MLflow webhook"
    MANUAL = "manual", "Manual sync"
    REGISTRY = "registry", "Registry promotion"


class SyncTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    WEBHOOK = "webhook", "Webhook"
    MANUAL = "manual", "Manual"


class SyncStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookOutcome(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    REFUSED = "refused", "Refused"


class HashStatus(models.TextChoices):
    """Where a version is in being hashed by the registry itself (never trusted from MLflow)."""

    PENDING = "pending", "Waiting to be hashed"
    HASHING = "hashing", "Hashing"
    HASHED = "hashed", "Hashed"
    FAILED = "failed", "Hashing failed"


class ScanStatus(models.TextChoices):
    """Where a version is in being scanned for embedded code."""

    PENDING = "pending", "Waiting to be scanned"
    SCANNING = "scanning", "Scanning"
    SCANNED = "scanned", "Scanned"
    FAILED = "failed", "Scan failed"
