from __future__ import annotations

from django.urls import path

from compliance import promotion_views, views
from compliance.evidence import views as evidence_views

app_name = "compliance"
urlpatterns = [
    path("roles/", views.role_overview, name="roles"),
    path("tokens/", views.token_list, name="tokens"),
    path("tokens/<str:prefix>/revoke", views.token_revoke, name="token-revoke"),
    path("promotions/", promotion_views.promotion_list, name="promotions"),
    path(
        "promotions/<int:request_id>/",
        promotion_views.promotion_detail,
        name="promotion-detail",
    ),
    path(
        "promotions/<int:request_id>/decide",
        promotion_views.promotion_decide,
        name="promotion-decide",
    ),
    path(
        "promotions/<int:request_id>/withdraw",
        promotion_views.promotion_withdraw,
        name="promotion-withdraw",
    ),
    path(
        "promotions/new/<str:name>/<int:version>",
        promotion_views.promotion_new,
        name="promotion-new",
    ),
    path(
        "promotions/break-glass/<str:name>/<int:version>",
        promotion_views.promotion_break_glass,
        name="promotion-break-glass",
    ),
    path("incidents/", promotion_views.incident_list, name="incidents"),
    path(
        "incidents/<int:incident_id>/resolve",
        promotion_views.incident_resolve,
        name="incident-resolve",
    ),
    path("evidence/", evidence_views.evidence_list, name="evidence"),
    path("evidence/<int:bundle_id>/", evidence_views.evidence_detail, name="evidence-detail"),
    path(
        "evidence/<int:bundle_id>/download",
        evidence_views.evidence_download,
        name="evidence-download",
    ),
    path("evidence/<int:bundle_id>/retry", evidence_views.evidence_retry, name="evidence-retry"),
    path("evidence/auditors/", evidence_views.auditor_access, name="auditor-access"),
    path(
        "evidence/auditors/<int:grant_id>/revoke",
        evidence_views.auditor_revoke,
        name="auditor-revoke",
    ),
    path("inbox/", promotion_views.inbox_list, name="inbox"),
    path("inbox/read", promotion_views.inbox_mark_read, name="inbox-read"),
]
