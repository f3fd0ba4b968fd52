"""Tests for provenance.attestation_verify: DSSE/in-toto parsing, signing and verification, and
offline Sigstore bundle verification. No database; real keys and signatures, no crypto mocks."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_public_key,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]  # no __all__ there

from provenance.attestation_verify import (
    MAX_SIGNATURES,
    PAYLOAD_TYPE_IN_TOTO,
    PREDICATE_SLSA_PROVENANCE_V1,
    PREDICATE_TEST_RESULT,
    STATEMENT_TYPE_V1,
    AttestationRejected,
    check_predicate_type,
    generate_signing_key,
    key_id,
    parse_envelope,
    public_pem,
    sign_statement,
    signer_from_pem,
    verify_envelope,
    verify_sigstore_bundle,
)

SCHEMES = ["ecdsa-sha2-nistp256", "ed25519"]
MODEL_SHA256 = hashlib.sha256(b"model weights").hexdigest()


def make_statement(**overrides: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "_type": STATEMENT_TYPE_V1,
        "subject": [{"name": "model.safetensors", "digest": {"sha256": MODEL_SHA256}}],
        "predicateType": PREDICATE_SLSA_PROVENANCE_V1,
        "predicate": {"buildDefinition": {"buildType": "https://example.org/train/v1"}},
    }
    statement.update(overrides)
    return statement


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def envelope_bytes(payload_bytes: bytes, **overrides: Any) -> bytes:
    """An envelope around arbitrary payload bytes, with one (unverifiable) signature."""
    document: dict[str, Any] = {
        "payload": b64(payload_bytes),
        "payloadType": PAYLOAD_TYPE_IN_TOTO,
        "signatures": [{"keyid": "k", "sig": b64(b"not a real signature")}],
    }
    document.update(overrides)
    return json.dumps(document).encode()


def statement_envelope(statement: Any) -> bytes:
    return envelope_bytes(json.dumps(statement).encode())


def rejected(raw: bytes, **kwargs: Any) -> AttestationRejected:
    with pytest.raises(AttestationRejected) as excinfo:
        parse_envelope(raw, **kwargs)
    return excinfo.value


@pytest.fixture(scope="module", params=SCHEMES)
def registry_key(request: pytest.FixtureRequest) -> tuple[Any, dict[str, Any]]:
    private_pem, public_key = generate_signing_key(request.param)
    return signer_from_pem(private_pem), public_key


@pytest.fixture(scope="module")
def ecdsa_key() -> tuple[Any, dict[str, Any]]:
    private_pem, public_key = generate_signing_key()
    return signer_from_pem(private_pem), public_key


@pytest.fixture(scope="module")
def other_key() -> tuple[Any, dict[str, Any]]:
    private_pem, public_key = generate_signing_key("ed25519")
    return signer_from_pem(private_pem), public_key


def trusted(*keys: tuple[Any, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {key_id(public_key): public_key for _, public_key in keys}


def resign_with_payload(raw: bytes, payload: bytes) -> bytes:
    """Same envelope and signatures, different payload bytes."""
    document = json.loads(raw)
    document["payload"] = b64(payload)
    return json.dumps(document).encode()


# ---------------------------------------------------------------------------
# Registry keys
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("scheme", "keytype"), [(SCHEMES[0], "ecdsa"), (SCHEMES[1], "ed25519")])
def test_generated_key_round_trips_through_pem(scheme, keytype):
    private_pem, public_key = generate_signing_key(scheme)

    signer = signer_from_pem(private_pem)

    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_key["keytype"] == keytype
    assert public_key["scheme"] == scheme
    assert signer.public_key.to_dict() == public_key
    assert key_id(public_key) == signer.public_key.keyid


def test_key_id_is_securesystemslib_default_keyid():
    _, public_key = generate_signing_key()
    library_key = SSlibKey.from_crypto(load_pem_public_key(public_pem(public_key)))

    assert key_id(public_key) == library_key.keyid
    assert len(key_id(public_key)) == 64


@pytest.mark.parametrize("scheme", SCHEMES)
def test_public_pem_is_the_signers_public_key(scheme):
    _, public_key = generate_signing_key(scheme)

    loaded = load_pem_public_key(public_pem(public_key))

    assert SSlibKey.from_crypto(loaded, scheme=scheme).to_dict() == public_key


def test_generate_refuses_other_schemes():
    with pytest.raises(ValueError, match="unsupported signing scheme"):
        generate_signing_key("rsassa-pss-sha256")


@pytest.mark.parametrize(
    "private_key",
    [ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 2048)],
    ids=["p384", "rsa"],
)
def test_signer_from_pem_refuses_keys_the_registry_does_not_use(private_key):
    pem = private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())

    with pytest.raises(ValueError, match="P-256 or Ed25519"):
        signer_from_pem(pem)


def test_signer_from_pem_refuses_garbage():
    with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
        signer_from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


# ---------------------------------------------------------------------------
# Sign and verify
# ---------------------------------------------------------------------------


def test_sign_and_verify_round_trip(registry_key):
    statement = make_statement()

    raw = sign_statement(statement, registry_key[0])
    parsed = parse_envelope(raw)

    assert verify_envelope(parsed, trusted(registry_key)) == [key_id(registry_key[1])]
    assert parsed.statement == statement
    assert parsed.predicate_type == PREDICATE_SLSA_PROVENANCE_V1


def test_signed_envelope_is_standard_dsse(registry_key):
    statement = make_statement()

    document = json.loads(sign_statement(statement, registry_key[0]))

    assert document["payloadType"] == PAYLOAD_TYPE_IN_TOTO
    assert base64.b64decode(document["payload"], validate=True) == rfc8785.dumps(statement)
    assert [signature["keyid"] for signature in document["signatures"]] == [key_id(registry_key[1])]


def test_securesystemslib_verifies_what_we_sign(registry_key):
    """Interoperability: the library's own Envelope.verify accepts our envelopes."""
    raw = sign_statement(make_statement(), registry_key[0])
    library_key = SSlibKey.from_dict(key_id(registry_key[1]), dict(registry_key[1]))

    accepted = Envelope.from_dict(json.loads(raw)).verify([library_key], 1)

    assert list(accepted) == [key_id(registry_key[1])]


def test_parsed_envelope_keeps_raw_bytes_and_digest(ecdsa_key):
    raw = sign_statement(make_statement(), ecdsa_key[0])

    parsed = parse_envelope(raw)

    assert parsed.raw == raw
    assert parsed.envelope_digest == hashlib.sha256(raw).hexdigest()
    assert parsed.payload == base64.b64decode(json.loads(raw)["payload"])
    assert parsed.payload_type == PAYLOAD_TYPE_IN_TOTO


def test_foreign_payload_whitespace_is_kept_verbatim(ecdsa_key):
    """A producer's non-canonical payload verifies as signed; we never re-encode it."""
    payload = json.dumps(make_statement(), indent=4).encode() + b"\n"
    envelope = Envelope(payload, PAYLOAD_TYPE_IN_TOTO, {})
    envelope.sign(ecdsa_key[0])
    raw = json.dumps(envelope.to_dict()).encode()

    parsed = parse_envelope(raw)

    assert parsed.payload == payload
    assert verify_envelope(parsed, trusted(ecdsa_key)) == [key_id(ecdsa_key[1])]


def test_reserialised_payload_does_not_verify(ecdsa_key):
    raw = sign_statement(make_statement(), ecdsa_key[0])
    reserialised = json.dumps(make_statement(), indent=2).encode()

    parsed = parse_envelope(resign_with_payload(raw, reserialised))

    assert parsed.statement == make_statement()  # same meaning ...
    with pytest.raises(AttestationRejected) as excinfo:
        verify_envelope(parsed, trusted(ecdsa_key))  # ... but not the signed bytes
    assert excinfo.value.code == "bad_signature"


def test_flipping_one_payload_byte_is_a_bad_signature(registry_key):
    raw = sign_statement(make_statement(), registry_key[0])
    payload = bytearray(base64.b64decode(json.loads(raw)["payload"]))
    payload[payload.index(b"model.safetensors")] ^= 0x01  # "m" -> "l": still valid JSON

    parsed = parse_envelope(resign_with_payload(raw, bytes(payload)))

    with pytest.raises(AttestationRejected) as excinfo:
        verify_envelope(parsed, trusted(registry_key))
    assert excinfo.value.code == "bad_signature"
    assert key_id(registry_key[1]) in excinfo.value.detail


def test_flipping_one_signature_byte_is_a_bad_signature(registry_key):
    document = json.loads(sign_statement(make_statement(), registry_key[0]))
    sig = bytearray(base64.b64decode(document["signatures"][0]["sig"]))
    sig[len(sig) // 2] ^= 0x01
    document["signatures"][0]["sig"] = b64(bytes(sig))

    parsed = parse_envelope(json.dumps(document).encode())

    with pytest.raises(AttestationRejected) as excinfo:
        verify_envelope(parsed, trusted(registry_key))
    assert excinfo.value.code == "bad_signature"


def test_signature_from_unknown_key_is_untrusted(ecdsa_key, other_key):
    parsed = parse_envelope(sign_statement(make_statement(), other_key[0]))

    with pytest.raises(AttestationRejected) as excinfo:
        verify_envelope(parsed, trusted(ecdsa_key))
    assert excinfo.value.code == "untrusted_signer"


def test_no_trusted_keys_at_all_is_untrusted(ecdsa_key):
    parsed = parse_envelope(sign_statement(make_statement(), ecdsa_key[0]))

    with pytest.raises(AttestationRejected) as excinfo:
        verify_envelope(parsed, {})
    assert excinfo.value.code == "untrusted_signer"


def test_trusted_key_under_wrong_keyid_does_not_verify(ecdsa_key, other_key):
    """A signature claiming key A's id must not pass just because key B is also trusted."""
    document = json.loads(sign_statement(make_statement(), other_key[0]))
    document["signatures"][0]["keyid"] = key_id(ecdsa_key[1])

    parsed = parse_envelope(json.dumps(document).encode())

    with pytest.raises(AttestationRejected) as excinfo:
        verify_envelope(parsed, trusted(ecdsa_key, other_key))
    assert excinfo.value.code == "bad_signature"


def test_untrusted_extra_signature_is_ignored(ecdsa_key, other_key):
    statement = make_statement()
    envelope = Envelope(rfc8785.dumps(statement), PAYLOAD_TYPE_IN_TOTO, {})
    envelope.sign(ecdsa_key[0])
    envelope.sign(other_key[0])

    parsed = parse_envelope(json.dumps(envelope.to_dict()).encode())

    assert verify_envelope(parsed, trusted(ecdsa_key)) == [key_id(ecdsa_key[1])]
    assert verify_envelope(parsed, trusted(ecdsa_key, other_key)) == [
        key_id(ecdsa_key[1]),
        key_id(other_key[1]),
    ]


def test_forged_signature_beside_a_valid_one_rejects_the_envelope(ecdsa_key, other_key):
    document = json.loads(sign_statement(make_statement(), ecdsa_key[0]))
    document["signatures"].append({"keyid": key_id(other_key[1]), "sig": b64(b"\x00" * 64)})

    parsed = parse_envelope(json.dumps(document).encode())

    with pytest.raises(AttestationRejected) as excinfo:
        verify_envelope(parsed, trusted(ecdsa_key, other_key))
    assert excinfo.value.code == "bad_signature"


@pytest.mark.parametrize("keyid", [None, "", "absent"])
def test_signature_without_keyid_is_tried_against_trusted_keys(registry_key, other_key, keyid):
    """DSSE makes keyid optional; unset, null and empty all mean "no hint"."""
    document = json.loads(sign_statement(make_statement(), registry_key[0]))
    if keyid == "absent":
        del document["signatures"][0]["keyid"]
    else:
        document["signatures"][0]["keyid"] = keyid

    parsed = parse_envelope(json.dumps(document).encode())

    assert verify_envelope(parsed, trusted(other_key, registry_key)) == [key_id(registry_key[1])]
    with pytest.raises(AttestationRejected) as excinfo:
        verify_envelope(parsed, trusted(other_key))
    assert excinfo.value.code == "untrusted_signer"


def test_broken_trusted_key_is_a_configuration_error_not_a_rejection(ecdsa_key):
    parsed = parse_envelope(sign_statement(make_statement(), ecdsa_key[0]))
    broken = {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": "nope"}}

    with pytest.raises(ValueError, match="not a usable public key") as excinfo:
        verify_envelope(parsed, {key_id(ecdsa_key[1]): broken})
    assert not isinstance(excinfo.value, AttestationRejected)


def test_verify_does_not_mutate_trusted_keys(ecdsa_key):
    keys = trusted(ecdsa_key)
    before = json.dumps(keys, sort_keys=True)

    verify_envelope(parse_envelope(sign_statement(make_statement(), ecdsa_key[0])), keys)

    assert json.dumps(keys, sort_keys=True) == before


def test_sign_refuses_what_parse_would_reject(ecdsa_key):
    with pytest.raises(AttestationRejected) as excinfo:
        sign_statement(make_statement(subject=[]), ecdsa_key[0])
    assert excinfo.value.code == "not_a_statement"


# ---------------------------------------------------------------------------
# Parsing: every way to be rejected
# ---------------------------------------------------------------------------


def test_rejection_carries_code_and_detail():
    error = rejected(b"{")

    assert isinstance(error, ValueError)
    assert error.code == "malformed_json"
    assert "not valid JSON" in error.detail
    assert str(error).startswith("malformed_json: ")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"\xff\xfe{}",
        b'{"payload": "a", "payload": "b"}',
        b'{"payload": NaN}',
        b'{"payload": 1e999}',
        b'{"payload": "\\ud800"}',
        b"[" * 100_000,
        b'{"n": ' + b"1" * 5000 + b"}",
        # compact text, which a faster parser reads first (_compact_json): refused alike
        b'{"payload":"a","payload":"b"}',
        b'{"payload":"a","payload":"a"}',
        b'{"payload":NaN}',
        b'{"payload":1e999}',
        b'{"payload":"\\ud800"}',
        b'\xef\xbb\xbf{"payload":"a"}',
        b"[" * 2000 + b"]" * 2000,
        b'{"n":' + b"1" * 5000 + b"}",
    ],
    ids=[
        "empty",
        "truncated",
        "not-utf8",
        "duplicate-key",
        "nan",
        "infinite",
        "lone-surrogate",
        "too-deep",
        "huge-int",
        "compact-duplicate-key",
        "compact-duplicate-equal-values",
        "compact-nan",
        "compact-infinite",
        "compact-lone-surrogate",
        "compact-byte-order-mark",
        "compact-too-deep",
        "compact-huge-int",
    ],
)
def test_malformed_json(raw):
    assert rejected(raw).code == "malformed_json"


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'"envelope"',
        envelope_bytes(b"{}", signatures=[]),
        envelope_bytes(b"{}", signatures={"keyid": "k"}),
        envelope_bytes(b"{}", signatures=["sig"]),
        envelope_bytes(b"{}", signatures=[{"keyid": "k"}]),
        envelope_bytes(b"{}", signatures=[{"keyid": 7, "sig": ""}]),
        envelope_bytes(b"{}", signatures=[{"keyid": 0, "sig": ""}]),
        envelope_bytes(b"{}", payload=None),
        envelope_bytes(b"{}", payloadType=None),
    ],
    ids=[
        "array",
        "string",
        "no-signatures",
        "signatures-not-list",
        "signature-not-object",
        "signature-without-sig",
        "keyid-not-string",
        "keyid-falsy-number",
        "payload-missing",
        "payload-type-missing",
    ],
)
def test_malformed_envelope(raw):
    assert rejected(raw).code == "malformed_envelope"


def test_too_many_signatures():
    signatures = [{"keyid": str(n), "sig": ""} for n in range(MAX_SIGNATURES + 1)]

    assert rejected(envelope_bytes(b"{}", signatures=signatures)).code == "malformed_envelope"


@pytest.mark.parametrize(
    "payload_type",
    ["application/json", "application/vnd.in-toto+json ", "text/plain", ""],
)
def test_wrong_payload_type(payload_type):
    raw = envelope_bytes(json.dumps(make_statement()).encode(), payloadType=payload_type)

    assert rejected(raw).code == "wrong_payload_type"


@pytest.mark.parametrize(
    "payload",
    ["not base64!", "YWJj=", "YWJjZA", "YW Jj", "YWJjZA==\n", "YWJ+ZA_-", "YR==", "Zm9v\u00e9"],
    ids=[
        "punctuation",
        "bad-padding",
        "missing-padding",
        "space",
        "newline",
        "mixed-alphabets",
        "non-canonical-bits",
        "non-ascii",
    ],
)
def test_malformed_base64_payload(payload):
    raw = json.dumps(
        {
            "payload": payload,
            "payloadType": PAYLOAD_TYPE_IN_TOTO,
            "signatures": [{"keyid": "k", "sig": ""}],
        }
    ).encode()

    assert rejected(raw).code == "malformed_base64"


def test_malformed_base64_signature():
    raw = envelope_bytes(
        json.dumps(make_statement()).encode(), signatures=[{"keyid": "k", "sig": "%%%"}]
    )

    assert rejected(raw).code == "malformed_base64"


def test_url_safe_base64_is_accepted_as_dsse_allows(ecdsa_key):
    document = json.loads(sign_statement(make_statement(predicate={"s": "??>>"}), ecdsa_key[0]))
    payload = base64.b64decode(document["payload"])
    document["payload"] = base64.urlsafe_b64encode(payload).decode()
    assert "-" in document["payload"] or "_" in document["payload"]

    parsed = parse_envelope(json.dumps(document).encode())

    assert parsed.payload == payload
    assert verify_envelope(parsed, trusted(ecdsa_key)) == [key_id(ecdsa_key[1])]


def test_payload_that_is_not_json():
    assert rejected(envelope_bytes(b"\x00\x01 binary")).code == "malformed_json"


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in mapping.items() if name != key}


NOT_STATEMENTS = {
    "array": [],
    "v0.1-type": make_statement(_type="https://in-toto.io/Statement/v0.1"),
    "no-type": _without(make_statement(), "_type"),
    "no-subject": _without(make_statement(), "subject"),
    "empty-subject": make_statement(subject=[]),
    "subject-not-list": make_statement(subject={"name": "m"}),
    "subject-not-object": make_statement(subject=["model"]),
    "name-not-string": make_statement(subject=[{"name": 1, "digest": {"sha256": MODEL_SHA256}}]),
    "no-digest": make_statement(subject=[{"name": "m"}]),
    "empty-digest": make_statement(subject=[{"name": "m", "digest": {}}]),
    "no-sha256": make_statement(subject=[{"name": "m", "digest": {"sha512": "ab" * 64}}]),
    "short-sha256": make_statement(subject=[{"name": "m", "digest": {"sha256": "ab" * 16}}]),
    "upper-sha256": make_statement(
        subject=[{"name": "m", "digest": {"sha256": MODEL_SHA256.upper()}}]
    ),
    "non-hex-sha512": make_statement(
        subject=[{"name": "m", "digest": {"sha256": MODEL_SHA256, "sha512": "xyz"}}]
    ),
    "digest-not-string": make_statement(
        subject=[{"name": "m", "digest": {"sha256": MODEL_SHA256, "custom": 5}}]
    ),
    "second-subject-bad": make_statement(
        subject=[
            {"name": "m", "digest": {"sha256": MODEL_SHA256}},
            {"name": "n", "digest": {"sha1": "ab" * 20}},
        ]
    ),
    "no-predicate-type": _without(make_statement(), "predicateType"),
    "predicate-type-not-string": make_statement(predicateType=["x"]),
    "predicate-not-object": make_statement(predicate=[1, 2]),
}


@pytest.mark.parametrize("statement", NOT_STATEMENTS.values(), ids=NOT_STATEMENTS.keys())
def test_not_a_statement(statement):
    assert rejected(statement_envelope(statement)).code == "not_a_statement"


def _provenance(build: Any = None, run: Any = None) -> dict[str, Any]:
    predicate: dict[str, Any] = {"buildDefinition": build}
    if run is not None:
        predicate["runDetails"] = run
    return make_statement(predicate=predicate)


def _dependency(**fields: Any) -> dict[str, Any]:
    return {"buildType": "https://example.org/train/v1", "resolvedDependencies": [fields]}


MALFORMED_PREDICATES = {
    "build-definition-a-list": _provenance(["not", "an", "object"]),
    "dependencies-a-string": _provenance({"resolvedDependencies": "data.csv"}),
    "dependency-a-string": _provenance({"resolvedDependencies": ["data.csv"]}),
    "dependency-null": _provenance({"resolvedDependencies": [None]}),
    "dependency-digest-a-string": _provenance(_dependency(digest="abc")),
    "dependency-digest-value-a-number": _provenance(_dependency(digest={"sha256": 5})),
    "dependency-sha256-short": _provenance(_dependency(digest={"sha256": "ab" * 8})),
    "dependency-sha256-upper": _provenance(_dependency(digest={"sha256": "AB" * 32})),
    "dependency-annotations-a-list": _provenance(_dependency(annotations=["dataset"])),
    "run-details-a-string": _provenance({}, run="github"),
    "builder-a-list": _provenance({}, run={"builder": ["x"]}),
    "metadata-a-number": _provenance({}, run={"metadata": 7}),
    "test-result-metrics-a-list": make_statement(
        predicateType=PREDICATE_TEST_RESULT, predicate={"result": "PASSED", "metrics": [0.9]}
    ),
    "test-result-result-a-bool": make_statement(
        predicateType=PREDICATE_TEST_RESULT, predicate={"result": True}
    ),
    "test-result-configuration-an-object": make_statement(
        predicateType=PREDICATE_TEST_RESULT,
        predicate={"result": "PASSED", "configuration": {"name": "holdout"}},
    ),
}


@pytest.mark.parametrize(
    "statement", MALFORMED_PREDICATES.values(), ids=MALFORMED_PREDICATES.keys()
)
def test_a_predicate_the_registry_reads_must_have_the_specified_shape(statement):
    refusal = rejected(statement_envelope(statement))
    assert refusal.code == "malformed_predicate"
    assert refusal.detail.startswith("malformed predicate: ")


@pytest.mark.parametrize(
    "statement",
    [
        _provenance(None, run=None),
        _provenance({"resolvedDependencies": None}, run={"builder": None, "metadata": None}),
        _provenance(
            _dependency(
                uri="git+https://example.org/repo",
                digest={"gitCommit": "ab" * 20, "vendorHash": "Zm9v+/="},
                annotations={"kind": "code", "anything": [1, 2]},
            ),
            run={"builder": {"id": "https://example.org/ci"}, "extension": [1]},
        ),
        make_statement(
            predicateType=PREDICATE_TEST_RESULT,
            predicate={"result": "FAILED", "metrics": {"auc": 0.7}, "configuration": []},
        ),
    ],
    ids=["nulls", "nulls-deeper", "extra-fields-and-algorithms", "test-result"],
)
def test_well_formed_predicates_pass_the_shape_check(statement):
    parse_envelope(statement_envelope(statement))


@pytest.mark.parametrize(
    "statement",
    [
        _without(make_statement(), "predicate"),
        make_statement(subject=[{"digest": {"sha256": MODEL_SHA256}}]),
        make_statement(
            subject=[{"name": "m", "digest": {"sha256": MODEL_SHA256, "vendorHash": "Zm9v+/="}}],
            extension={"ignored": True},
        ),
    ],
    ids=["predicate-omitted", "name-omitted", "unknown-fields-and-algorithms"],
)
def test_spec_optional_parts_are_accepted(statement):
    """in-toto v1: predicate and name are optional; unknown fields and algorithms are ignored."""
    assert parse_envelope(statement_envelope(statement)).statement == statement


def test_unknown_predicate_type():
    statement = make_statement(predicateType="https://example.com/made-up/v1")

    error = rejected(statement_envelope(statement))

    assert error.code == "unknown_predicate_type"
    assert "made-up" in error.detail


@pytest.mark.parametrize(
    "predicate_type",
    [
        "https://slsa.dev/provenance/v1",
        "https://in-toto.io/attestation/test-result/v0.1",
        "https://model_signing/signature/v1.0",
        "https://cyclonedx.org/bom",
        "https://cyclonedx.org/bom/v1.6",
        "https://spdx.dev/Document",
        "https://spdx.dev/Document/v2.3",
        "https://secmlops.dev/attestation/approval/v1",
        "https://secmlops.dev/attestation/promotion/v0.1",
    ],
)
def test_known_predicate_types(predicate_type):
    check_predicate_type(predicate_type)
    parse_envelope(statement_envelope(make_statement(predicateType=predicate_type)))


@pytest.mark.parametrize(
    "predicate_type",
    [
        "https://slsa.dev/provenance/v0.2",
        "http://slsa.dev/provenance/v1",
        "https://slsa.dev/provenance/v1\n",
        "https://cyclonedx.org/bom/v1",
        "https://cyclonedx.org/bomb",
        "https://spdx.dev/Documents",
        "https://secmlops.dev/attestation/",
        "https://secmlops.dev/attestationx/approval",
        "https://secmlops.dev/attestation/../evil",
        "",
    ],
)
def test_lookalike_predicate_types_are_unknown(predicate_type):
    with pytest.raises(AttestationRejected) as excinfo:
        check_predicate_type(predicate_type)
    assert excinfo.value.code == "unknown_predicate_type"


def test_payload_over_the_size_limit(ecdsa_key):
    raw = sign_statement(make_statement(), ecdsa_key[0])

    assert parse_envelope(raw, max_bytes=len(raw)).raw == raw
    error = rejected(raw, max_bytes=len(raw) - 1)
    assert error.code == "payload_too_large"


def test_default_size_limit_is_ten_mebibytes():
    raw = b" " * (10 * 1024 * 1024 + 1)

    assert rejected(raw).code == "payload_too_large"


# ---------------------------------------------------------------------------
# Properties: hostile bytes only ever produce a rejection
# ---------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
ENVELOPE_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "payload": st.one_of(JSON_VALUES, st.binary().map(b64)),
        "payloadType": st.sampled_from([PAYLOAD_TYPE_IN_TOTO, "text/plain", 1]),
        "signatures": st.one_of(
            JSON_VALUES, st.lists(st.fixed_dictionaries({"sig": st.binary().map(b64)}))
        ),
    },
)


def parse_outcome(raw: bytes) -> AttestationRejected | None:
    """None if parsed, the rejection if refused; any other exception escapes and fails."""
    try:
        parse_envelope(raw)
    except AttestationRejected as error:
        return error
    return None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_only_ever_raise_attestation_rejected(raw):
    error = parse_outcome(raw)

    assert error is None or (error.code and error.detail)


@settings(max_examples=200, deadline=None)
@given(ENVELOPE_FIELDS, JSON_VALUES)
def test_random_envelope_shapes_only_ever_raise_attestation_rejected(document, statement):
    if "payload" in document and statement is not None:
        document["payload"] = b64(json.dumps(statement).encode())

    error = parse_outcome(json.dumps(document).encode())

    assert error is None or (error.code and error.detail)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=6))
def test_compact_and_spaced_json_read_the_same(predicate):
    """Compact text takes a faster parser than spaced text: both must read one statement."""
    statement = make_statement(predicate=predicate)
    readings = []
    for separators in ((",", ":"), (", ", ": ")):
        payload = json.dumps(statement, separators=separators, ensure_ascii=False).encode()
        raw = json.dumps(
            {
                "payloadType": PAYLOAD_TYPE_IN_TOTO,
                "payload": b64(payload),
                "signatures": [{"sig": ""}],
            },
            separators=separators,
        ).encode()
        readings.append(parse_outcome_statement(raw))

    assert readings[0] == readings[1]
    if not isinstance(readings[0], str):  # not refused (an infinity is, either way)
        assert readings[0] == json.loads(json.dumps(statement))


def parse_outcome_statement(raw: bytes) -> Any:
    try:
        return parse_envelope(raw).statement
    except AttestationRejected as error:
        return error.code


# ---------------------------------------------------------------------------
# Sigstore bundles (real staging bundles, verified offline)
# ---------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "sigstore"
TRUSTED_ROOT = FIXTURES / "trusted_root.staging.json"
V3_IDENTITY = "william@yossarian.net"
V3_ISSUER = "https://github.com/login/oauth"
WORKFLOW_IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
WORKFLOW_ISSUER = "https://token.actions.githubusercontent.com"
A_TXT_SHA256 = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"

needs_fixtures = pytest.mark.skipif(
    not TRUSTED_ROOT.is_file(),
    reason=f"Sigstore fixtures not found at {FIXTURES} (they live outside the repository)",
)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def no_network(monkeypatch):
    """Prove verification is offline: any attempt to resolve or connect fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def verify_bundle(name: str, *, artifact: bytes | None, identity: str, issuer: str):
    return verify_sigstore_bundle(
        fixture_bytes(name),
        artifact=artifact,
        trusted_root_path=TRUSTED_ROOT,
        identity=identity,
        issuer=issuer,
    )


def sigstore_rejection(name: str, **kwargs: Any) -> AttestationRejected:
    with pytest.raises(AttestationRejected) as excinfo:
        verify_bundle(name, **kwargs)
    return excinfo.value


@needs_fixtures
@pytest.mark.usefixtures("no_network")
class TestSigstoreMessageSignature:
    def test_verifies_for_the_signers_identity_and_issuer(self):
        artifact = fixture_bytes("bundle_v3.txt")

        result = verify_bundle(
            "bundle_v3.txt.sigstore", artifact=artifact, identity=V3_IDENTITY, issuer=V3_ISSUER
        )

        assert result.kind == "message_signature"
        assert result.identity == V3_IDENTITY
        assert result.issuer == V3_ISSUER
        assert result.artifact_digest == hashlib.sha256(artifact).hexdigest()
        assert (
            result.bundle_digest
            == hashlib.sha256(fixture_bytes("bundle_v3.txt.sigstore")).hexdigest()
        )
        assert result.statement is None

    @pytest.mark.parametrize(
        ("identity", "issuer"),
        [
            ("mallory@example.com", V3_ISSUER),
            (V3_IDENTITY, WORKFLOW_ISSUER),
        ],
        ids=["other-identity", "other-issuer"],
    )
    def test_other_identity_or_issuer_is_an_identity_mismatch(self, identity, issuer):
        error = sigstore_rejection(
            "bundle_v3.txt.sigstore",
            artifact=fixture_bytes("bundle_v3.txt"),
            identity=identity,
            issuer=issuer,
        )

        assert error.code == "identity_mismatch"

    def test_one_changed_artifact_byte_is_a_bad_signature(self):
        artifact = bytearray(fixture_bytes("bundle_v3.txt"))
        artifact[0] ^= 0x01

        error = sigstore_rejection(
            "bundle_v3.txt.sigstore",
            artifact=bytes(artifact),
            identity=V3_IDENTITY,
            issuer=V3_ISSUER,
        )

        assert error.code == "bad_signature"

    def test_message_signature_without_artifact_cannot_be_checked(self):
        error = sigstore_rejection(
            "bundle_v3.txt.sigstore", artifact=None, identity=V3_IDENTITY, issuer=V3_ISSUER
        )

        assert error.code == "malformed_bundle"

    def test_cve_2022_36056_bundle_is_rejected(self):
        error = sigstore_rejection(
            "bundle_cve_2022_36056.txt.sigstore",
            artifact=fixture_bytes("bundle_cve_2022_36056.txt"),
            identity=V3_IDENTITY,
            issuer=V3_ISSUER,
        )

        assert error.code == "bad_signature"
        assert "inconsistent with other materials" in error.detail


@needs_fixtures
@pytest.mark.usefixtures("no_network")
class TestSigstoreDsse:
    BUNDLE = "a.dsse.staging-rekor-v2.txt.sigstore.json"

    def test_github_workflow_provenance_verifies(self):
        result = verify_bundle(
            self.BUNDLE, artifact=None, identity=WORKFLOW_IDENTITY, issuer=WORKFLOW_ISSUER
        )

        assert result.kind == "dsse"
        assert result.payload_type == PAYLOAD_TYPE_IN_TOTO
        assert result.statement is not None
        assert result.statement["_type"] == STATEMENT_TYPE_V1
        assert result.statement["predicateType"] == PREDICATE_SLSA_PROVENANCE_V1
        assert result.statement["subject"] == [
            {"name": "a.txt", "digest": {"sha256": A_TXT_SHA256}}
        ]

    def test_payload_is_the_bundles_bytes_verbatim(self):
        bundle = json.loads(fixture_bytes(self.BUNDLE))

        result = verify_bundle(
            self.BUNDLE, artifact=None, identity=WORKFLOW_IDENTITY, issuer=WORKFLOW_ISSUER
        )

        assert result.payload == base64.b64decode(bundle["dsseEnvelope"]["payload"])

    def test_other_workflow_is_an_identity_mismatch(self):
        other = WORKFLOW_IDENTITY.replace("refs/heads/main", "refs/heads/attacker")

        error = sigstore_rejection(
            self.BUNDLE, artifact=None, identity=other, issuer=WORKFLOW_ISSUER
        )

        assert error.code == "identity_mismatch"

    def test_tampered_statement_is_a_bad_signature(self):
        bundle = json.loads(fixture_bytes(self.BUNDLE))
        payload = base64.b64decode(bundle["dsseEnvelope"]["payload"]).replace(b"a.txt", b"b.txt")
        bundle["dsseEnvelope"]["payload"] = b64(payload)

        with pytest.raises(AttestationRejected) as excinfo:
            verify_sigstore_bundle(
                json.dumps(bundle).encode(),
                artifact=None,
                trusted_root_path=TRUSTED_ROOT,
                identity=WORKFLOW_IDENTITY,
                issuer=WORKFLOW_ISSUER,
            )
        assert excinfo.value.code == "bad_signature"

    def test_artifact_must_be_a_subject(self):
        error = sigstore_rejection(
            self.BUNDLE,
            artifact=fixture_bytes("a.dsse.staging-rekor-v2.txt"),  # not a.txt itself
            identity=WORKFLOW_IDENTITY,
            issuer=WORKFLOW_ISSUER,
        )

        assert error.code == "subject_mismatch"


@needs_fixtures
class TestSigstoreInputs:
    @pytest.mark.parametrize(
        "bundle_json",
        [
            b"",
            b"not json",
            b"[]",
            b"{}",
            b'{"mediaType": "application/vnd.dev.sigstore.bundle+json;version=9"}',
        ],
        ids=["empty", "not-json", "array", "empty-object", "unknown-media-type"],
    )
    def test_malformed_bundle(self, bundle_json):
        with pytest.raises(AttestationRejected) as excinfo:
            verify_sigstore_bundle(
                bundle_json,
                artifact=b"x",
                trusted_root_path=TRUSTED_ROOT,
                identity=V3_IDENTITY,
                issuer=V3_ISSUER,
            )
        assert excinfo.value.code == "malformed_bundle"

    def test_corrupt_certificate_is_a_malformed_bundle(self):
        bundle = json.loads(fixture_bytes("bundle_v3.txt.sigstore"))
        bundle["verificationMaterial"]["certificate"]["rawBytes"] = b64(b"\x30\x03\x02\x01\x01")

        with pytest.raises(AttestationRejected) as excinfo:
            verify_sigstore_bundle(
                json.dumps(bundle).encode(),
                artifact=fixture_bytes("bundle_v3.txt"),
                trusted_root_path=TRUSTED_ROOT,
                identity=V3_IDENTITY,
                issuer=V3_ISSUER,
            )
        assert excinfo.value.code == "malformed_bundle"

    def test_bundle_over_the_size_limit(self):
        bundle_json = fixture_bytes("bundle_v3.txt.sigstore")

        with pytest.raises(AttestationRejected) as excinfo:
            verify_sigstore_bundle(
                bundle_json,
                artifact=fixture_bytes("bundle_v3.txt"),
                trusted_root_path=TRUSTED_ROOT,
                identity=V3_IDENTITY,
                issuer=V3_ISSUER,
                max_bytes=len(bundle_json) - 1,
            )
        assert excinfo.value.code == "payload_too_large"

    @pytest.mark.parametrize(("identity", "issuer"), [(V3_IDENTITY, ""), ("", V3_ISSUER)])
    def test_policy_needs_identity_and_issuer(self, identity, issuer):
        """sigstore's Identity silently skips an empty issuer; we refuse to build that policy."""
        with pytest.raises(ValueError, match="identity and an OIDC issuer"):
            verify_sigstore_bundle(
                fixture_bytes("bundle_v3.txt.sigstore"),
                artifact=fixture_bytes("bundle_v3.txt"),
                trusted_root_path=TRUSTED_ROOT,
                identity=identity,
                issuer=issuer,
            )
