"""Contract fuzzing: schemathesis against /api/schema/, through the WSGI application.

For every ``/api/v1/`` operation the schema documents, schemathesis sends the schema's examples,
boundary values (its coverage phase) and a few dozen generated requests, valid and invalid,
with an API token holding every scope, owned by someone with a role on one model (so the
narrowing is fuzzed too). It checks that no response is a 5xx and that each one — status,
content type, headers, body — is what the schema says. Path and query values are drawn half the
time from what exists (the small registry of tests/api/conftest.py), so the 200s are exercised
too, not only the 404s. Generation is deterministic, so a failure here fails every run.

Left out, on purpose: ``/api/schema/`` and ``/api/docs/`` (they describe the API rather than
being part of it) and the MLflow webhook (not in the schema: it is authenticated by an HMAC
signature, which a fuzzer cannot produce, and tests/registry/test_webhooks.py covers it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from compliance import tokens
from config.wsgi import application
from tests.api.conftest import FRAUD_1, RAW, SHARED, World, grant
from tests.conftest import make_user

CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"max-examples": 25, "deterministic": True, "database": "none"},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_wsgi(
    "/api/schema/?format=json", application, config=CONFIG
).include(path_regex=r"^/api/v1/")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# What exists, filled in by the ``fuzzed`` fixture before each operation is fuzzed.
REAL: dict[str, Any] = {}
NODE_PARAMETERS = {"node", "from", "to"}


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Half the time, a path names something that exists."""
    if not path_parameters:
        return st.just(path_parameters)
    real = {name: REAL[name] for name in path_parameters if name in REAL}
    return st.sampled_from([path_parameters, {**path_parameters, **real}])


@schema.hook
def flatmap_query(context: Any, query: dict[str, Any] | None) -> Any:
    """Half the time, a lineage query names nodes that exist."""
    if not query or not NODE_PARAMETERS & set(query):
        return st.just(query)
    nodes = st.sampled_from(REAL["nodes"])
    real = st.fixed_dictionaries(dict.fromkeys(NODE_PARAMETERS & set(query), nodes))
    return st.one_of(st.just(query), real.map(lambda chosen: {**query, **chosen}))


@pytest.fixture
def _in_the_test_transaction() -> Iterator[None]:
    """Serve the WSGI requests inside the test's transaction, as Django's test client does:
    the handler's end-of-request hook would otherwise close the connection under the test."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzzed(world: World, settings: Any, _in_the_test_transaction: None) -> dict[str, str]:
    """The small registry, a token with every scope for someone holding a role on ``fraud``
    only (so the narrowing is fuzzed too), and no throttling (a fuzzer is a very fast client)."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": None, "token": None},
    }
    cache.clear()
    owner: User = make_user("fuzzer")
    grant(owner, "model_validator", world.models["fraud"])
    issued = tokens.api_token_create(
        user=owner,
        name="fuzz",
        scopes=["read", "attest", "approve"],
        expires_in_days=1,
        acting_user=owner,
    )
    REAL.clear()
    REAL.update(
        name="fraud",
        version=1,
        run_id="run-fraud-1",
        dataset_id=world.datasets["transactions"].pk,
        digest=f"sha256:{FRAUD_1}",
        envelope_digest=world.attestations["train-fraud"].envelope_digest,
        prefix=issued.token.prefix,
        nodes=[
            "model_version:fraud/1",
            f"sha256:{RAW}",
            f"dataset:sha256:{SHARED}",
            f"dataset:{world.datasets['transactions'].pk}",
            "run:run-fraud-1",
            "alias:fraud@production",
        ],
    )
    return {"Authorization": f"Bearer {issued.secret}"}


@pytest.mark.django_db
@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_contract(case: Any, fuzzed: dict[str, str]) -> None:
    case.call_and_validate(headers=fuzzed, checks=CHECKS)
