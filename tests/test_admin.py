"""Every admin page opens for a superuser, and mirrored or proven records cannot be edited."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import Model
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model", list(admin.site._registry), ids=lambda m: f"{m._meta.app_label}.{m._meta.model_name}"
)
def test_every_changelist_opens(client: Client, superuser: User, model: type[Model]) -> None:
    client.force_login(superuser)

    response = client.get(f"/admin/{model._meta.app_label}/{model._meta.model_name}/")

    assert response.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/admin/registry/modelversion/add/",
        "/admin/provenance/logentry/add/",
        "/admin/provenance/attestation/add/",
        "/admin/provenance/trustedsigner/add/",
    ],
)
def test_mirrored_and_proven_records_cannot_be_added_by_hand(
    client: Client, superuser: User, path: str
) -> None:
    client.force_login(superuser)

    assert client.get(path).status_code == 403
