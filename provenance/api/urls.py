from __future__ import annotations

from django.urls import path

from provenance.api import views

urlpatterns = [
    path("checkpoint", views.LatestCheckpointApi.as_view(), name="log-checkpoint"),
    path("entries", views.EntriesApi.as_view(), name="log-entries"),
    path("proof/inclusion", views.InclusionProofApi.as_view(), name="log-proof-inclusion"),
    path("proof/consistency", views.ConsistencyProofApi.as_view(), name="log-proof-consistency"),
    path("public-key", views.PublicKeyApi.as_view(), name="log-public-key"),
]
