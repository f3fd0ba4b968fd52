"""The registry's resources over the API: what each says, filters, cursors, query counts."""

from __future__ import annotations

import base64
import json
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from provenance.models import Attestation, AttestationFormat, TrustedSigner
from registry import tasks
from registry.models import ModelVersion, RegisteredModel, Run
from tests.api.conftest import CHURN_1, FRAUD_1, SHARED, World, bearer, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client: Client, world: World, reader: User) -> Client:
    """Signed in as someone holding a role globally: sees everything."""
    return signed_in(client, reader)


# --- models and versions ----------------------------------------------------------------


def test_a_model_shows_its_live_versions_and_aliases(api: Client) -> None:
    body = api.get("/api/v1/models/fraud").json()

    assert body["name"] == "fraud"
    assert body["live_versions"] == 2
    assert body["aliases"] == [{"alias": "production", "version": 1}]
    assert body["versions_url"].endswith("/api/v1/models/fraud/versions")


def test_an_unknown_model_is_not_found_with_a_code(api: Client) -> None:
    response = api.get("/api/v1/models/nope")

    assert response.status_code == 404
    assert response.json() == {"code": "model_not_found", "detail": "no registered model 'nope'"}


def test_a_version_shows_digest_aliases_run_datasets_and_links(api: Client) -> None:
    body = api.get("/api/v1/models/fraud/versions/1").json()

    assert body["digest"] == f"sha256:{FRAUD_1}"
    assert body["hash_status"] == "hashed"
    assert body["aliases"] == ["production"]
    assert body["run_id"] == "run-fraud-1"
    assert body["run"].endswith("/api/v1/runs/run-fraud-1")
    assert body["manifest_url"].endswith("/api/v1/models/fraud/versions/1/manifest")
    assert body["model_sig_url"] is None  # the registry has not signed these files
    assert [(d["name"], d["sha256"]) for d in body["datasets"]] == [
        ("transactions", f"sha256:{SHARED}")
    ]


def test_an_unhashed_version_has_no_digest_and_no_manifest_link(api: Client) -> None:
    body = api.get("/api/v1/models/fraud/versions/2").json()

    assert body["digest"] is None
    assert body["manifest_url"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, [2, 1]),
        ({"alias": "production"}, [1]),
        ({"hash_status": "pending"}, [2]),
        ({"status": "deleted"}, []),
    ],
)
def test_versions_are_filtered(api: Client, query: dict[str, str], expected: list[int]) -> None:
    listed = api.get("/api/v1/models/fraud/versions", query).json()["results"]
    assert [v["version"] for v in listed] == expected


def test_a_bad_filter_value_is_refused_in_the_error_format(api: Client) -> None:
    response = api.get("/api/v1/models/fraud/versions", {"hash_status": "bogus"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "hash_status" in response.json()["errors"]


def test_aliases_and_their_history(api: Client) -> None:
    aliases = api.get("/api/v1/models/fraud/aliases").json()
    history = api.get("/api/v1/models/fraud/alias-history").json()["results"]

    assert aliases == [
        {
            "alias": "production",
            "version": 1,
            "digest": f"sha256:{FRAUD_1}",
            "updated_at": aliases[0]["updated_at"],
        }
    ]
    assert [(h["alias"], h["from_version"], h["to_version"]) for h in history] == [
        ("production", None, 1)
    ]


# --- runs and datasets ------------------------------------------------------------------


def test_runs_are_filtered_by_user(api: Client) -> None:
    listed = api.get("/api/v1/runs", {"user": "zed"}).json()["results"]

    assert [r["run_id"] for r in listed] == ["run-churn-1"]
    assert [d["name"] for d in listed[0]["datasets"]] == ["transactions", "churn-events"]
    assert listed[0]["model_versions"] == [{"model": "churn", "version": 1}]


def test_a_run_in_detail(api: Client) -> None:
    body = api.get("/api/v1/runs/run-fraud-1").json()

    assert body["model_versions"] == [{"model": "fraud", "version": 1}]
    assert api.get("/api/v1/runs/nope").json()["code"] == "run_not_found"


def test_datasets_by_name_and_by_digest(api: Client, world: World) -> None:
    by_name = api.get("/api/v1/datasets", {"name": "CHURN"}).json()["results"]
    by_sha256 = api.get("/api/v1/datasets", {"digest": f"sha256:{SHARED}"}).json()["results"]
    by_mlflow_digest = api.get("/api/v1/datasets", {"digest": SHARED[:8]}).json()["results"]

    assert [d["name"] for d in by_name] == ["churn-events"]
    assert [d["name"] for d in by_sha256] == ["transactions"]
    assert [d["name"] for d in by_mlflow_digest] == ["transactions"]


def test_a_dataset_in_detail_lists_the_runs_that_used_it(api: Client, world: World) -> None:
    body = api.get(f"/api/v1/datasets/{world.datasets['transactions'].pk}").json()

    assert body["sha256"] == f"sha256:{SHARED}"
    assert {u["run_id"] for u in body["used_by"]} == {"run-fraud-1", "run-churn-1"}
    assert api.get("/api/v1/datasets/99999999999999999999").json()["code"] == "dataset_not_found"


# --- artifacts and attestations ---------------------------------------------------------


def test_an_artifact_by_digest(api: Client) -> None:
    body = api.get(f"/api/v1/artifacts/sha256:{FRAUD_1}").json()

    assert (body["kind"], body["name"], body["size"]) == ("model", "fraud/1", 10)
    assert body["model_versions"] == [{"model": "fraud", "version": 1}]
    assert body["manifest"]["files"] == 2
    assert body["manifest"]["total_size"] == 10
    assert {a["predicate_type"].rsplit("/", 2)[-2] for a in body["attestations"]} >= {
        "provenance",
        "test-result",
    }


@pytest.mark.parametrize("digest", ["sha256:" + "ee" * 32, "not-a-digest", "sha256:XYZ"])
def test_an_unknown_or_malformed_digest_is_not_found(api: Client, digest: str) -> None:
    response = api.get(f"/api/v1/artifacts/{digest}")

    assert response.status_code == 404
    assert response.json()["code"] == "artifact_not_found"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"subject": f"sha256:{CHURN_1}"}, {"train-churn", "observe-churn"}),
        ({"subject": CHURN_1}, {"train-churn", "observe-churn"}),
        ({"signer": "registry"}, {"observe-fraud", "observe-churn"}),
        ({"signer": "pipeline", "subject": FRAUD_1}, {"train-fraud", "eval-fraud"}),
        ({"predicate_type": "https://in-toto.io/attestation/test-result/v0.1"}, {"eval-fraud"}),
        ({"verification_status": "failed"}, set()),
        ({"subject": "garbage"}, set()),
    ],
)
def test_attestations_are_filtered(
    api: Client, world: World, query: dict[str, str], expected: set[str]
) -> None:
    listed = api.get("/api/v1/attestations", query).json()["results"]

    digests = {a["envelope_digest"] for a in listed}
    assert digests == {world.attestations[key].envelope_digest for key in expected}


def test_an_attestation_in_detail_with_the_edges_it_proves(api: Client, world: World) -> None:
    training = world.attestations["train-churn"]

    body = api.get(f"/api/v1/attestations/sha256:{training.envelope_digest}").json()

    assert body["signer"] == "pipeline"
    assert body["verification_status"] == "verified"
    assert body["statement"] == training.statement
    assert [s["digest"] for s in body["subjects"]] == [f"sha256:{CHURN_1}"]
    assert {(e["upstream"], e["relation"], e["downstream"]) for e in body["lineage_edges"]} == {
        (f"dataset:sha256:{SHARED}", "trained-on", "run:run-churn-1"),
        (f"dataset:sha256:{'05' * 32}", "trained-on", "run:run-churn-1"),
        ("run:run-churn-1", "produced", "model_version:churn/1"),
    }


def test_the_envelope_is_the_bytes_received_with_their_media_type(
    api: Client, world: World
) -> None:
    training = world.attestations["train-fraud"]

    response = api.get(f"/api/v1/attestations/{training.envelope_digest}/envelope")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == bytes(training.envelope)
    assert json.loads(response.content)["payloadType"] == "application/vnd.in-toto+json"


def test_a_sigstore_bundle_comes_back_as_one(api: Client, world: World) -> None:
    Attestation.objects.filter(pk=world.attestations["etl"].pk).update(
        format=AttestationFormat.SIGSTORE
    )

    response = api.get(f"/api/v1/attestations/{world.attestations['etl'].envelope_digest}/envelope")

    assert response["Content-Type"] == "application/vnd.dev.sigstore.bundle.v0.3+json"


def test_signers_and_roles_for_anyone_holding_a_role(
    client: Client, world: World, fraud_reader: User, outsider: User
) -> None:
    signed_in(client, fraud_reader)
    signers = client.get("/api/v1/signers").json()
    roles = client.get("/api/v1/roles").json()
    signed_in(client, outsider)

    assert [s["name"] for s in signers] == ["pipeline"]
    assert signers[0]["public_key"] == TrustedSigner.objects.get().public_key
    assert len(roles) == 8
    assert client.get("/api/v1/signers").json() == []
    assert client.get("/api/v1/roles").json() == []


def test_assignments_global_holders_see_all_others_theirs_and_their_models(
    client: Client, world: World, fraud_reader: User, reader: User
) -> None:
    signed_in(client, reader)
    everything = client.get("/api/v1/role-assignments", {"page_size": 100}).json()["results"]
    globals_only = client.get("/api/v1/role-assignments", {"scope": "global"}).json()["results"]
    signed_in(client, fraud_reader)
    narrowed = client.get("/api/v1/role-assignments").json()["results"]

    assert len(everything) == 9  # eight personas and fiona
    assert {a["model"] for a in globals_only} == {None}
    assert [(a["user"], a["role"], a["model"]) for a in narrowed] == [
        ("fiona", "model_validator", "fraud")
    ]


# --- cursors ----------------------------------------------------------------------------


def test_cursor_pagination_walks_every_row_once(api: Client) -> None:
    model = RegisteredModel.objects.create(name="many")
    for number in range(1, 8):
        run = Run.objects.create(run_id=f"many-{number}")
        ModelVersion.objects.create(registered_model=model, version=number, run=run)
    seen: list[int] = []
    url: str | None = "/api/v1/models/many/versions?page_size=3"

    while url:
        page = api.get(url).json()
        seen += [v["version"] for v in page["results"]]
        url = page["next"]

    assert seen == [7, 6, 5, 4, 3, 2, 1]


@pytest.mark.parametrize("cursor", ["garbage", "p=abc", "p=" + "9" * 30, "o=-1", "p=1&r=x"])
def test_a_made_up_cursor_is_a_400(api: Client, cursor: str) -> None:
    # not base64; not a version number; a number no column holds; a negative offset; …
    encoded = cursor if cursor == "garbage" else base64.b64encode(cursor.encode()).decode()

    response = api.get("/api/v1/models/fraud/versions", {"cursor": encoded})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"


# --- query counts -----------------------------------------------------------------------


def _more_of_everything(count: int) -> None:
    """``count`` more models, each with a hashed version, a run, a dataset and an alias."""
    from provenance.models import Artifact, ArtifactKind
    from registry.models import Dataset, ModelAlias, RunInput

    start = RegisteredModel.objects.count()
    for index in range(start, start + count):
        model = RegisteredModel.objects.create(name=f"m{index}")
        run = Run.objects.create(run_id=f"r{index}", user="alice")
        dataset = Dataset.objects.create(name=f"d{index}", digest=f"{index:08d}")
        RunInput.objects.create(run=run, dataset=dataset)
        artifact = Artifact.objects.create(
            digest=f"{index:064x}", kind=ArtifactKind.MODEL, name="m", size=1,
            created_at=timezone.now(),
        )  # fmt: skip
        version = ModelVersion.objects.create(
            registered_model=model, version=1, run=run, model_artifact=artifact
        )
        ModelAlias.objects.create(
            registered_model=model, alias="prod", version=version, updated_at=timezone.now()
        )


LISTS = [
    "/api/v1/models",
    "/api/v1/models/fraud/versions",
    "/api/v1/runs",
    "/api/v1/datasets",
    "/api/v1/attestations",
    "/api/v1/role-assignments",
    "/api/v1/models/fraud/alias-history",
]


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("who", ["reader", "fraud_reader"])
@pytest.mark.usefixtures("world")
def test_lists_take_a_fixed_number_of_queries(
    client: Client,
    url: str,
    who: str,
    request: pytest.FixtureRequest,
    django_assert_max_num_queries: Any,
) -> None:
    signed_in(client, request.getfixturevalue(who))
    client.get(url)  # warm up: the session, the content types
    _more_of_everything(2)
    with django_assert_max_num_queries(12) as few:
        assert client.get(url).status_code == 200
    _more_of_everything(10)

    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)


def test_a_model_list_page_is_a_handful_of_queries(
    api: Client, django_assert_max_num_queries: Any
) -> None:
    _more_of_everything(20)

    with django_assert_max_num_queries(6):  # session, user, visibility, page, aliases
        api.get("/api/v1/models", {"page_size": 50})


# --- tokens -----------------------------------------------------------------------------


def test_a_read_token_reads_every_resource(client: Client, world: World, reader: User) -> None:
    headers = bearer(reader, "read")
    for url in [*LISTS, "/api/v1/lineage?node=model_version:fraud/1"]:
        assert client.get(url, headers=headers).status_code == 200, url


def test_a_token_without_read_reads_nothing(client: Client, world: World, reader: User) -> None:
    response = client.get("/api/v1/models", headers=bearer(reader, "attest"))

    assert response.status_code == 403
    assert response.json()["code"] == "token_scope_missing"


def test_a_token_sees_what_its_owner_sees(client: Client, world: World, fraud_reader: User) -> None:
    response = client.get("/api/v1/models/churn", headers=bearer(fraud_reader, "read"))
    assert response.status_code == 404


# --- re-verification --------------------------------------------------------------------

REVERIFY = "/api/v1/models/fraud/versions/1/reverify"


@pytest.fixture
def queued() -> Any:
    with mock.patch.object(tasks.model_version_reverify, "delay") as delay:
        yield delay


def test_reverify_is_queued_after_commit(
    client: Client,
    world: World,
    fraud_reader: User,
    queued: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    signed_in(client, fraud_reader)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(REVERIFY)

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert response.json()["attestations_url"].endswith(f"?subject=sha256:{FRAUD_1}")
    queued.assert_called_once_with(world.versions["fraud/1"].pk, fraud_reader.pk)


def test_reverify_with_an_attest_token(
    client: Client,
    world: World,
    reader: User,
    queued: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        refused = client.post(REVERIFY, headers=bearer(reader, "read"))
        accepted = client.post(REVERIFY, headers=bearer(reader, "attest"))

    assert refused.status_code == 403
    assert refused.json()["code"] == "token_scope_missing"
    assert accepted.status_code == 202
    queued.assert_called_once()


def test_reverify_of_an_unhashed_version_is_a_conflict(
    api: Client, queued: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/models/fraud/versions/2/reverify")

    assert response.status_code == 409
    assert response.json()["code"] == "not_hashed"
    queued.assert_not_called()


def test_reverify_of_a_model_one_may_not_see_is_not_found(
    client: Client,
    world: World,
    fraud_reader: User,
    queued: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    signed_in(client, fraud_reader)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/models/churn/versions/1/reverify")

    assert response.status_code == 404
    queued.assert_not_called()


def test_reverify_needs_a_sign_in(client: Client, world: World, queued: Any) -> None:
    assert client.post(REVERIFY).status_code == 403
    queued.assert_not_called()


# --- the error format everywhere --------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/nowhere",
        "/api/v1/datasets/true",
        "/api/v1/models/fraud/versions/-1",
        "/api/v1/models?format=xml",  # DRF's renderer choice raises Django's Http404
    ],
)
def test_what_no_endpoint_serves_is_a_json_404(api: Client, url: str) -> None:
    response = api.get(url)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_a_post_to_no_endpoint_is_a_json_404_too(client: Client, reader: User) -> None:
    response = client.post("/api/v1/nowhere", headers=bearer(reader, "attest"))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
