from __future__ import annotations

from django.urls import path

from compliance.api import roles, views

urlpatterns = [
    path("tokens", views.TokenListApi.as_view(), name="api-token-list"),
    path("tokens/<str:prefix>", views.TokenDetailApi.as_view(), name="api-token-detail"),
    path("tokens/<str:prefix>/revoke", views.TokenRevokeApi.as_view(), name="api-token-revoke"),
    path("roles", roles.RoleListApi.as_view(), name="api-role-list"),
    path("role-assignments", roles.AssignmentListApi.as_view(), name="api-role-assignment-list"),
]
