"""URL map: UI pages, admin, health, webhooks."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.errors import api_not_found
from config.health import healthz
from provenance.api.signers import SignerListApi
from provenance.api.views import SigningKeysApi
from provenance.views import log_status
from registry.views import mlflow_webhook

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="registry:model-list"), name="home"),
    path("healthz", healthz, name="healthz"),
    path("webhooks/mlflow", mlflow_webhook, name="mlflow-webhook"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("oidc/", include("compliance.oidc")),  # single sign-on, 404 unless configured
    path("admin/", admin.site.urls),
    path("models/", include("registry.urls")),
    path("governance/", include("compliance.urls")),
    path("governance/log/", log_status, name="log-status"),
    path("api/v1/log/", include("provenance.api.urls")),
    path("api/v1/keys", SigningKeysApi.as_view(), name="signing-keys"),
    path("api/v1/signers", SignerListApi.as_view(), name="api-signer-list"),
    path("api/v1/", include("registry.api.urls")),
    path("api/v1/", include("compliance.api.urls")),
    path("api/v1/", include("compliance.evidence.api_urls")),
    re_path(r"^api/v1/(?P<unmatched>.*)$", api_not_found),  # last of the API: a JSON 404
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

handler500 = "config.errors.server_error"
