"""Who may do what: the SecMLOps security roles and who holds them, and machines' API tokens.

Roles are data (a catalogue the organisation can rename and extend); the eight of
ARCHITECTURE.md ship as the default through a data migration.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from compliance.choices import (
    Decision,
    EvidenceScope,
    EvidenceStatus,
    IncidentKind,
    IncidentStatus,
    Pillar,
    PromotionStatus,
    RiskTier,
)
from provenance.models import Checkpoint
from registry.models import ModelVersion, RegisteredModel


class SecurityRole(models.Model):
    """A security role of the catalogue (``model_validator``, ``risk_owner``…)."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    pillar = models.CharField(max_length=16, choices=Pillar.choices)
    phases = models.JSONField(default=list, blank=True, help_text="lifecycle phases")
    responsibilities = models.TextField(blank=True, default="")
    capabilities = models.JSONField(default=list, blank=True)
    is_default = models.BooleanField(default=False, help_text="shipped with the product")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RoleAssignment(models.Model):
    """A role held by a user, globally (``registered_model`` empty) or for one registered model.

    Never deleted: revoking sets ``revoked_at``/``revoked_by``, so who held what, granted by whom
    and when, stays answerable. ``*_by_name`` keep the actor's name as it was at that moment.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="role_assignments"
    )
    role = models.ForeignKey(SecurityRole, on_delete=models.PROTECT, related_name="assignments")
    registered_model = models.ForeignKey(
        RegisteredModel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="role_assignments",
    )
    reason = models.CharField(max_length=500, blank=True, default="")
    granted_at = models.DateTimeField()
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    granted_by_name = models.CharField(max_length=256)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    revoked_by_name = models.CharField(max_length=256, blank=True, default="")
    revoke_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-granted_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "role"],
                condition=Q(revoked_at__isnull=True, registered_model__isnull=True),
                name="role_assignment_active_global_unique",
            ),
            models.UniqueConstraint(
                fields=["user", "role", "registered_model"],
                condition=Q(revoked_at__isnull=True, registered_model__isnull=False),
                name="role_assignment_active_model_unique",
            ),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True) | Q(revoked_at__gte=models.F("granted_at")),
                name="role_assignment_revoked_after_granted",
            ),
        ]

    def __str__(self) -> str:
        scope = self.registered_model.name if self.registered_model else "all models"
        return f"{self.user} as {self.role} on {scope}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiToken(models.Model):
    """A machine's credential for the API: ``Authorization: Bearer <prefix>_<secret>``.

    Only the SHA-256 of the whole token is stored (``secret_hash``); the secret is shown once,
    when the token is created. ``prefix`` is public and unique: it finds the row, and the owner
    recognises the token by it. Every token expires and holds one or more scopes
    (``ApiTokenScope``). Never deleted: revoking sets ``revoked_at``/``revoked_by``, so who
    could act as whom, and until when, stays answerable. ``last_used_at`` is refreshed at most
    once a minute.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="what the owner calls it, e.g. ci-attest")
    prefix = models.CharField(max_length=32, unique=True, help_text="public part of the token")
    secret_hash = models.CharField(max_length=64, help_text="hex SHA-256 of the whole token")
    scopes = models.JSONField(default=list, help_text="ApiTokenScope values")
    created_at = models.DateTimeField()
    created_by_name = models.CharField(max_length=256)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    revoked_by_name = models.CharField(max_length=256, blank=True, default="")
    revoke_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="api_token_expires_after_created",
            ),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True) | Q(revoked_at__gte=models.F("created_at")),
                name="api_token_revoked_after_created",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="api_token_name_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix} ({self.name}) of {self.user}"

    @property
    def status(self) -> str:
        """``revoked``, ``expired`` or ``active``, as of now."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= timezone.now() else "active"


class ModelRiskTier(models.Model):
    """The risk tier of a registered model; a model without one is treated as ``high``."""

    registered_model = models.OneToOneField(
        RegisteredModel, on_delete=models.PROTECT, related_name="risk_tier"
    )
    tier = models.CharField(max_length=16, choices=RiskTier.choices)
    set_by_name = models.CharField(max_length=256)
    set_at = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.registered_model}: {self.tier}"


class PromotionPolicy(models.Model):
    """Who must approve moving a version to ``alias`` for models of ``risk_tier``, and the gates.

    ``approvals`` is a list of requirements, each ``{"roles": [keys], "count": n}``: n distinct
    people holding any of those roles. One person fills one requirement at most. ``gates``
    holds the checks run at request time and again right before execution (see
    compliance/gates.py for the keys).
    """

    alias = models.CharField(max_length=256)
    risk_tier = models.CharField(max_length=16, choices=RiskTier.choices)
    approvals = models.JSONField(default=list)
    gates = models.JSONField(default=dict, blank=True)
    request_ttl_hours = models.PositiveIntegerField(default=72)
    approval_ttl_hours = models.PositiveIntegerField(default=72)
    revert_out_of_band = models.BooleanField(
        default=False, help_text="set the alias back when someone moves it in MLflow directly"
    )
    is_default = models.BooleanField(default=False, help_text="shipped with the product")
    updated_at = models.DateTimeField()
    updated_by_name = models.CharField(max_length=256, blank=True, default="")

    class Meta:
        ordering = ["alias", "risk_tier"]
        verbose_name_plural = "promotion policies"
        constraints = [
            models.UniqueConstraint(fields=["alias", "risk_tier"], name="policy_alias_tier_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.alias} / {self.risk_tier}"


class PromotionRequest(models.Model):
    """A request to point ``alias`` at ``version``, bound to the model digest it was made for.

    ``policy`` is a snapshot of the policy when the request was made: editing the policy later
    does not change what this request needs. The status only moves through the services of
    compliance/promotions.py.
    """

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="promotion_requests"
    )
    version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="promotion_requests"
    )
    alias = models.CharField(max_length=256)
    status = models.CharField(
        max_length=16, choices=PromotionStatus.choices, default=PromotionStatus.DRAFT
    )
    model_digest = models.CharField(max_length=64)
    risk_tier = models.CharField(max_length=16, choices=RiskTier.choices)
    policy = models.JSONField(default=dict)
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    previous_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    break_glass = models.BooleanField(default=False)
    gate_results = models.JSONField(default=list, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    failure_reason = models.TextField(blank=True, default="")
    decided_at = models.DateTimeField(null=True, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["status", "expires_at"], name="promotion_status_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.registered_model.name}/{self.version.version} -> {self.alias}"


class Approval(models.Model):
    """One person's decision on a request, bound to the digest they saw; signed and logged.

    ``roles`` are the roles the approver held at that moment. ``voided_at`` is set when the
    approval no longer counts (the model digest changed, or it expired); the row stays.
    """

    request = models.ForeignKey(
        PromotionRequest, on_delete=models.PROTECT, related_name="approvals"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    approver_name = models.CharField(max_length=256)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    roles = models.JSONField(default=list)
    comment = models.TextField()
    model_digest = models.CharField(max_length=64)
    decided_at = models.DateTimeField()
    attestation_digest = models.CharField(max_length=64, blank=True, default="")
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=256, blank=True, default="")

    class Meta:
        ordering = ["decided_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "approver"],
                condition=Q(voided_at__isnull=True),
                name="approval_one_live_decision_per_person",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.approver_name} {self.decision}s #{self.request_id}"


class Incident(models.Model):
    """Something a person must look at: an alias moved behind the registry's back, a
    break-glass promotion awaiting its after-the-fact review, an integrity failure."""

    kind = models.CharField(max_length=32, choices=IncidentKind.choices)
    status = models.CharField(
        max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.OPEN
    )
    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="incidents"
    )
    version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="incidents"
    )
    promotion = models.ForeignKey(
        PromotionRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="incidents"
    )
    summary = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by_name = models.CharField(max_length=256, blank=True, default="")
    resolution = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.summary}"


class Notification(models.Model):
    """A message in a person's inbox in the UI (also sent by e-mail)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message = models.CharField(max_length=500)
    url = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    # When the e-mail went out (a Celery task sends it); null: not (yet) sent, or no address.
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"to {self.user_id}: {self.message}"


class EvidenceBundle(models.Model):
    """An evidence bundle: asked for by a Compliance Officer, built by a Celery task.

    The zip lives in the ``evidence`` storage under ``file_name``; ``sha256`` is its digest, as
    logged in ``evidence.generated``. ``checkpoint`` is the signed log checkpoint every proof in
    the bundle is against, fixed at the first build so that a rebuild gives the same bytes.
    """

    scope = models.CharField(max_length=32, choices=EvidenceScope.choices)
    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=EvidenceStatus.choices, default=EvidenceStatus.QUEUED
    )
    progress = models.JSONField(default=dict, blank=True, help_text='{"step", "done", "total"}')
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_by_name = models.CharField(max_length=256)
    requested_at = models.DateTimeField()
    generated_at = models.DateTimeField(null=True, blank=True, help_text="the time it states")
    finished_at = models.DateTimeField(null=True, blank=True)
    checkpoint = models.ForeignKey(
        Checkpoint, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    file_name = models.CharField(max_length=300, blank=True, default="")
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(scope=EvidenceScope.MODEL_VERSION, version__isnull=False)
                    | Q(
                        scope=EvidenceScope.REGISTERED_MODEL,
                        registered_model__isnull=False,
                        period_start__isnull=False,
                        period_end__isnull=False,
                    )
                    | Q(
                        scope=EvidenceScope.INVENTORY,
                        registered_model__isnull=True,
                        period_start__isnull=False,
                        period_end__isnull=False,
                    )
                ),
                name="evidence_scope_complete",
            ),
            models.CheckConstraint(
                condition=Q(period_start__isnull=True) | Q(period_end__gt=models.F("period_start")),
                name="evidence_period_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"evidence #{self.pk} ({self.scope})"

    @property
    def model_name(self) -> str | None:
        """The registered model the bundle covers (a version's for a model_version bundle);
        None for the inventory."""
        if self.registered_model is not None:
            return self.registered_model.name
        if self.version is not None:
            return self.version.registered_model.name
        return None


class AuditorGrant(models.Model):
    """Read-only access for an external auditor to chosen bundles, until ``expires_at``.

    Auditors hold no role: this grant is all they can see. It ends by itself at ``expires_at``
    or earlier when revoked; the row stays as the record of who could see what, and until when.
    """

    auditor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="auditor_grants"
    )
    bundles = models.ManyToManyField(EvidenceBundle, related_name="auditor_grants")
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    granted_by_name = models.CharField(max_length=256)
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    reason = models.CharField(max_length=500)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by_name = models.CharField(max_length=256, blank=True, default="")

    class Meta:
        ordering = ["-granted_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("granted_at")),
                name="auditor_grant_expires_after_granted",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.auditor} until {self.expires_at:%Y-%m-%d}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()
