from __future__ import annotations

from django.urls import path

from compliance.evidence import api

urlpatterns = [
    path("evidence", api.EvidenceListApi.as_view(), name="api-evidence-list"),
    path("evidence/<int:bundle_id>", api.EvidenceDetailApi.as_view(), name="api-evidence-detail"),
    path(
        "evidence/<int:bundle_id>/download",
        api.EvidenceDownloadApi.as_view(),
        name="api-evidence-download",
    ),
]
