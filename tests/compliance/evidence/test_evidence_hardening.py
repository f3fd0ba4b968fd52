"""A version's evidence bundle names its model: in the signed manifest and in the log events
about it. Its download carries the zip's SHA-256 as HTTP states a digest — base64 of the raw
digest, in ``Repr-Digest`` (RFC 9530) and ``Digest`` (RFC 3230) — from the API and the page."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from compliance.choices import EvidenceScope, EvidenceStatus
from compliance.models import EvidenceBundle
from compliance.tokens import api_token_create
from registry.models import ModelVersion, RegisteredModel
from tests.compliance.evidence.test_bundles import build_bundle, events, zip_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def bundle(personas: dict[str, User], fraud: ModelVersion) -> EvidenceBundle:
    """A ready bundle of fraud v1, asked for by dave, the Compliance Officer."""
    built = build_bundle(personas["dave"], scope="model_version", model="fraud", version=1)
    assert built.status == EvidenceStatus.READY, built.error
    return built


def api_client(user: User) -> Client:
    secret = api_token_create(
        user=user, name="audit-bot", scopes=["read"], expires_in_days=1, acting_user=None
    ).secret
    return Client(headers={"authorization": f"Bearer {secret}"})


def downloaded(response: Any) -> bytes:
    assert response.status_code == 200, response
    assert response["Content-Type"] == "application/zip"
    return b"".join(response.streaming_content)


# --- the model a version's bundle is of --------------------------------------------------------


def test_the_signed_manifest_of_a_version_bundle_names_its_model(bundle: EvidenceBundle) -> None:
    archive = zipfile.ZipFile(io.BytesIO(zip_bytes(bundle)))
    manifest = archive.read("manifest.json")
    envelope = json.loads(archive.read("manifest.json.dsse"))

    assert json.loads(manifest)["bundle"]["model"] == "fraud"
    assert json.loads(manifest)["bundle"]["version"] == 1
    assert base64.b64decode(envelope["payload"]) == manifest  # what the signature covers
    assert json.loads(archive.read("json/bundle.json"))["model"] == "fraud"


def test_the_log_names_the_model_of_a_version_bundle(
    bundle: EvidenceBundle, personas: dict[str, User]
) -> None:
    downloaded(api_client(personas["dave"]).get(f"/api/v1/evidence/{bundle.pk}/download"))

    for kind in ("evidence.requested", "evidence.generated", "evidence.downloaded"):
        [event] = events(kind)
        assert (event["after"]["model"], event["after"]["version"]) == ("fraud", 1), kind


def test_a_bundle_names_the_model_it_covers_whatever_its_scope(db: None) -> None:
    model = RegisteredModel.objects.create(name="fraud")
    version = ModelVersion.objects.create(registered_model=model, version=1)

    of_version = EvidenceBundle(scope=EvidenceScope.MODEL_VERSION, version=version)
    of_model = EvidenceBundle(scope=EvidenceScope.REGISTERED_MODEL, registered_model=model)
    inventory = EvidenceBundle(scope=EvidenceScope.INVENTORY)

    assert of_version.model_name == "fraud"
    assert of_model.model_name == "fraud"
    assert inventory.model_name is None


# --- the digest the download carries ---------------------------------------------------------


def assert_digest_headers(response: Any, bundle: EvidenceBundle) -> None:
    content = downloaded(response)
    digest = hashlib.sha256(content).digest()
    encoded = base64.b64encode(digest).decode()
    assert response["Digest"] == f"sha-256={encoded}"
    assert response["Repr-Digest"] == f"sha-256=:{encoded}:"
    assert digest.hex() == bundle.sha256  # the API's ``sha256`` stays hex


def test_the_api_download_carries_the_base64_sha256(
    bundle: EvidenceBundle, personas: dict[str, User]
) -> None:
    client = api_client(personas["dave"])

    response = client.get(f"/api/v1/evidence/{bundle.pk}/download")

    assert_digest_headers(response, bundle)


def test_the_page_download_carries_the_base64_sha256(
    bundle: EvidenceBundle, personas: dict[str, User]
) -> None:
    client = Client()
    client.force_login(personas["dave"])

    response = client.get(f"/governance/evidence/{bundle.pk}/download")

    assert_digest_headers(response, bundle)
