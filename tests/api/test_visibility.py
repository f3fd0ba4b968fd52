"""Every read of the API is narrowed to what the caller may see (netbox's generic API tests).

The walk below finds every ``GET`` endpoint under ``/api/v1/`` in the URL map and asks for the
``churn`` model's things: someone without a role gets "not found" or an empty list, someone
holding a role on ``fraud`` only the same, and nobody signed out gets anything at all. A new
endpoint is covered the moment it is routed — or the walk fails, asking for sample values.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from compliance import tokens
from compliance.choices import EvidenceScope, PromotionStatus
from compliance.models import EvidenceBundle, PromotionRequest
from tests.api.conftest import CHURN_1, CHURN_ONLY, RAW, SHARED, World, signed_in
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

# The governance log is one Merkle tree: a reader gets every entry or can verify nothing, so
# any signed-in person reads all of it (docs/log.md). It is the one deliberate exception.
WHOLE_LOG = {"log-entries"}


def api_get_routes() -> list[tuple[str, str, list[str]]]:
    """(url name, route, path parameters) of every GET endpoint under /api/v1/."""
    found: list[tuple[str, str, list[str]]] = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
                continue
            view = getattr(pattern.callback, "cls", None)
            if not route.startswith("api/v1/") or view is None or not hasattr(view, "get"):
                continue
            assert issubclass(view, APIView)
            if AllowAny in view.permission_classes or pattern.name in WHOLE_LOG:
                continue
            found.append((str(pattern.name), route, list(pattern.pattern.converters)))

    walk(get_resolver().url_patterns, "")
    return found


def churn_url(world: World, name: str, parameters: list[str]) -> str:
    """The URL of ``name`` pointing at something of the ``churn`` model."""
    samples: dict[str, Any] = {
        "name": "churn",
        "version": 1,
        "run_id": "run-churn-1",
        "dataset_id": world.datasets["churn-events"].pk,
        "digest": f"sha256:{CHURN_1}",
        "envelope_digest": world.attestations["train-churn"].envelope_digest,
        "prefix": someone_elses_token(),
        "promotion_id": churn_promotion(world).pk,
        "bundle_id": churn_bundle(world).pk,
    }
    missing = set(parameters) - set(samples)
    assert not missing, f"{name}: add sample values for {missing} to this test"
    url = reverse(name, kwargs={p: samples[p] for p in parameters})
    query = QUERIES.get(name, {})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


QUERIES = {
    "api-lineage": {"node": "model_version:churn/1"},
    "api-lineage-path": {"from": f"sha256:{RAW}", "to": "model_version:churn/1"},
    "api-lineage-impact": {"node": f"sha256:{CHURN_ONLY}"},
}


def churn_owner() -> User:
    return User.objects.filter(username="churn-owner").first() or make_user("churn-owner")


def churn_promotion(world: World) -> PromotionRequest:
    """A request on churn/1 by someone else than the caller of any test here."""
    now = timezone.now()
    return PromotionRequest.objects.create(
        registered_model=world.models["churn"],
        version=world.versions["churn/1"],
        alias="production",
        status=PromotionStatus.PENDING,
        model_digest=CHURN_1,
        risk_tier="high",
        reason="churn model",
        requested_by=churn_owner(),
        requested_at=now,
        expires_at=now + timedelta(days=1),
        updated_at=now,
    )


def churn_bundle(world: World) -> EvidenceBundle:
    return EvidenceBundle.objects.create(
        scope=EvidenceScope.MODEL_VERSION,
        version=world.versions["churn/1"],
        requested_by=churn_owner(),
        requested_by_name="churn-owner",
        requested_at=timezone.now(),
    )


def someone_elses_token() -> str:
    owner = User.objects.filter(username="tokens-owner").first() or make_user("tokens-owner")
    return tokens.api_token_create(
        user=owner, name="x", scopes=["read"], expires_in_days=1, acting_user=owner
    ).token.prefix


def is_nothing(response: Any) -> bool:
    """A 404, or a 200 listing nothing (a page, a plain list, or the owner's tokens)."""
    if response.status_code == 404:
        return True
    if response.status_code != 200:
        return False
    body = response.json()
    if isinstance(body, dict):
        return bool(body.get("results", body.get("tokens")) == [])
    return bool(body == [])


CHURN_MARKERS = ["churn", CHURN_1, CHURN_ONLY, "run-churn-1"]


def test_the_walk_finds_the_endpoints() -> None:
    names = {name for name, _, _ in api_get_routes()}
    assert {"api-model-list", "api-lineage-impact", "api-attestation-envelope"} <= names
    assert "api-role-assignment-list" in names
    assert len(names) >= 20


def test_an_outsider_sees_nothing_anywhere(client: Client, world: World, outsider: User) -> None:
    signed_in(client, outsider)
    for name, _, parameters in api_get_routes():
        for url in {churn_url(world, name, parameters), reverse_bare(name, parameters)}:
            if url is None:
                continue
            response = client.get(url)
            assert is_nothing(response), f"{url}: {response.status_code} {response.content!r}"


def reverse_bare(name: str, parameters: list[str]) -> Any:
    """The list itself, for endpoints without path parameters; None otherwise."""
    return None if parameters or name in QUERIES else reverse(name)


def test_signed_out_callers_get_nothing_anywhere(client: Client, world: World) -> None:
    for name, _, parameters in api_get_routes():
        response = client.get(churn_url(world, name, parameters))
        assert response.status_code == 403, name
        assert response.json()["code"] == "not_authenticated"


def test_a_role_on_one_model_shows_nothing_of_another(
    client: Client, world: World, fraud_reader: User
) -> None:
    signed_in(client, fraud_reader)
    for name, _, parameters in api_get_routes():
        detail = client.get(churn_url(world, name, parameters))
        assert detail.status_code in (200, 404), name
        if parameters or name in QUERIES:
            assert detail.status_code == 404 or name == "api-token-detail", name
        if not parameters and name not in QUERIES:
            listed = client.get(reverse(name)).content.decode()
            for marker in CHURN_MARKERS:
                assert marker not in listed, f"{name} shows {marker}"


def test_a_role_on_one_model_shows_that_model(
    client: Client, world: World, fraud_reader: User
) -> None:
    signed_in(client, fraud_reader)

    models = client.get("/api/v1/models").json()["results"]
    version = client.get("/api/v1/models/fraud/versions/1")
    runs = client.get("/api/v1/runs").json()["results"]
    datasets = client.get("/api/v1/datasets").json()["results"]
    artifact = client.get(f"/api/v1/artifacts/sha256:{RAW}")

    assert [m["name"] for m in models] == ["fraud"]
    assert version.status_code == 200
    assert {r["run_id"] for r in runs} == {"run-fraud-1", "run-fraud-2"}
    assert [d["name"] for d in datasets] == ["transactions"]
    assert artifact.status_code == 200, "the lineage upstream of its versions is theirs to see"
    assert client.get(f"/api/v1/artifacts/sha256:{CHURN_ONLY}").status_code == 404


def test_a_shared_dataset_shows_only_the_visible_model_downstream(
    client: Client, world: World, fraud_reader: User
) -> None:
    signed_in(client, fraud_reader)

    graph = client.get("/api/v1/lineage", {"node": f"sha256:{SHARED}", "direction": "both"})

    refs = {node["ref"] for node in graph.json()["nodes"]}
    assert "model_version:fraud/1" in refs
    assert "run:etl-7" in refs
    assert not {ref for ref in refs if "churn" in ref}
    assert "churn" not in json.dumps(graph.json())


def test_attestations_are_those_about_visible_artifacts(
    client: Client, world: World, fraud_reader: User
) -> None:
    signed_in(client, fraud_reader)

    listed = client.get("/api/v1/attestations").json()["results"]

    expected = {"etl", "train-fraud", "eval-fraud", "observe-fraud"}
    assert {a["envelope_digest"] for a in listed} == {
        world.attestations[key].envelope_digest for key in expected
    }


def test_a_revoked_role_shows_nothing_again(
    client: Client, world: World, fraud_reader: User
) -> None:
    from compliance.models import SecurityRole
    from compliance.services import role_revoke

    role_revoke(
        user=fraud_reader,
        role=SecurityRole.objects.get(key="model_validator"),
        registered_model=world.models["fraud"],
        acting_user=None,
        actor_name="test",
    )
    signed_in(client, fraud_reader)

    assert client.get("/api/v1/models").json()["results"] == []
    assert client.get("/api/v1/models/fraud").status_code == 404


def test_staff_see_everything(client: Client, world: World, superuser: User) -> None:
    signed_in(client, superuser)

    models = client.get("/api/v1/models").json()["results"]

    assert [m["name"] for m in models] == ["churn", "fraud"]
