"""The registry's pages: signed-in only, showing what was mirrored, with a fixed query count."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from registry.choices import AliasChangeSource, VersionStatus
from registry.models import (
    AliasHistory,
    Dataset,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    Run,
    RunInput,
)
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def build_model(name: str, versions: int = 2) -> RegisteredModel:
    now = timezone.now()
    model = RegisteredModel.objects.create(name=name)
    rows = []
    for number in range(1, versions + 1):
        run = Run.objects.create(
            run_id=f"{name}-run-{number}", user="alice", params={"lr": "0.1"}, metrics={"auc": 0.9}
        )
        dataset, _ = Dataset.objects.get_or_create(name="transactions", digest="abcd1234")
        RunInput.objects.create(run=run, dataset=dataset, context="training")
        rows.append(
            ModelVersion.objects.create(
                registered_model=model, version=number, run=run, mlflow_run_id=run.run_id
            )
        )
    ModelAlias.objects.create(
        registered_model=model, alias="production", version=rows[0], updated_at=now
    )
    AliasHistory.objects.create(
        registered_model=model,
        alias="production",
        to_version=rows[0],
        changed_at=now,
        source=AliasChangeSource.RECONCILE,
    )
    return model


@pytest.fixture
def viewer(client: Client) -> User:
    user = make_user("viewer")
    client.force_login(user)
    return user


@pytest.mark.parametrize(
    "url", ["/models/", "/models/fraud/", "/models/fraud/versions/1/", "/governance/roles/"]
)
def test_pages_need_a_sign_in(client: Client, url: str) -> None:
    build_model("fraud")

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_inventory_lists_models_with_aliases(client: Client, viewer: User) -> None:
    build_model("fraud")

    page = client.get("/models/").content.decode()

    assert "fraud" in page
    assert "production → v1" in page


def test_inventory_query_count_does_not_grow_with_models(
    client: Client, viewer: User, django_assert_max_num_queries: Any
) -> None:
    for index in range(3):
        build_model(f"model-{index}")
    with django_assert_max_num_queries(6) as few:
        client.get("/models/")
    for index in range(3, 12):
        build_model(f"model-{index}")

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/models/")

    assert response.content.decode().count("/versions/") == 0
    assert "model-11" in response.content.decode()


def test_model_page_shows_versions_and_alias_history(client: Client, viewer: User) -> None:
    build_model("fraud")

    page = client.get("/models/fraud/").content.decode()

    assert "/models/fraud/versions/2/" in page
    assert "Alias history" in page
    assert "not reported by MLflow" in page


def test_version_page_shows_run_and_datasets(client: Client, viewer: User) -> None:
    build_model("fraud")

    page = client.get("/models/fraud/versions/1/").content.decode()

    assert "fraud-run-1" in page
    assert "transactions" in page
    assert "training" in page
    assert "auc" in page


def test_deleted_versions_say_so(client: Client, viewer: User) -> None:
    build_model("fraud")
    ModelVersion.objects.filter(version=2).update(
        status=VersionStatus.DELETED, deleted_at=timezone.now()
    )

    page = client.get("/models/fraud/versions/2/").content.decode()

    assert "Deleted in MLflow" in page


@pytest.mark.parametrize("url", ["/models/nope/", "/models/fraud/versions/99/"])
def test_unknown_model_or_version_is_404(client: Client, viewer: User, url: str) -> None:
    build_model("fraud")
    assert client.get(url).status_code == 404


def test_login_page_renders_without_external_assets(client: Client) -> None:
    page = client.get("/login/").content.decode()

    assert "Sign in" in page
    assert "http://" not in page
    assert "https://" not in page
