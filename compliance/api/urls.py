from __future__ import annotations

from django.urls import path

from compliance.api import promotions, roles, views

PROMOTION = "promotions/<int:promotion_id>"

urlpatterns = [
    path("tokens", views.TokenListApi.as_view(), name="api-token-list"),
    path("tokens/<str:prefix>", views.TokenDetailApi.as_view(), name="api-token-detail"),
    path("tokens/<str:prefix>/revoke", views.TokenRevokeApi.as_view(), name="api-token-revoke"),
    path("roles", roles.RoleListApi.as_view(), name="api-role-list"),
    path("role-assignments", roles.AssignmentListApi.as_view(), name="api-role-assignment-list"),
    path("promotions", promotions.PromotionListApi.as_view(), name="api-promotion-list"),
    path(
        "promotions/break-glass",
        promotions.PromotionBreakGlassApi.as_view(),
        name="api-promotion-break-glass",
    ),
    path(PROMOTION, promotions.PromotionDetailApi.as_view(), name="api-promotion-detail"),
    path(
        f"{PROMOTION}/approve",
        promotions.PromotionApproveApi.as_view(),
        name="api-promotion-approve",
    ),
    path(
        f"{PROMOTION}/reject", promotions.PromotionRejectApi.as_view(), name="api-promotion-reject"
    ),
    path(
        f"{PROMOTION}/withdraw",
        promotions.PromotionWithdrawApi.as_view(),
        name="api-promotion-withdraw",
    ),
]
