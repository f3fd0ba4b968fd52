"""The registry's API, mounted at ``/api/v1/`` (config/urls.py)."""

from __future__ import annotations

from django.urls import path

from registry.api import attestations, inventory, lineage, scans, views

VERSION = "models/<str:name>/versions/<int:version>"

urlpatterns = [
    path("models", inventory.ModelListApi.as_view(), name="api-model-list"),
    path("models/<str:name>", inventory.ModelDetailApi.as_view(), name="api-model-detail"),
    path("models/<str:name>/versions", inventory.VersionListApi.as_view(), name="api-version-list"),
    path(VERSION, inventory.VersionDetailApi.as_view(), name="api-version-detail"),
    path(
        f"{VERSION}/reverify",
        inventory.VersionReverifyApi.as_view(),
        name="api-version-reverify",
    ),
    path(f"{VERSION}/scan", scans.VersionScanApi.as_view(), name="api-version-scan"),
    path(f"{VERSION}/model.sig", views.ModelSignatureApi.as_view(), name="model-signature"),
    path(f"{VERSION}/manifest", views.ModelManifestApi.as_view(), name="model-manifest"),
    path("models/<str:name>/aliases", inventory.AliasListApi.as_view(), name="api-alias-list"),
    path(
        "models/<str:name>/alias-history",
        inventory.AliasHistoryApi.as_view(),
        name="api-alias-history",
    ),
    path("runs", inventory.RunListApi.as_view(), name="api-run-list"),
    path("runs/<str:run_id>", inventory.RunDetailApi.as_view(), name="api-run-detail"),
    path("datasets", inventory.DatasetListApi.as_view(), name="api-dataset-list"),
    path(
        "datasets/<int:dataset_id>",
        inventory.DatasetDetailApi.as_view(),
        name="api-dataset-detail",
    ),
    path(
        "artifacts/<str:digest>",
        attestations.ArtifactDetailApi.as_view(),
        name="api-artifact-detail",
    ),
    path(
        "attestations",
        attestations.AttestationListApi.as_view(),
        name="api-attestation-list",
    ),
    path(
        "attestations/<str:envelope_digest>",
        attestations.AttestationDetailApi.as_view(),
        name="api-attestation-detail",
    ),
    path(
        "attestations/<str:envelope_digest>/envelope",
        attestations.AttestationEnvelopeApi.as_view(),
        name="api-attestation-envelope",
    ),
    path("lineage", lineage.LineageApi.as_view(), name="api-lineage"),
    path("lineage/path", lineage.LineagePathApi.as_view(), name="api-lineage-path"),
    path("lineage/impact", lineage.LineageImpactApi.as_view(), name="api-lineage-impact"),
]
