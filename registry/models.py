"""What exists: the MLflow registry as mirrored by the registry.

MLflow stays the system of record for what data scientists register; these tables are a mirror
that the registry can govern (roles per model, promotions, evidence) and that survives deletions
in MLflow: a version deleted there is marked deleted here, never erased.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from registry.choices import (
    AliasChangeSource,
    HashStatus,
    MlflowVersionStatus,
    ScanStatus,
    SyncStatus,
    SyncTrigger,
    VersionStatus,
    WebhookOutcome,
)


class RegisteredModel(models.Model):
    """A registered model in MLflow, by its unique name."""

    name = models.CharField(max_length=256, unique=True)
    description = models.TextField(blank=True, default="")
    tags = models.JSONField(default=dict, blank=True)
    mlflow_created_at = models.DateTimeField(null=True, blank=True)
    mlflow_updated_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Run(models.Model):
    """An MLflow run that produced at least one registered version."""

    run_id = models.CharField(max_length=64, unique=True)
    experiment_id = models.CharField(max_length=64, blank=True, default="")
    run_name = models.CharField(max_length=256, blank=True, default="")
    user = models.CharField(max_length=256, blank=True, default="")
    status = models.CharField(max_length=32, blank=True, default="")
    lifecycle_stage = models.CharField(max_length=32, blank=True, default="")
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    artifact_uri = models.TextField(blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-start_time"]

    def __str__(self) -> str:
        return self.run_id


class Dataset(models.Model):
    """A dataset record logged to MLflow with ``mlflow.log_input``.

    MLflow identifies a dataset by name and its own short digest; the registry keeps that identity.
    """

    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=64)
    source_type = models.CharField(max_length=64, blank=True, default="")
    source = models.TextField(blank=True, default="")
    schema = models.JSONField(null=True, blank=True)
    profile = models.JSONField(null=True, blank=True)
    # The sha256 identity a verified attestation gave this record (ARCHITECTURE: datasets are
    # identified by digest; MLflow's own digest is a short, unkeyed fingerprint).
    artifact = models.ForeignKey(
        "provenance.Artifact",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="mlflow_datasets",
    )
    linked_by = models.ForeignKey(
        "provenance.Attestation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "digest"]
        constraints = [
            models.UniqueConstraint(fields=["name", "digest"], name="dataset_name_digest_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.digest}"


class RunInput(models.Model):
    """A run used a dataset (``context`` is MLflow's ``mlflow.data.context`` tag, e.g. training)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="inputs")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="run_inputs")
    context = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "dataset"], name="run_input_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} used {self.dataset_id} ({self.context or 'no context'})"


class ModelVersion(models.Model):
    """One version of a registered model."""

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="versions"
    )
    version = models.PositiveIntegerField()
    source = models.TextField(blank=True, default="")
    run = models.ForeignKey(
        Run, on_delete=models.PROTECT, null=True, blank=True, related_name="model_versions"
    )
    mlflow_run_id = models.CharField(max_length=64, blank=True, default="")
    logged_model_id = models.CharField(max_length=64, blank=True, default="")
    mlflow_status = models.CharField(
        max_length=32, choices=MlflowVersionStatus.choices, default=MlflowVersionStatus.READY
    )
    status = models.CharField(
        max_length=32, choices=VersionStatus.choices, default=VersionStatus.REGISTERED
    )
    user_id = models.CharField(max_length=256, blank=True, default="")
    description = models.TextField(blank=True, default="")
    tags = models.JSONField(default=dict, blank=True)
    mlflow_created_at = models.DateTimeField(null=True, blank=True)
    mlflow_updated_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    # What the registry measured itself, from the artifact store (ARCHITECTURE: trust boundaries).
    model_artifact = models.ForeignKey(
        "provenance.Artifact",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="model_versions",
    )
    hash_status = models.CharField(
        max_length=16, choices=HashStatus.choices, default=HashStatus.PENDING
    )
    hash_progress = models.JSONField(default=dict, blank=True, help_text="bytes done / total")
    hash_error = models.TextField(blank=True, default="")
    hashed_at = models.DateTimeField(null=True, blank=True)
    scan_status = models.CharField(
        max_length=16, choices=ScanStatus.choices, default=ScanStatus.PENDING
    )
    scan_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["registered_model__name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "version"], name="model_version_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name}/{self.version}"


class ModelAlias(models.Model):
    """An alias (``production``, ``staging``…) currently pointing at a version, as MLflow has it."""

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="aliases"
    )
    alias = models.CharField(max_length=256)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["registered_model__name", "alias"]
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "alias"], name="alias_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name}@{self.alias}"


class AliasHistory(models.Model):
    """Append-only: every move of an alias (``to_version`` null = removed, ``from`` null = new).

    ``changed_by`` is filled only when the actor is known: MLflow does not report who set an
    alias, the registry does when it promotes.
    """

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="alias_history"
    )
    alias = models.CharField(max_length=256)
    from_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField()
    changed_by = models.CharField(max_length=256, blank=True, default="")
    source = models.CharField(max_length=32, choices=AliasChangeSource.choices)

    class Meta:
        ordering = ["-changed_at", "-id"]
        verbose_name_plural = "alias history"
        constraints = [
            models.CheckConstraint(
                condition=Q(from_version__isnull=False) | Q(to_version__isnull=False),
                name="alias_history_moves_something",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.alias}: {self.from_version_id} -> {self.to_version_id} at {self.changed_at}"


class SyncRun(models.Model):
    """One pass of MLflow synchronisation, kept so operators can see when sync last worked."""

    trigger = models.CharField(max_length=16, choices=SyncTrigger.choices)
    scope = models.CharField(max_length=256, blank=True, default="", help_text="model name or all")
    status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"sync {self.scope or 'all'} at {self.started_at}: {self.status}"


class WebhookDelivery(models.Model):
    """Every MLflow webhook delivery received, accepted or refused (and why).

    An accepted delivery id can never be accepted again: that is the replay defence.
    """

    delivery_id = models.CharField(max_length=64, blank=True, default="")
    event = models.CharField(max_length=64, blank=True, default="")
    outcome = models.CharField(max_length=16, choices=WebhookOutcome.choices)
    reason = models.CharField(max_length=256, blank=True, default="")
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["delivery_id"],
                condition=Q(outcome=WebhookOutcome.ACCEPTED),
                name="webhook_delivery_accepted_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id or '(no id)'} {self.outcome}"


class ExpectedAliasChange(models.Model):
    """An alias move the registry itself is about to make in MLflow (a promotion, a rollback,
    a revert): when sync sees it, it is the registry's, not an out-of-band change.

    ``to_version`` null means the alias is to be removed. Consumed once seen or recorded.
    """

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="+"
    )
    alias = models.CharField(max_length=256)
    to_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reference = models.CharField(max_length=128, help_text="what asked for it, e.g. promotion:12")
    actor_name = models.CharField(max_length=256)
    created_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.reference}: {self.registered_model_id}@{self.alias} -> {self.to_version_id}"
