from __future__ import annotations

from django.urls import path

from compliance import views

app_name = "compliance"
urlpatterns = [
    path("roles/", views.role_overview, name="roles"),
]
