"""POST /api/v1/attestations: verified at the door, stored verbatim, every outcome logged."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from django.test import Client
from django.utils import timezone
from securesystemslib.dsse import Envelope

from provenance.attestation_verify import (
    PAYLOAD_TYPE_IN_TOTO,
    PREDICATE_SLSA_PROVENANCE_V1,
    PREDICATE_TEST_RESULT,
    generate_signing_key,
    sign_statement,
    signer_from_pem,
)
from provenance.log_format import Actor
from provenance.models import Artifact, ArtifactKind, Attestation, LogEntry
from provenance.services import trusted_signer_add
from registry.models import ModelVersion, RegisteredModel
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
URL = "/api/v1/attestations"
MODEL_DIGEST = "ab" * 32
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "sigstore"
WORKFLOW = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


@pytest.fixture
def pipeline_key() -> Any:
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="training-pipeline",
        public_key=public_key,
        predicate_types=[PREDICATE_SLSA_PROVENANCE_V1],
        may_register_datasets=True,
        actor=Actor.system("test"),
    )
    return signer_from_pem(private_pem)


@pytest.fixture
def hashed_version() -> ModelVersion:
    artifact = Artifact.objects.create(
        digest=MODEL_DIGEST,
        kind=ArtifactKind.MODEL,
        name="fraud/1",
        size=10,
        created_at=timezone.now(),
    )
    model = RegisteredModel.objects.create(name="fraud")
    return ModelVersion.objects.create(registered_model=model, version=1, model_artifact=artifact)


@pytest.fixture
def member(client: Client) -> Client:
    client.force_login(make_user("ci-bot"))
    return client


def statement(
    subjects: list[tuple[str, str]] | None = None,
    predicate_type: str = PREDICATE_SLSA_PROVENANCE_V1,
) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": name, "digest": {"sha256": digest}}
            for name, digest in (subjects or [("fraud/1", MODEL_DIGEST)])
        ],
        "predicateType": predicate_type,
        "predicate": {
            "buildDefinition": {"buildType": "https://example.org/train"},
            "runDetails": {},
        },
    }


def post(client: Client, body: bytes, content_type: str = "application/json") -> Any:
    return client.post(URL, data=body, content_type=content_type)


def rejected(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert not Attestation.objects.exists()
    event = LogEntry.objects.filter(event_type="attestation.rejected").last()
    assert event is not None
    assert json.loads(bytes(event.entry))["after"] == {"code": code}


def test_a_signed_attestation_about_a_hashed_model_is_accepted_verbatim(
    member: Client, pipeline_key: Any, hashed_version: ModelVersion
) -> None:
    envelope = sign_statement(statement(), pipeline_key)

    response = post(member, envelope)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["predicate_type"] == PREDICATE_SLSA_PROVENANCE_V1
    assert body["signer"] == "training-pipeline"
    assert body["subjects"] == [
        {"name": "fraud/1", "digest": {"sha256": MODEL_DIGEST}, "kind": "model"}
    ]
    stored = Attestation.objects.get()
    assert bytes(stored.envelope) == envelope
    accepted = json.loads(bytes(LogEntry.objects.get(event_type="attestation.accepted").entry))
    assert accepted["actor"]["name"] == "ci-bot"
    assert f"sha256:{MODEL_DIGEST}" in accepted["evidence"]


def test_the_same_envelope_twice_answers_200_with_the_existing_record(
    member: Client, pipeline_key: Any, hashed_version: ModelVersion
) -> None:
    envelope = sign_statement(statement(), pipeline_key)
    first = post(member, envelope)

    again = post(member, envelope)

    assert again.status_code == 200
    assert again.json()["envelope_digest"] == first.json()["envelope_digest"]
    assert Attestation.objects.count() == 1


def test_a_trusted_signer_may_register_a_new_dataset(member: Client, pipeline_key: Any) -> None:
    digest = "cd" * 32
    envelope = sign_statement(statement([("transactions.parquet", digest)]), pipeline_key)

    response = post(member, envelope)

    assert response.status_code == 201
    assert Artifact.objects.get(digest=digest).kind == ArtifactKind.DATASET


def test_an_untrusted_signer_is_refused(member: Client, hashed_version: ModelVersion) -> None:
    private_pem, _ = generate_signing_key()
    envelope = sign_statement(statement(), signer_from_pem(private_pem))

    rejected(post(member, envelope), 403, "untrusted_signer")


def test_a_signer_not_allowed_that_predicate_is_refused(
    member: Client, pipeline_key: Any, hashed_version: ModelVersion
) -> None:
    envelope = sign_statement(statement(predicate_type=PREDICATE_TEST_RESULT), pipeline_key)

    rejected(post(member, envelope), 403, "predicate_not_allowed")


def test_a_bad_signature_is_refused(
    member: Client, pipeline_key: Any, hashed_version: ModelVersion
) -> None:
    document = json.loads(sign_statement(statement(), pipeline_key))
    payload = base64.b64decode(document["payload"]).replace(b"fraud/1", b"fraud/2")
    document["payload"] = base64.b64encode(payload).decode()

    rejected(post(member, json.dumps(document).encode()), 400, "bad_signature")


def test_a_subject_matching_nothing_is_refused(
    member: Client, hashed_version: ModelVersion
) -> None:
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="evaluator",
        public_key=public_key,
        predicate_types=[PREDICATE_SLSA_PROVENANCE_V1],
        actor=Actor.system("test"),
    )
    envelope = sign_statement(statement([("model.bin", "ef" * 32)]), signer_from_pem(private_pem))

    rejected(post(member, envelope), 400, "subject_unknown")


def test_a_subject_contradicting_the_registrys_own_hash_is_refused(
    member: Client, pipeline_key: Any, hashed_version: ModelVersion
) -> None:
    envelope = sign_statement(statement([("fraud/1", "cd" * 32)]), pipeline_key)

    rejected(post(member, envelope), 400, "subject_mismatch")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "malformed_json"),
        (b'{"payloadType": "text/plain", "payload": "", "signatures": []}', "wrong_payload_type"),
        (b"[]", "malformed_envelope"),
    ],
)
def test_malformed_uploads_are_refused(
    member: Client, pipeline_key: Any, body: bytes, code: str
) -> None:
    rejected(post(member, body), 400, code)


@pytest.mark.parametrize(
    "build",
    [
        ["not", "an", "object"],
        {"buildType": "x", "resolvedDependencies": [{"digest": "abc"}]},
        {"buildType": "x", "resolvedDependencies": [{"digest": {"sha256": "not hex"}}]},
    ],
    ids=["build-definition-a-list", "digest-a-string", "sha256-not-hex"],
)
def test_a_malformed_provenance_is_refused_not_a_server_error(
    member: Client, pipeline_key: Any, hashed_version: ModelVersion, build: Any
) -> None:
    body = statement()
    body["predicate"]["buildDefinition"] = build
    # signed as a pipeline would sign it: sign_statement itself refuses to sign this
    envelope = Envelope(rfc8785.dumps(body), PAYLOAD_TYPE_IN_TOTO, {})
    envelope.sign(pipeline_key)

    response = post(member, rfc8785.dumps(envelope.to_dict()))

    rejected(response, 400, "malformed_predicate")
    assert "buildDefinition" in response.json()["detail"]


def test_an_unknown_predicate_type_is_refused(member: Client, pipeline_key: Any) -> None:
    document = {
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(
            json.dumps(statement(predicate_type="https://example.org/made-up/v1")).encode()
        ).decode(),
        "signatures": [{"keyid": "x", "sig": base64.b64encode(b"sig").decode()}],
    }

    rejected(post(member, json.dumps(document).encode()), 400, "unknown_predicate_type")


def test_an_upload_over_the_size_limit_is_refused(
    member: Client, pipeline_key: Any, settings: Any
) -> None:
    settings.ATTESTATION_MAX_BYTES = 2048

    response = post(member, b" " * 4096)

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not Attestation.objects.exists()
    event = json.loads(bytes(LogEntry.objects.get(event_type="attestation.rejected").entry))
    assert event["after"] == {"code": "payload_too_large", "declared_bytes": 4096}


def test_uploads_between_djangos_default_cap_and_the_limit_reach_the_verifier(
    member: Client, pipeline_key: Any
) -> None:
    # Django refuses bodies over 2.5 MiB by default with an HTML page; the limit is 10 MB.
    rejected(post(member, b"{" + b" " * 3_000_000), 400, "malformed_json")


def test_an_upload_over_the_default_limit_gets_a_json_413(member: Client) -> None:
    response = post(member, b" " * (10 * 1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_uploading_needs_a_sign_in(client: Client) -> None:
    response = post(client, b"{}")
    assert response.status_code == 403
    assert not LogEntry.objects.filter(event_type__startswith="attestation").exists()


sigstore_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"Sigstore fixtures not found at {FIXTURES}"
)
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


@pytest.fixture
def sigstore_root(settings: Any) -> None:
    settings.SIGSTORE_TRUSTED_ROOT = str(FIXTURES / "trusted_root.staging.json")


def trust_workflow(identity: str = WORKFLOW) -> None:
    trusted_signer_add(
        name="github-workflow",
        identity=identity,
        issuer=GITHUB_ISSUER,
        predicate_types=[PREDICATE_SLSA_PROVENANCE_V1],
        may_register_datasets=True,
        actor=Actor.system("test"),
    )


@sigstore_fixtures
def test_a_github_actions_provenance_bundle_is_verified_offline_and_accepted(
    member: Client, sigstore_root: None
) -> None:
    trust_workflow()
    bundle = (FIXTURES / "a.dsse.staging-rekor-v2.txt.sigstore.json").read_bytes()

    response = post(member, bundle, BUNDLE)

    assert response.status_code == 201, response.content
    assert response.json()["format"] == "sigstore"
    assert response.json()["subjects"][0]["digest"]["sha256"] == (
        "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
    )
    assert bytes(Attestation.objects.get().envelope) == bundle


@sigstore_fixtures
def test_a_bundle_from_another_identity_is_refused(member: Client, sigstore_root: None) -> None:
    trust_workflow(identity="https://github.com/acme/other/.github/workflows/x.yml@refs/heads/main")
    bundle = (FIXTURES / "a.dsse.staging-rekor-v2.txt.sigstore.json").read_bytes()

    rejected(post(member, bundle, BUNDLE), 400, "identity_mismatch")


@sigstore_fixtures
def test_the_cve_2022_36056_bundle_is_refused(member: Client, sigstore_root: None) -> None:
    trusted_signer_add(
        name="william",
        identity="william@yossarian.net",
        issuer="https://github.com/login/oauth",
        predicate_types=[PREDICATE_SLSA_PROVENANCE_V1],
        actor=Actor.system("test"),
    )
    bundle = (FIXTURES / "bundle_cve_2022_36056.txt.sigstore").read_bytes()

    response = post(member, bundle, BUNDLE)

    assert response.status_code == 400
    assert not Attestation.objects.exists()


@sigstore_fixtures
def test_sigstore_bundles_are_refused_when_no_trusted_root_is_configured(
    member: Client, settings: Any
) -> None:
    settings.SIGSTORE_TRUSTED_ROOT = ""
    bundle = (FIXTURES / "a.dsse.staging-rekor-v2.txt.sigstore.json").read_bytes()

    rejected(post(member, bundle, BUNDLE), 400, "sigstore_not_configured")


def test_trust_signer_command_with_a_public_key(tmp_path: Path) -> None:
    from io import StringIO

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from django.core.management import call_command

    from provenance.models import TrustedSigner

    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    (tmp_path / "ci.pub").write_bytes(
        public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    out = StringIO()

    call_command(
        "trust_signer", "ci", "--public-key", str(tmp_path / "ci.pub"),
        "--predicate-type", PREDICATE_SLSA_PROVENANCE_V1, stdout=out,
    )  # fmt: skip

    signer = TrustedSigner.objects.get()
    assert signer.kind == "key"
    assert signer.public_key is not None
    assert signer.public_key["scheme"] == "ecdsa-sha2-nistp256"
    assert LogEntry.objects.filter(event_type="trusted_signer.added").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--predicate-type", "https://example.org/nope"], "is not accepted"),
        (["--predicate-type", PREDICATE_SLSA_PROVENANCE_V1], "give --public-key"),
        (["--public-key", "/nonexistent.pem", "--predicate-type", PREDICATE_TEST_RESULT], "PEM"),
    ],
)
def test_trust_signer_refuses_bad_input_with_exit_2(args: list[str], message: str) -> None:
    from django.core.management import CommandError, call_command

    from provenance.models import TrustedSigner

    with pytest.raises(CommandError) as raised:
        call_command("trust_signer", "ci", *args)

    assert raised.value.returncode == 2
    assert message in str(raised.value)
    assert not TrustedSigner.objects.exists()
