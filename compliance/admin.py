"""Admin for the role catalogue and role grants. Grants go through the services, never the ORM."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from compliance import services
from compliance.models import RoleAssignment, SecurityRole
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
