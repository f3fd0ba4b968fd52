from __future__ import annotations

from django.urls import path

from registry import views

app_name = "registry"
urlpatterns = [
    path("", views.model_list, name="model-list"),
    path("<str:name>/", views.model_detail, name="model-detail"),
    path("<str:name>/versions/<int:version>/", views.version_detail, name="version-detail"),
    path(
        "<str:name>/versions/<int:version>/rescan",
        views.version_rescan,
        name="version-rescan",
    ),
    path(
        "<str:name>/versions/<int:version>/reverify",
        views.version_reverify,
        name="version-reverify",
    ),
]
