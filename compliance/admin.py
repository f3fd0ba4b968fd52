"""Admin for roles, grants, policies and risk tiers: every change goes through a service, which
validates it and writes the log event; the workflow's records are read-only here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from compliance import services
from compliance.forms import PromotionPolicyAdminForm
from compliance.models import (
    ApiToken,
    Approval,
    Incident,
    ModelRiskTier,
    Notification,
    PromotionPolicy,
    PromotionRequest,
    RoleAssignment,
    SecurityRole,
)
from compliance.policies import policy_save
from compliance.risk import risk_tier_set
from compliance.selectors import actor_for
from config.admin_base import ReadOnlyAdmin
from config.errors import DomainError


def _staff(request: HttpRequest) -> User:
    """The signed-in staff member acting in the admin (the admin admits no one else)."""
    assert isinstance(request.user, User)  # noqa: S101  (guaranteed by the admin site)
    return request.user


@admin.register(SecurityRole)
class SecurityRoleAdmin(admin.ModelAdmin[SecurityRole]):
    list_display = ["name", "key", "pillar", "is_default"]
    list_filter = ["pillar", "is_default"]
    search_fields = ["key", "name"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: SecurityRole | None = None
    ) -> list[str]:
        # The key is what policies and grants refer to; it is fixed once the role exists.
        return ["key", "is_default"] if obj else ["is_default"]

    def has_delete_permission(self, request: HttpRequest, obj: SecurityRole | None = None) -> bool:
        return False


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(admin.ModelAdmin[RoleAssignment]):
    list_display = [
        "user",
        "role",
        "registered_model",
        "granted_at",
        "granted_by_name",
        "revoked_at",
    ]
    list_filter = ["role", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "role__key", "registered_model__name"]
    list_select_related = ["user", "role", "registered_model"]
    actions = ["revoke"]
    add_fields = ["user", "role", "registered_model", "reason"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: RoleAssignment | None = None
    ) -> list[str]:
        if obj is None:
            return []
        return [
            "user", "role", "registered_model", "reason", "granted_at", "granted_by_name",
            "revoked_at", "revoked_by_name", "revoke_reason",
        ]  # fmt: skip

    def get_fields(  # type: ignore[override]  # a plain list of names is all the admin needs
        self, request: HttpRequest, obj: RoleAssignment | None = None
    ) -> Sequence[str]:
        return self.add_fields if obj is None else self.get_readonly_fields(request, obj)

    def has_delete_permission(
        self, request: HttpRequest, obj: RoleAssignment | None = None
    ) -> bool:
        return False

    def save_model(
        self,
        request: HttpRequest,
        obj: RoleAssignment,
        form: ModelForm[RoleAssignment],
        change: bool,
    ) -> None:
        if change:
            return  # every field is read-only once granted
        try:
            granted = services.role_grant(
                user=obj.user,
                role=obj.role,
                registered_model=obj.registered_model,
                acting_user=_staff(request),
                reason=obj.reason,
            )
        except DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return
        obj.pk = granted.pk

    def response_add(
        self, request: HttpRequest, obj: RoleAssignment, post_url_continue: Any = None
    ) -> Any:
        if obj.pk is None:
            return self.response_post_save_add(request, obj)
        return super().response_add(request, obj, post_url_continue)

    @admin.action(description="Revoke the selected role grants")
    def revoke(self, request: HttpRequest, queryset: QuerySet[RoleAssignment]) -> None:
        revoked = 0
        for assignment in queryset.filter(revoked_at__isnull=True).select_related(
            "user", "role", "registered_model"
        ):
            services.role_revoke(
                user=assignment.user,
                role=assignment.role,
                registered_model=assignment.registered_model,
                acting_user=_staff(request),
                reason="revoked in the admin",
            )
            revoked += 1
        self.message_user(request, f"Revoked {revoked} grant(s).", messages.SUCCESS)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Tokens are created and revoked by their owners (UI, API, command); hashes stay hidden."""

    list_display = ["prefix", "user", "name", "scopes", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["prefix", "user__username", "name"]
    exclude = ["secret_hash"]


@admin.register(PromotionPolicy)
class PromotionPolicyAdmin(admin.ModelAdmin[PromotionPolicy]):
    """Saved through ``policy_save``: validated as a whole (errors show on the form) and logged
    as ``policy.changed``. Never deleted here: a deletion would not be logged."""

    form = PromotionPolicyAdminForm
    list_display = [
        "alias",
        "risk_tier",
        "approvals",
        "is_default",
        "updated_at",
        "updated_by_name",
    ]
    list_filter = ["alias", "risk_tier", "is_default"]
    readonly_fields = ["is_default", "updated_at", "updated_by_name"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: PromotionPolicy | None = None
    ) -> list[str]:
        # (alias, tier) is the policy's identity: another pair is another policy.
        fixed = ["alias", "risk_tier"] if obj else []
        return [*fixed, *self.readonly_fields]

    def has_delete_permission(
        self, request: HttpRequest, obj: PromotionPolicy | None = None
    ) -> bool:
        return False

    def save_model(
        self,
        request: HttpRequest,
        obj: PromotionPolicy,
        form: ModelForm[PromotionPolicy],
        change: bool,
    ) -> None:
        assert isinstance(form, PromotionPolicyAdminForm)  # noqa: S101  (self.form)
        saved = policy_save(document=form.document, actor=actor_for(_staff(request)))
        obj.pk = saved.pk
        obj.updated_at, obj.updated_by_name = saved.updated_at, saved.updated_by_name


@admin.register(ModelRiskTier)
class ModelRiskTierAdmin(admin.ModelAdmin[ModelRiskTier]):
    """Classified through ``risk_tier_set``, which logs ``risk_tier.changed``."""

    list_display = ["registered_model", "tier", "set_by_name", "set_at", "reason"]
    list_filter = ["tier"]
    search_fields = ["registered_model__name"]
    list_select_related = ["registered_model"]
    fields = ["registered_model", "tier", "reason", "set_by_name", "set_at"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: ModelRiskTier | None = None
    ) -> list[str]:
        return ["registered_model", "set_by_name", "set_at"] if obj else ["set_by_name", "set_at"]

    def has_delete_permission(self, request: HttpRequest, obj: ModelRiskTier | None = None) -> bool:
        return False

    def save_model(
        self,
        request: HttpRequest,
        obj: ModelRiskTier,
        form: ModelForm[ModelRiskTier],
        change: bool,
    ) -> None:
        saved = risk_tier_set(
            registered_model=obj.registered_model,
            tier=obj.tier,
            actor=actor_for(_staff(request), registered_model=obj.registered_model),
            reason=obj.reason,
        )
        obj.pk = saved.pk
        obj.set_by_name, obj.set_at = saved.set_by_name, saved.set_at


@admin.register(PromotionRequest)
class PromotionRequestAdmin(ReadOnlyAdmin):
    """Requests move only through the workflow's services (the web UI, the API)."""

    list_display = ["id", "registered_model", "version", "alias", "status", "break_glass",
                    "requested_by", "requested_at"]  # fmt: skip
    list_filter = ["status", "break_glass", "alias", "risk_tier"]
    search_fields = ["registered_model__name", "alias", "requested_by__username"]
    list_select_related = ["registered_model", "version", "requested_by"]


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ["request", "approver_name", "decision", "roles", "decided_at", "voided_at"]
    list_filter = ["decision"]
    search_fields = ["approver_name", "attestation_digest"]
    list_select_related = ["request__registered_model", "request__version"]


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    """Resolved on the Incidents page, with a resolution that is logged."""

    list_display = ["id", "kind", "status", "registered_model", "summary", "opened_at"]
    list_filter = ["kind", "status"]
    search_fields = ["summary", "registered_model__name"]
    list_select_related = ["registered_model"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["user", "message", "created_at", "read_at"]
    list_filter = [("read_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "message"]
    list_select_related = ["user"]
