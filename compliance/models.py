"""Who may do what: the SecMLOps security roles and who holds them.

Roles are data (a catalogue the organisation can rename and extend); the eight of
ARCHITECTURE.md ship as the default through a data migration.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from compliance.choices import Pillar
from registry.models import RegisteredModel


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
