from __future__ import annotations

from django.urls import path

from registry.api import views

urlpatterns = [
    path(
        "<str:name>/versions/<int:version>/model.sig",
        views.ModelSignatureApi.as_view(),
        name="model-signature",
    ),
    path(
        "<str:name>/versions/<int:version>/manifest",
        views.ModelManifestApi.as_view(),
        name="model-manifest",
    ),
]
