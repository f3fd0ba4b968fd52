"""The owner's API token page: create (secret shown once), list, revoke; nobody else's tokens."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from compliance import tokens
from compliance.models import ApiToken

pytestmark = pytest.mark.django_db
PAGE = "/governance/tokens/"


@pytest.fixture
def alice(client: Client, personas: dict[str, User]) -> User:
    client.force_login(personas["alice"])
    return personas["alice"]


def create(client: Client, **fields: Any) -> Any:
    data = {"name": "ci-attest", "scopes": ["attest"], "expires_in_days": 30, **fields}
    return client.post(PAGE, data)


def test_the_page_needs_a_sign_in(client: Client) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_creating_shows_the_secret_once(client: Client, alice: User) -> None:
    response = create(client, scopes=["read", "attest"])

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get()
    page = response.content.decode()
    match = re.search(rf"{token.prefix}_[A-Za-z0-9_-]{{43}}", page)
    assert match is not None
    secret = match.group(0)
    assert token.secret_hash == tokens.token_hash(secret)
    assert token.scopes == ["read", "attest"]
    assert token.user == alice

    later = client.get(PAGE).content.decode()
    assert secret not in later
    assert token.prefix in later
    assert "ci-attest" in later


def test_an_invalid_form_creates_nothing(client: Client, alice: User, settings: Any) -> None:
    settings.API_TOKEN_MAX_DAYS = 10

    no_scope = create(client, scopes=[])
    too_long = create(client, expires_in_days=11)

    for response in (no_scope, too_long):
        assert response.status_code == 400
        assert 'class="error"' in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoking_keeps_the_row_and_says_so(client: Client, alice: User) -> None:
    issued = tokens.api_token_create(
        user=alice, name="ci", scopes=["read"], expires_in_days=5, acting_user=alice
    )

    response = client.post(f"{PAGE}{issued.token.prefix}/revoke", follow=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert f"Revoked {issued.token.prefix}" in page
    assert "revoked" in page
    row = ApiToken.objects.get()
    assert row.revoked_at is not None
    assert row.revoked_by == alice


def test_revoking_needs_a_post(client: Client, alice: User) -> None:
    issued = tokens.api_token_create(
        user=alice, name="ci", scopes=["read"], expires_in_days=5, acting_user=alice
    )
    assert client.get(f"{PAGE}{issued.token.prefix}/revoke").status_code == 405
    assert ApiToken.objects.get().revoked_at is None


def test_another_person_s_tokens_are_neither_shown_nor_revocable(
    client: Client, personas: dict[str, User]
) -> None:
    bob = personas["bob"]
    issued = tokens.api_token_create(
        user=bob, name="bob-pipeline", scopes=["read"], expires_in_days=5, acting_user=bob
    )
    client.force_login(personas["alice"])

    page = client.get(PAGE).content.decode()
    revoke = client.post(f"{PAGE}{issued.token.prefix}/revoke")

    assert "bob-pipeline" not in page
    assert issued.token.prefix not in page
    assert revoke.status_code == 404
    assert ApiToken.objects.get().revoked_at is None


def test_the_list_costs_the_same_queries_for_many_tokens(
    client: Client, alice: User, django_assert_max_num_queries: Any
) -> None:
    for number in range(5):
        tokens.api_token_create(
            user=alice, name=f"t{number}", scopes=["read"], expires_in_days=5, acting_user=alice
        )
    with django_assert_max_num_queries(4):  # session, user, tokens (+ a savepoint at most)
        assert client.get(PAGE).status_code == 200
