"""The security roles over HTTP: the catalogue, and who holds which role on what (read only;
granting and revoking stay in the UI and the management commands, which log every change).

Anyone holding a role sees the catalogue. Holders of a global role see every assignment;
others see the assignments on the models they may see, and their own.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_serializer, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import selectors
from compliance.models import RoleAssignment
from config.access import visibility_for
from config.pagination import cursor_ordered_by


@extend_schema_serializer(component_name="SecurityRole")
class RoleOutput(serializers.Serializer[Any]):
    key = serializers.CharField()
    name = serializers.CharField()
    pillar = serializers.CharField()
    phases = serializers.ListField(child=serializers.CharField())
    responsibilities = serializers.CharField()
    capabilities = serializers.ListField(child=serializers.CharField())
    is_default = serializers.BooleanField(help_text="shipped with the product")


@extend_schema_serializer(component_name="RoleAssignment")
class AssignmentOutput(serializers.Serializer[RoleAssignment]):
    id = serializers.IntegerField()
    user = serializers.CharField(source="user.username")
    role = serializers.CharField(source="role.key")
    model = serializers.CharField(
        source="registered_model.name", allow_null=True, help_text="null: every model"
    )
    active = serializers.BooleanField(source="is_active")
    reason = serializers.CharField()
    granted_at = serializers.DateTimeField()
    granted_by_name = serializers.CharField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked_by_name = serializers.CharField()


class AssignmentFilter(django_filters.FilterSet):  # type: ignore[misc]  # untyped library
    role = django_filters.CharFilter(field_name="role__key", help_text="a role key")
    model = django_filters.CharFilter(field_name="registered_model__name")
    scope = django_filters.ChoiceFilter(
        choices=[("global", "global"), ("model", "model")],
        method="filter_scope",
        help_text="`global` grants only, or `model` grants only",
    )
    user = django_filters.CharFilter(field_name="user__username")
    active = django_filters.BooleanFilter(
        field_name="revoked_at", lookup_expr="isnull", help_text="not revoked"
    )

    class Meta:
        model = RoleAssignment
        fields = ["role", "model", "scope", "user", "active"]

    def filter_scope(
        self, queryset: QuerySet[RoleAssignment], name: str, value: str
    ) -> QuerySet[RoleAssignment]:
        return queryset.filter(registered_model__isnull=value == "global")


class RoleListApi(APIView):
    """The catalogue of security roles."""

    @extend_schema(responses=RoleOutput(many=True), operation_id="roles_list")
    def get(self, request: Request) -> Response:
        roles = selectors.role_catalogue_for(visibility=visibility_for(request.user))
        return Response(RoleOutput(roles, many=True).data)


@extend_schema_view(get=extend_schema(operation_id="role_assignments_list"))
class AssignmentListApi(generics.ListAPIView):  # type: ignore[type-arg]  # RoleAssignment
    """Role assignments, active and revoked, newest first."""

    queryset = RoleAssignment.objects.none()  # for the schema; get_queryset narrows
    serializer_class = AssignmentOutput
    filter_backends = [DjangoFilterBackend]
    filterset_class = AssignmentFilter
    pagination_class = cursor_ordered_by("-id")

    def get_queryset(self) -> QuerySet[RoleAssignment]:
        user = self.request.user
        if getattr(self, "swagger_fake_view", False) or not isinstance(user, User):
            return RoleAssignment.objects.none()
        return selectors.assignments_visible(user=user, visibility=visibility_for(user))
