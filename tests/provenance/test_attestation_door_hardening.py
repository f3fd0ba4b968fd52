"""What the parser refuses so that no later step fails on it: statements too deep to walk or
holding what the database cannot store, model_signing predicates of the wrong shape, key-signed
bundles that are not what model_signing writes; and no signer trusted in the registry's own
namespace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from provenance.attestation_verify import (
    PREDICATE_MODEL_SIGNING,
    PREDICATE_SLSA_PROVENANCE_V1,
    AttestationRejected,
    generate_signing_key,
    parse_envelope,
    parse_key_bundle,
    public_pem,
)
from provenance.model_manifest import sign_model
from provenance.models import LogEntry, TrustedSigner
from tests.provenance.test_attestation_verify import (
    MODEL_SHA256,
    envelope_bytes,
    make_statement,
    rejected,
    statement_envelope,
)

KEY_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def nested_payload(levels: int, container: str) -> bytes:
    """A statement with lists (or objects) nested in it, the innermost ``levels`` deep (the
    statement is level 1): written as text, since JSON encoders recurse."""
    opening, closing = ("[", "]") if container == "list" else ('{"a":', "}")
    text = json.dumps(make_statement(extension="__nested__"))
    inner = opening * (levels - 1) + '"x"' + closing * (levels - 1)
    return text.replace('"__nested__"', inner).encode()


def provenance_run(metadata: dict[str, Any]) -> dict[str, Any]:
    return make_statement(
        predicate={"buildDefinition": {"buildType": "x"}, "runDetails": {"metadata": metadata}}
    )


def model_signing(resources: Any) -> dict[str, Any]:
    return make_statement(
        predicateType=PREDICATE_MODEL_SIGNING,
        predicate={"serialization": {"method": "files"}, "resources": resources},
    )


# --- nesting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("container", ["list", "object"])
def test_a_statement_nested_64_levels_deep_parses(container: str) -> None:
    parse_envelope(envelope_bytes(nested_payload(64, container)))


@pytest.mark.parametrize("container", ["list", "object"])
@pytest.mark.parametrize("levels", [65, 910])
def test_a_statement_nested_deeper_than_64_levels_is_malformed_json(
    container: str, levels: int
) -> None:
    refusal = rejected(envelope_bytes(nested_payload(levels, container)))

    assert refusal.code == "malformed_json"
    assert "deeper than 64" in refusal.detail


# --- NUL characters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        make_statement(subject=[{"name": "fraud/1\x00", "digest": {"sha256": MODEL_SHA256}}]),
        provenance_run({"invocationId": "run\x00"}),
        provenance_run({"invocationId": "run", "nested": [["ok", "not\x00ok"]]}),
        provenance_run({"invocationId": "run", "k\x00ey": "value"}),
        make_statement(extension={"\x00": None}),
    ],
    ids=["subject-name", "string", "string-in-nested-lists", "key", "key-alone"],
)
def test_a_nul_character_anywhere_in_a_statement_is_malformed_json(
    statement: dict[str, Any],
) -> None:
    refusal = rejected(statement_envelope(statement))

    assert refusal.code == "malformed_json"
    assert "NUL" in refusal.detail


# --- lengths the database holds --------------------------------------------------------------


def test_a_subject_name_may_be_500_characters() -> None:
    subject = {"name": "n" * 500, "digest": {"sha256": MODEL_SHA256}}

    parse_envelope(statement_envelope(make_statement(subject=[subject])))


def test_a_subject_name_over_500_characters_is_not_a_statement() -> None:
    subjects = [
        {"name": "m", "digest": {"sha256": MODEL_SHA256}},
        {"name": "n" * 501, "digest": {"sha256": MODEL_SHA256}},
    ]

    refusal = rejected(statement_envelope(make_statement(subject=subjects)))

    assert refusal.code == "not_a_statement"
    assert "subject 1" in refusal.detail


@pytest.mark.parametrize(
    "number", ["\uff11", "\u0661", "\u00b2", "1\u0661"], ids=["fullwidth", "arabic", "sup", "mixed"]
)
def test_a_subject_named_as_a_version_in_other_digits_is_not_a_statement(number: str) -> None:
    subject = {"name": f"fraud/{number}", "digest": {"sha256": MODEL_SHA256}}

    refusal = rejected(statement_envelope(make_statement(subject=[subject])))

    assert refusal.code == "not_a_statement"
    assert "digits other than 0-9" in refusal.detail


@pytest.mark.parametrize("name", ["fraud/1", "fraud/007", "fraud/v1", "data/2026-06", "x\u00b2"])
def test_other_subject_names_parse(name: str) -> None:
    parse_envelope(
        statement_envelope(
            make_statement(subject=[{"name": name, "digest": {"sha256": MODEL_SHA256}}])
        )
    )


def test_an_invocation_id_may_be_600_characters() -> None:
    parse_envelope(statement_envelope(provenance_run({"invocationId": "r" * 600})))


def test_an_invocation_id_over_600_characters_is_a_malformed_predicate() -> None:
    refusal = rejected(statement_envelope(provenance_run({"invocationId": "r" * 601})))

    assert refusal.code == "malformed_predicate"
    assert "runDetails.metadata.invocationId" in refusal.detail


# --- model_signing predicates -----------------------------------------------------------------


MALFORMED_RESOURCES = {
    "an-int": 5,
    "a-bool": True,
    "a-float": 1.5,
    "a-string": "model.pkl",
    "an-object": {"name": "model.pkl", "digest": "0d" * 32},
    "an-item-a-string": ["model.pkl"],
    "an-item-null": [None],
    "a-name-a-number": [{"name": 5, "digest": "0d" * 32}],
    "a-digest-an-object": [{"name": "model.pkl", "digest": {"sha256": "0d" * 32}}],
}


@pytest.mark.parametrize("resources", MALFORMED_RESOURCES.values(), ids=MALFORMED_RESOURCES.keys())
def test_model_signing_resources_must_be_a_list_of_named_digests(resources: Any) -> None:
    refusal = rejected(statement_envelope(model_signing(resources)))

    assert refusal.code == "malformed_predicate"
    assert "resources" in refusal.detail


@pytest.mark.parametrize(
    "resources",
    [[], [{"name": "model.pkl", "digest": "0d" * 32, "algorithm": "sha256"}], None],
    ids=["empty", "a-file", "null"],
)
def test_model_signing_resources_of_the_specified_shape_parse(resources: Any) -> None:
    parse_envelope(statement_envelope(model_signing(resources)))


# --- key-signed bundles -----------------------------------------------------------------------


@pytest.fixture
def key_bundle() -> dict[str, Any]:
    """A key-signed bundle shaped as model_signing writes it (the signature is not checked
    when parsing)."""
    envelope = json.loads(statement_envelope(model_signing([])))
    return {
        "mediaType": KEY_BUNDLE,
        "verificationMaterial": {"publicKey": {"hint": "k"}, "tlogEntries": []},
        "dsseEnvelope": envelope,
    }


def test_a_model_sig_written_by_model_signing_parses(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.pkl").write_bytes(b"weights")
    private_pem, _ = generate_signing_key()
    sign_model(model, private_pem, tmp_path / "model.sig")
    raw = (tmp_path / "model.sig").read_bytes()

    parsed = parse_key_bundle(raw)

    assert parsed is not None
    assert parsed.predicate_type == PREDICATE_MODEL_SIGNING
    assert parsed.raw == raw


@pytest.mark.parametrize(
    "material",
    [
        {"publicKey": {"hint": "k"}},
        {"publicKey": {}, "tlogEntries": [], "timestampVerificationData": {}},
        {"publicKey": {"hint": "k"}, "tlogEntries": None, "timestampVerificationData": None},
    ],
    ids=["public-key-alone", "empty-log-and-timestamps", "null-log-and-timestamps"],
)
def test_a_key_bundle_with_a_public_key_alone_parses(
    key_bundle: dict[str, Any], material: dict[str, Any]
) -> None:
    key_bundle["verificationMaterial"] = material

    parsed = parse_key_bundle(json.dumps(key_bundle).encode())

    assert parsed is not None
    assert parsed.statement == model_signing([])


def test_a_certificate_bundle_is_not_a_key_bundle(key_bundle: dict[str, Any]) -> None:
    key_bundle["verificationMaterial"] = {"certificate": {"rawBytes": "AAAA"}}

    assert parse_key_bundle(json.dumps(key_bundle).encode()) is None


NOT_KEY_BUNDLES: dict[str, tuple[dict[str, Any], str]] = {
    "media-type-missing": ({"mediaType": None}, "mediaType"),
    "media-type-text-html": ({"mediaType": "text/html"}, "mediaType"),
    "media-type-v0.1": (
        {"mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1"},
        "mediaType",
    ),
    "media-type-uppercase": ({"mediaType": KEY_BUNDLE.upper()}, "mediaType"),
    "media-type-a-list": ({"mediaType": [KEY_BUNDLE]}, "mediaType"),
    "message-signature": ({"messageSignature": {"signature": "AAAA"}}, "messageSignature"),
    "dsse-envelope-missing": ({"dsseEnvelope": None}, "dsseEnvelope"),
    "public-key-a-string": ({"verificationMaterial": {"publicKey": "k"}}, "publicKey"),
    "public-key-null": ({"verificationMaterial": {"publicKey": None}}, "publicKey"),
    "certificate-too": (
        {"verificationMaterial": {"publicKey": {}, "certificate": {"rawBytes": "AAAA"}}},
        "certificate",
    ),
    "x509-chain-too": (
        {"verificationMaterial": {"publicKey": {}, "x509CertificateChain": {"certificates": []}}},
        "x509CertificateChain",
    ),
    "tlog-entries": (
        {"verificationMaterial": {"publicKey": {}, "tlogEntries": [{"bogus": True}]}},
        "tlogEntries",
    ),
    "timestamps": (
        {"verificationMaterial": {"publicKey": {}, "timestampVerificationData": {"x": 1}}},
        "timestampVerificationData",
    ),
}


@pytest.mark.parametrize(("changes", "named"), NOT_KEY_BUNDLES.values(), ids=NOT_KEY_BUNDLES.keys())
def test_a_key_bundle_that_is_not_what_model_signing_writes_is_malformed(
    key_bundle: dict[str, Any], changes: dict[str, Any], named: str
) -> None:
    document = {key: value for key, value in {**key_bundle, **changes}.items() if value is not None}

    with pytest.raises(AttestationRejected) as refused:
        parse_key_bundle(json.dumps(document).encode())

    assert refused.value.code == "malformed_bundle"
    assert named in refused.value.detail


# --- trust_signer and the registry's namespace -------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "predicate_type",
    [
        "https://secmlops.dev/attestation/approval/v1",
        "https://secmlops.dev/attestation/approval/v2",
        "https://secmlops.dev/attestation/anything-else/v1",
    ],
)
def test_trust_signer_refuses_a_type_in_the_registrys_namespace_with_exit_2(
    tmp_path: Path, predicate_type: str
) -> None:
    _, public_key = generate_signing_key()
    (tmp_path / "ci.pub").write_bytes(public_pem(public_key))

    with pytest.raises(CommandError) as refused:
        call_command(
            "trust_signer", "ci", "--public-key", str(tmp_path / "ci.pub"),
            "--predicate-type", PREDICATE_SLSA_PROVENANCE_V1,
            "--predicate-type", predicate_type,
        )  # fmt: skip

    assert refused.value.returncode == 2
    assert "namespace" in str(refused.value)
    assert not TrustedSigner.objects.exists()
    assert not LogEntry.objects.filter(event_type="trusted_signer.added").exists()
