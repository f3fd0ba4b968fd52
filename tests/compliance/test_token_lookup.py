"""The token lookup every API request makes (compliance/selectors.py ``api_token_by_prefix``):
one statement for the token, its owner and the owner's roles, read without the ORM but to the
same values; the roles answer ``visibility_of`` and ``roles_held`` for that request."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance import selectors, tokens
from compliance.models import ApiToken, SecurityRole
from compliance.services import role_revoke
from registry.models import RegisteredModel
from tests.api.conftest import grant
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def issue(user: User) -> tokens.IssuedToken:
    return tokens.api_token_create(
        user=user, name="ci", scopes=["read", "attest"], expires_in_days=3, acting_user=user
    )


def revoke(user: User, role: str, model: RegisteredModel | None = None) -> None:
    role_revoke(
        user=user,
        role=SecurityRole.objects.get(key=role),
        registered_model=model,
        acting_user=None,
        actor_name="test",
    )


def columns(instance: Model) -> dict[str, Any]:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def lookup(issued: tokens.IssuedToken) -> ApiToken:
    token = selectors.api_token_by_prefix(issued.token.prefix)
    assert token is not None
    return token


def test_the_token_and_its_owner_read_as_the_orm_reads_them() -> None:
    owner = make_user("olga", email="olga@example.org", first_name="Olga", is_staff=True)
    issued = issue(owner)
    ApiToken.objects.filter(pk=issued.token.pk).update(last_used_at=timezone.now())

    token = lookup(issued)

    expected = ApiToken.objects.select_related("user").get(pk=issued.token.pk)
    assert columns(token) == columns(expected)
    assert columns(token.user) == columns(expected.user)
    assert token.scopes == ["read", "attest"]  # the JSON column decoded
    assert timezone.is_aware(token.expires_at)
    assert token.user.is_staff is True
    assert token._state.adding is False
    assert token._state.db == connection.alias
    with CaptureQueriesContext(connection) as captured:
        assert token.user.pk == owner.pk  # the owner came with the token
    assert len(captured) == 0


def test_an_unknown_prefix_is_none() -> None:
    assert selectors.api_token_by_prefix("smr_0123456789abcdef") is None


@pytest.fixture
def models() -> dict[str, RegisteredModel]:
    return {name: RegisteredModel.objects.create(name=name) for name in ("fraud", "churn", "ads")}


@pytest.mark.parametrize(
    "grants",
    [
        [],
        [("model_validator", "fraud")],
        [("model_validator", "fraud"), ("model_developer", "churn")],
        [("model_validator", "fraud"), ("security_operations", None)],
    ],
    ids=["none", "one-model", "two-models", "global"],
)
def test_the_roles_read_with_the_token_answer_as_the_queries_do(
    models: dict[str, RegisteredModel], grants: list[tuple[str, str | None]]
) -> None:
    owner = make_user("olga")
    for role, model in grants:
        grant(owner, role, models[model] if model else None)
    grant(owner, "model_developer", models["ads"])
    revoke(owner, "model_developer", models["ads"])  # a revoked grant counts for nothing
    fresh = User.objects.get(pk=owner.pk)  # answers by querying

    token = lookup(issue(owner))

    with CaptureQueriesContext(connection) as captured:
        visibility = selectors.visibility_of(token.user)
        held = {
            name: selectors.roles_held(user=token.user, registered_model=models.get(name))
            for name in ("fraud", "churn", "ads", "global")
        }
    assert len(captured) == 0
    assert visibility == selectors.visibility_of(fresh)
    assert held == {
        name: selectors.roles_held(user=fresh, registered_model=models.get(name))
        for name in ("fraud", "churn", "ads", "global")
    }
    assert "ads" not in visibility.model_names


def test_each_request_reads_the_roles_afresh(models: dict[str, RegisteredModel]) -> None:
    owner = make_user("olga")
    issued = issue(owner)
    grant(owner, "model_validator", models["fraud"])
    assert selectors.visibility_of(lookup(issued).user).model_names == {"fraud"}

    revoke(owner, "model_validator", models["fraud"])

    assert selectors.visibility_of(lookup(issued).user).has_role is False


def test_an_inactive_or_staff_owner_is_judged_by_their_flags(
    models: dict[str, RegisteredModel],
) -> None:
    owner = make_user("olga")
    grant(owner, "model_validator", models["fraud"])
    issued = issue(owner)

    User.objects.filter(pk=owner.pk).update(is_staff=True)
    assert selectors.visibility_of(lookup(issued).user).everything is True
    User.objects.filter(pk=owner.pk).update(is_staff=False, is_active=False)
    assert selectors.visibility_of(lookup(issued).user).has_role is False
