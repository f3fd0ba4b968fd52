"""provenance.model_manifest must agree bit for bit with the model_signing package.

Every expectation is checked against model_signing's own public API (hashing,
signing, verifying) rather than against constants, so the tests pin the
interoperability claim itself: what we hash and sign, stock model_signing
accepts, and vice versa. No database; small files only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib
import random
from typing import Any

import model_signing
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from model_signing._signing import signing as ms_signing

from provenance.model_manifest import (
    PREDICATE_TYPE,
    SIGNATURE_FILENAME,
    FileDigest,
    ModelManifest,
    ModelManifestError,
    ModelSignatureError,
    compute_manifest,
    sign_model,
    verify_model,
)

# ------------------------------------------------------------------ fixtures/helpers


def _write(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def model_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """A small model with the awkward cases: nesting, an empty file, hidden and
    git files, and names whose path order differs from string order
    ("a/b" < "a.txt" as paths, but "a.txt" < "a/b" as strings)."""
    root = tmp_path / "my-model"
    rng = random.Random(1234)
    _write(root / "model.safetensors", rng.randbytes(3 * 1024 * 1024 + 17))
    _write(root / "tokenizer.json", b'{"vocab": {}}')
    _write(root / "empty.txt", b"")
    _write(root / "a.txt", b"alpha")
    _write(root / "a" / "b", b"bee")
    _write(root / "nested" / "deeper" / "weights.bin", rng.randbytes(1024 * 1024))
    _write(root / "nested" / ".gitignore", b"*.tmp\n")  # only top-level git paths are ignored
    _write(root / ".hidden", b"hidden files are part of the model")
    _write(root / ".git" / "HEAD", b"ref: refs/heads/main\n")  # ignored by default
    _write(root / ".gitattributes", b"*.bin filter=lfs\n")  # ignored by default
    return root


def _ms_files(path: pathlib.Path, ignore: list[str] | None = None) -> dict[str, str]:
    config = model_signing.hashing.Config()
    if ignore is not None:
        config = config.set_ignored_paths(paths=ignore)
    manifest = config.hash(path)
    return {rd.identifier: rd.digest.digest_hex for rd in manifest.resource_descriptors()}


def _ms_root_digest(path: pathlib.Path) -> str:
    """The subject digest model_signing would put in the signed statement."""
    payload = ms_signing.Payload(model_signing.hashing.Config().hash(path))
    subject = payload.statement.pb.subject[0]
    return str(subject.digest["sha256"])


def _keypair(curve: ec.EllipticCurve | None = None) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


@pytest.fixture(scope="module")
def keypair() -> tuple[bytes, bytes]:
    return _keypair()


def _statement(signature_path: pathlib.Path) -> dict[str, Any]:
    bundle = json.loads(signature_path.read_text())
    statement: dict[str, Any] = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return statement


# --------------------------------------------------------------------------- hashing


def test_digests_equal_model_signing(model_dir: pathlib.Path) -> None:
    manifest = compute_manifest(model_dir)

    expected = _ms_files(model_dir)
    assert {f.path: f.sha256 for f in manifest.files} == expected
    assert [f.path for f in manifest.files] == list(expected)  # same (path) order
    assert manifest.root_digest == _ms_root_digest(model_dir)
    # The awkward cases are really in there / really left out.
    paths = [f.path for f in manifest.files]
    assert paths.index("a/b") < paths.index("a.txt")
    assert {"empty.txt", "nested/.gitignore", ".hidden"} <= set(paths)
    assert not any(p.startswith(".git/") or p == ".gitattributes" for p in paths)


def test_file_digest_is_plain_sha256_and_root_is_over_raw_digests(
    model_dir: pathlib.Path,
) -> None:
    manifest = compute_manifest(model_dir)
    for item in manifest.files:
        content = (model_dir / item.path).read_bytes()
        assert item.size == len(content)
        assert item.sha256 == hashlib.sha256(content).hexdigest()
    empty = next(f for f in manifest.files if f.path == "empty.txt")
    assert empty.sha256 == hashlib.sha256(b"").hexdigest()
    root = hashlib.sha256(b"".join(bytes.fromhex(f.sha256) for f in manifest.files))
    assert manifest.root_digest == root.hexdigest()
    assert manifest.total_size == sum(f.size for f in manifest.files)


def test_custom_ignores_match_model_signing(model_dir: pathlib.Path) -> None:
    manifest = compute_manifest(model_dir, ignore=["nested/deeper", "a.txt"])
    expected = _ms_files(model_dir, ["nested/deeper", "a.txt"])
    assert {f.path: f.sha256 for f in manifest.files} == expected
    assert {"nested/deeper", "a.txt", ".git"} <= set(manifest.ignore_paths)


def test_single_file_model_matches_model_signing(model_dir: pathlib.Path) -> None:
    path = model_dir / "tokenizer.json"
    manifest = compute_manifest(path)
    assert {f.path: f.sha256 for f in manifest.files} == _ms_files(path)
    assert manifest.root_digest == _ms_root_digest(path)


def test_empty_model_matches_model_signing(tmp_path: pathlib.Path) -> None:
    (tmp_path / "empty-model").mkdir()
    manifest = compute_manifest(tmp_path / "empty-model")
    assert manifest.files == ()
    assert manifest.root_digest == _ms_root_digest(tmp_path / "empty-model")


def test_symlinks_are_rejected_like_model_signing(model_dir: pathlib.Path) -> None:
    os.symlink("a.txt", model_dir / ".git" / "link")  # even inside an ignored directory
    with pytest.raises(ValueError, match="symlink"):
        model_signing.hashing.Config().hash(model_dir)
    with pytest.raises(ModelManifestError, match="symlink"):
        compute_manifest(model_dir)


def test_progress_reaches_total(model_dir: pathlib.Path) -> None:
    calls: list[tuple[int, int]] = []
    manifest = compute_manifest(
        model_dir, workers=2, chunk_size=64 * 1024, on_progress=lambda d, t: calls.append((d, t))
    )
    total = manifest.total_size
    assert calls[0] == (0, total)
    assert calls[-1] == (total, total)
    assert all(t == total for _, t in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done)


def test_progress_callback_can_abort(model_dir: pathlib.Path) -> None:
    class Abort(Exception):
        pass

    def stop(done: int, total: int) -> None:
        raise Abort

    with pytest.raises(Abort):
        compute_manifest(model_dir, on_progress=stop)


@pytest.mark.parametrize("chunk_size", [1, 4096, 8 * 1024 * 1024])
def test_worker_count_and_chunk_size_do_not_change_the_manifest(
    model_dir: pathlib.Path, chunk_size: int
) -> None:
    if chunk_size == 1:  # byte-at-a-time only on the small files
        for big in ("model.safetensors", "nested/deeper/weights.bin"):
            (model_dir / big).unlink()
    one = compute_manifest(model_dir, workers=1, chunk_size=chunk_size)
    four = compute_manifest(model_dir, workers=4, chunk_size=chunk_size)
    assert one == four
    assert one.to_json() == four.to_json()


def test_manifest_json_round_trip_and_validation(model_dir: pathlib.Path) -> None:
    manifest = compute_manifest(model_dir)
    assert ModelManifest.from_json(manifest.to_json()) == manifest
    data = json.loads(manifest.to_json())
    assert data["root_digest"] == manifest.root_digest
    assert data["files"][0] == manifest.files[0].to_dict()

    data["files"][0]["sha256"] = "0" * 64
    with pytest.raises(ModelManifestError, match="root digest"):
        ModelManifest.from_dict(data)
    with pytest.raises(ModelManifestError, match="order"):
        ModelManifest(files=tuple(reversed(manifest.files)), root_digest=manifest.root_digest)
    swapped = ModelManifest.from_files(reversed(manifest.files))
    assert swapped == manifest
    with pytest.raises(ModelManifestError, match="invalid manifest entry"):
        FileDigest(path="x", size=1, sha256="zz")
    data = json.loads(manifest.to_json())
    data["files"][0]["size"] = "not a number"
    with pytest.raises(ModelManifestError, match="malformed"):
        ModelManifest.from_dict(data)
    data["files"][0]["size"] = -1
    with pytest.raises(ModelManifestError, match="invalid manifest entry"):
        ModelManifest.from_dict(data)


# --------------------------------------------------------------------------- signing


def test_sign_then_verify_round_trip(model_dir: pathlib.Path, keypair) -> None:
    private_pem, public_pem = keypair
    signature = model_dir / SIGNATURE_FILENAME
    sign_model(model_dir, private_pem, signature)

    verify_model(model_dir, signature, public_pem)
    # ... and stock model_signing agrees, with a key file as its users would have.
    key_file = model_dir.parent / "registry.pub"
    key_file.write_bytes(public_pem)
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=key_file).verify(
        model_dir, signature
    )


def test_signature_outside_model_dir(model_dir: pathlib.Path, keypair) -> None:
    private_pem, public_pem = keypair
    signature = model_dir.parent / "detached.sig"
    sign_model(model_dir, private_pem, signature)
    verify_model(model_dir, signature, public_pem)
    assert "detached.sig" not in _statement(signature)["predicate"]["serialization"].get(
        "ignore_paths", []
    )


def test_signing_reuses_a_precomputed_manifest(model_dir: pathlib.Path, keypair) -> None:
    private_pem, public_pem = keypair
    manifest = compute_manifest(model_dir)
    signature = model_dir / SIGNATURE_FILENAME
    sign_model(model_dir, private_pem, signature, manifest=manifest)
    verify_model(model_dir, signature, public_pem)

    # What is signed is the manifest given, not the disk: sign a stale one.
    (model_dir / "a.txt").write_bytes(b"changed after hashing")
    stale = model_dir.parent / "stale.sig"
    sign_model(model_dir, private_pem, stale, manifest=manifest)
    assert _statement(stale)["subject"][0]["digest"]["sha256"] == manifest.root_digest
    with pytest.raises(ModelSignatureError):
        verify_model(model_dir, stale, public_pem)


def test_precomputed_manifest_covering_the_signature_path_is_refused(
    model_dir: pathlib.Path, keypair
) -> None:
    _write(model_dir / SIGNATURE_FILENAME, b"an old file with the same name")
    manifest = compute_manifest(model_dir)
    with pytest.raises(ValueError, match=SIGNATURE_FILENAME):
        sign_model(model_dir, keypair[0], model_dir / SIGNATURE_FILENAME, manifest=manifest)


def test_signature_is_a_sigstore_bundle_with_model_signing_statement(
    model_dir: pathlib.Path, keypair
) -> None:
    private_pem, public_pem = keypair
    signature = model_dir / SIGNATURE_FILENAME
    sign_model(model_dir, private_pem, signature)
    manifest = compute_manifest(model_dir, ignore=[SIGNATURE_FILENAME])

    bundle = json.loads(signature.read_text())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    assert len(bundle["dsseEnvelope"]["signatures"]) == 1
    public_key = serialization.load_pem_public_key(public_pem)
    spki = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == hashlib.sha256(spki).hexdigest()

    statement = _statement(signature)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == PREDICATE_TYPE == "https://model_signing/signature/v1.0"
    assert statement["subject"] == [
        {"name": "my-model", "digest": {"sha256": manifest.root_digest}}
    ]
    predicate = statement["predicate"]
    assert predicate["resources"] == [
        {"name": f.path, "algorithm": "sha256", "digest": f.sha256} for f in manifest.files
    ]
    assert predicate["serialization"]["method"] == "files"
    assert predicate["serialization"]["hash_type"] == "sha256"
    assert SIGNATURE_FILENAME in predicate["serialization"]["ignore_paths"]


def test_statement_equals_what_model_signing_itself_signs(
    model_dir: pathlib.Path, keypair, tmp_path: pathlib.Path
) -> None:
    """Same statement as model_signing's own signer configured like its CLI
    (ECDSA signatures are randomised, so compare the signed statement)."""
    private_pem, _ = keypair
    ours = model_dir / SIGNATURE_FILENAME
    sign_model(model_dir, private_pem, ours)

    key_file = tmp_path / "key.pem"
    key_file.write_bytes(private_pem)
    theirs = tmp_path / "theirs.sig"
    hashing_config = model_signing.hashing.Config().set_ignored_paths(paths=[SIGNATURE_FILENAME])
    model_signing.signing.Config().use_elliptic_key_signer(private_key=key_file).set_hashing_config(
        hashing_config
    ).sign(model_dir, theirs)

    mine, reference = _statement(ours), _statement(theirs)
    for statement in (mine, reference):  # model_signing lists these from a frozenset
        ignored = statement["predicate"]["serialization"].pop("ignore_paths")
        statement["predicate"]["serialization"]["ignore_paths"] = sorted(ignored)
    assert mine == reference


def test_verify_accepts_a_signature_made_by_model_signing(
    model_dir: pathlib.Path, keypair, tmp_path: pathlib.Path
) -> None:
    private_pem, public_pem = keypair
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(private_pem)
    signature = tmp_path / "model.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=key_file).sign(
        model_dir, signature
    )
    verify_model(model_dir, signature, public_pem)


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP521R1()])
def test_other_supported_curves(model_dir: pathlib.Path, curve: ec.EllipticCurve) -> None:
    private_pem, public_pem = _keypair(curve)
    sign_model(model_dir, private_pem, model_dir / SIGNATURE_FILENAME)
    verify_model(model_dir, model_dir / SIGNATURE_FILENAME, public_pem)


def test_non_ec_keys_are_refused(model_dir: pathlib.Path, keypair) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_private = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(TypeError, match="elliptic-curve"):
        sign_model(model_dir, rsa_private, model_dir / SIGNATURE_FILENAME)

    sign_model(model_dir, keypair[0], model_dir / SIGNATURE_FILENAME)
    rsa_public = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(TypeError, match="elliptic-curve"):
        verify_model(model_dir, model_dir / SIGNATURE_FILENAME, rsa_public)


# ---------------------------------------------------------------------- verification


@pytest.fixture
def signed(model_dir: pathlib.Path, keypair) -> tuple[pathlib.Path, pathlib.Path, bytes]:
    private_pem, public_pem = keypair
    signature = model_dir / SIGNATURE_FILENAME
    sign_model(model_dir, private_pem, signature)
    verify_model(model_dir, signature, public_pem)
    return model_dir, signature, public_pem


def _assert_rejected(signed, kind: str, match: str) -> None:
    model_dir, signature, public_pem = signed
    with pytest.raises(ModelSignatureError, match=match) as info:
        verify_model(model_dir, signature, public_pem)
    assert info.value.kind == kind


def test_flipped_byte_is_detected(signed) -> None:
    target = signed[0] / "nested" / "deeper" / "weights.bin"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    _assert_rejected(signed, ModelSignatureError.CONTENT_MISMATCH, "nested/deeper/weights.bin")


def test_added_file_is_detected(signed) -> None:
    _write(signed[0] / "nested" / "backdoor.py", b"import os\n")
    _assert_rejected(signed, ModelSignatureError.CONTENT_MISMATCH, "nested/backdoor.py")


def test_removed_file_is_detected(signed) -> None:
    (signed[0] / "empty.txt").unlink()
    _assert_rejected(signed, ModelSignatureError.CONTENT_MISMATCH, "empty.txt")


def test_renamed_file_is_detected(signed) -> None:
    # The root digest ignores names, but the signed resource list does not.
    (signed[0] / "a.txt").rename(signed[0] / "z.txt")
    _assert_rejected(signed, ModelSignatureError.CONTENT_MISMATCH, "a.txt")


def test_ignored_paths_may_change(signed) -> None:
    model_dir, signature, public_pem = signed
    _write(model_dir / ".git" / "ORIG_HEAD", b"whatever")
    verify_model(model_dir, signature, public_pem)


def test_other_public_key_is_rejected(signed) -> None:
    model_dir, signature, _ = signed
    _, other_public = _keypair()
    with pytest.raises(ModelSignatureError, match="different key") as info:
        verify_model(model_dir, signature, other_public)
    assert info.value.kind == ModelSignatureError.WRONG_KEY


def test_tampered_statement_is_rejected(signed) -> None:
    """Editing the signed statement (e.g. to bless a modified file) breaks the
    DSSE signature even though the key hint still matches."""
    model_dir, signature, _ = signed
    (model_dir / "a.txt").write_bytes(b"evil")
    bundle = json.loads(signature.read_text())
    statement = _statement(signature)
    for resource in statement["predicate"]["resources"]:
        if resource["name"] == "a.txt":
            resource["digest"] = hashlib.sha256(b"evil").hexdigest()
    resources = statement["predicate"]["resources"]
    statement["subject"][0]["digest"]["sha256"] = hashlib.sha256(
        b"".join(bytes.fromhex(r["digest"]) for r in resources)
    ).hexdigest()
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    signature.write_text(json.dumps(bundle))
    _assert_rejected(signed, ModelSignatureError.BAD_SIGNATURE, "does not verify")


def test_garbage_signature_is_rejected(signed) -> None:
    signed[1].write_text("not a bundle")
    _assert_rejected(signed, ModelSignatureError.MALFORMED, "unusable")


def test_missing_signature_is_an_operational_error(signed) -> None:
    model_dir, signature, public_pem = signed
    signature.unlink()
    with pytest.raises(FileNotFoundError):
        verify_model(model_dir, signature, public_pem)
