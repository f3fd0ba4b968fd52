"""The registry's pages: signed-in only, narrowed to the models one holds a role on, showing
what was mirrored, with a fixed query count."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from compliance.models import SecurityRole
from compliance.services import role_grant
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


def grant(user: User, model: RegisteredModel | None = None) -> None:
    role_grant(
        user=user,
        role=SecurityRole.objects.get(key="model_validator"),
        registered_model=model,
        acting_user=None,
        actor_name="test",
    )


@pytest.fixture
def viewer(client: Client) -> User:
    """Holds a role globally: sees every model."""
    user = make_user("viewer")
    grant(user)
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
    # session, user, roles, inbox badge, models, aliases; compliance: tiers, incidents, promotions
    with django_assert_max_num_queries(9) as few:
        client.get("/models/")
    for index in range(3, 12):
        build_model(f"model-{index}")

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/models/")

    page = response.content.decode()
    assert page.count("production → v1") == 12
    assert "model-11" in page


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


# --- who sees what ----------------------------------------------------------------------


def test_an_outsider_sees_no_model_in_the_inventory(client: Client, outsider: User) -> None:
    build_model("fraud")
    client.force_login(outsider)

    page = client.get("/models/").content.decode()

    assert "fraud" not in page
    assert "production" not in page
    assert "You hold no role on any model" in page


@pytest.mark.parametrize(
    "url", ["/models/fraud/", "/models/fraud/versions/1/", "/models/fraud/versions/2/"]
)
def test_an_outsider_is_told_a_model_does_not_exist(
    client: Client, outsider: User, url: str
) -> None:
    build_model("fraud")
    client.force_login(outsider)

    response = client.get(url)

    assert response.status_code == 404
    assert "fraud-run" not in response.content.decode()


@pytest.mark.parametrize("action", ["rescan", "reverify"])
def test_an_outsider_cannot_queue_work_on_a_version(
    client: Client, outsider: User, action: str
) -> None:
    build_model("fraud")
    client.force_login(outsider)

    response = client.post(f"/models/fraud/versions/1/{action}")

    assert response.status_code == 404


def test_a_role_on_one_model_shows_that_model_only(client: Client) -> None:
    fraud = build_model("fraud")
    build_model("churn")
    fiona = make_user("fiona")
    grant(fiona, fraud)
    client.force_login(fiona)

    inventory = client.get("/models/").content.decode()

    assert "/models/fraud/" in inventory
    assert "churn" not in inventory
    assert client.get("/models/fraud/versions/1/").status_code == 200
    assert client.get("/models/churn/").status_code == 404
    assert client.get("/models/churn/versions/1/").status_code == 404


def test_a_version_number_beyond_the_column_is_not_found(client: Client, viewer: User) -> None:
    build_model("fraud")

    assert client.get(f"/models/fraud/versions/{2**63}/").status_code == 404


def test_login_page_renders_without_external_assets(client: Client) -> None:
    page = client.get("/login/").content.decode()

    assert "Sign in" in page
    assert "http://" not in page
    assert "https://" not in page
