"""The log's HTTP API: checkpoint, entries, RFC 9162 proofs a third party can check, keys."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from provenance import services
from provenance.log_format import Actor, Event
from provenance.merkle import leaf_hash, verify_consistency, verify_inclusion
from provenance.signed_note import NoteVerifier, open_note, parse_checkpoint
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
API = "/api/v1/log"


def fill(count: int) -> None:
    for n in range(count):
        services.log_append(
            Event(
                event_type="test.event",
                actor=Actor.system(),
                object_type="thing",
                object_id=str(n),
                after={"n": n},
            )
        )


@pytest.fixture
def member(client: Client) -> User:
    user = make_user("auditor")
    client.force_login(user)
    return user


def test_latest_checkpoint_is_public_and_verifies_with_the_public_key(client: Client) -> None:
    fill(9)
    services.checkpoint_issue()

    checkpoint = client.get(f"{API}/checkpoint").json()
    keys = client.get(f"{API}/public-key").json()["keys"]

    verifiers = [NoteVerifier.from_verifier_key(k["verifier_key"]) for k in keys]
    body, _ = open_note(checkpoint["note"], verifiers)
    head = parse_checkpoint(body)
    assert head.size == checkpoint["tree_size"] == 10
    assert base64.b64encode(head.root_hash).decode() == checkpoint["root_hash"]
    assert keys[0]["algorithm"] == "Ed25519"
    assert keys[0]["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")


def test_no_checkpoint_yet_is_a_404_with_a_code(client: Client) -> None:
    response = client.get(f"{API}/checkpoint")

    assert response.status_code == 404
    assert response.json()["code"] == "log_no_checkpoint"


def test_an_inclusion_proof_checks_against_the_signed_root(client: Client, member: User) -> None:
    fill(25)
    checkpoint = services.checkpoint_issue()
    assert checkpoint is not None
    size = checkpoint.tree_size

    for index in (0, 7, 13, size - 1):
        proof = client.get(
            f"{API}/proof/inclusion", {"leaf_index": index, "tree_size": size}
        ).json()
        entry = client.get(f"{API}/entries", {"start": index, "limit": 1}).json()["entries"][0]
        data = base64.b64decode(entry["entry_b64"])
        assert base64.b64decode(proof["leaf_hash"]) == leaf_hash(data)
        path = [base64.b64decode(node) for node in proof["inclusion_path"]]
        assert verify_inclusion(leaf_hash(data), index, size, path, bytes(checkpoint.root_hash))


def test_a_consistency_proof_links_two_checkpoints(client: Client) -> None:
    fill(6)
    older = services.checkpoint_issue()
    fill(11)
    newer = services.checkpoint_issue()
    assert older is not None
    assert newer is not None

    proof = client.get(
        f"{API}/proof/consistency",
        {"tree_size_1": older.tree_size, "tree_size_2": newer.tree_size},
    ).json()

    path = [base64.b64decode(node) for node in proof["consistency_path"]]
    assert verify_consistency(
        older.tree_size, newer.tree_size, bytes(older.root_hash), bytes(newer.root_hash), path
    )


def test_entries_are_paginated(client: Client, member: User) -> None:
    fill(7)

    first = client.get(f"{API}/entries", {"start": 0, "limit": 3}).json()
    second = client.get(f"{API}/entries", {"start": first["next_start"], "limit": 3}).json()
    last = client.get(f"{API}/entries", {"start": second["next_start"], "limit": 3}).json()

    indexes = [e["index"] for page in (first, second, last) for e in page["entries"]]
    assert indexes == list(range(7))
    assert last["next_start"] is None
    assert first["entries"][0]["entry"]["object"] == {"type": "thing", "id": "0"}


def test_entries_need_a_sign_in(client: Client) -> None:
    fill(1)
    response = client.get(f"{API}/entries")
    assert response.status_code == 403
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    ("url", "params", "code"),
    [
        ("proof/inclusion", {"leaf_index": 5, "tree_size": 5}, "log_index_out_of_range"),
        ("proof/inclusion", {"leaf_index": 0, "tree_size": 99}, "log_size_out_of_range"),
        ("proof/inclusion", {"leaf_index": "x", "tree_size": 3}, "invalid"),
        ("proof/inclusion", {"tree_size": 3}, "invalid"),
        ("proof/consistency", {"tree_size_1": 4, "tree_size_2": 3}, "log_size_out_of_range"),
        ("proof/consistency", {"tree_size_1": 1, "tree_size_2": 50}, "log_size_out_of_range"),
        ("proof/consistency", {"tree_size_1": 0, "tree_size_2": 3}, "invalid"),
        ("entries", {"limit": 5000}, "invalid"),
        ("entries", {"start": -1}, "invalid"),
    ],
)
def test_bad_parameters_are_400_with_a_code(
    client: Client, member: User, url: str, params: dict[str, Any], code: str
) -> None:
    fill(5)

    response = client.get(f"{API}/{url}", params)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["detail"]


def test_the_log_status_page_shows_size_checkpoint_and_verification(
    client: Client, member: User
) -> None:
    fill(4)
    services.checkpoint_issue()
    services.log_verify()

    page = client.get("/governance/log/").content.decode()

    assert "Entries</dt><dd>5" in page
    assert "size 5" in page
    assert "verified" in page


def test_the_schema_describes_the_log_endpoints(client: Client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    for path in ("checkpoint", "entries", "proof/inclusion", "proof/consistency", "public-key"):
        assert f"/api/v1/log/{path}" in schema["paths"]
