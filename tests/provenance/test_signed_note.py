"""Tests for provenance.signed_note (C2SP signed notes and checkpoints). No Django."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.merkle import MemoryNodeStore, leaf_hash, root_at
from provenance.signed_note import (
    MAX_SIGNATURES,
    AmbiguousKeyError,
    Checkpoint,
    InvalidSignatureError,
    KeyFormatError,
    MalformedNoteError,
    NoteError,
    NoteSigner,
    NoteVerifier,
    UnverifiedNoteError,
    ed25519_key_hash,
    format_checkpoint,
    open_note,
    parse_checkpoint,
    sign_note,
)

# ---------------------------------------------------------------------------
# Known answers from golang.org/x/mod/sumdb/note (note.go package docs and
# note_test.go: TestNewVerifier, TestNewSigner, TestSign, TestOpen).
# ---------------------------------------------------------------------------

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKv"
    "qfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOT"
    "GwnWLox33WWd1RvMc+QQ=\n"
)
SIGNED_BY_PETER = TEXT + "\n" + PETER_SIG


@pytest.fixture
def peter() -> NoteSigner:
    return NoteSigner.from_signer_key(PETER_SKEY)


@pytest.fixture
def peter_verifier() -> NoteVerifier:
    return NoteVerifier.from_verifier_key(PETER_VKEY)


@pytest.fixture
def enoch_verifier() -> NoteVerifier:
    return NoteVerifier.from_verifier_key(ENOCH_VKEY)


def test_go_signer_key_reproduces_documented_signature(peter: NoteSigner) -> None:
    assert peter.name == "PeterNeumann"
    assert peter.key_hash == 0xC74F20A3
    assert peter.verifier_key == PETER_VKEY
    assert peter.signer_key == PETER_SKEY
    # Ed25519 is deterministic, so this must be byte-for-byte Go's output.
    assert sign_note(TEXT, peter) == SIGNED_BY_PETER


def test_key_hash_vector(peter_verifier: NoteVerifier) -> None:
    raw = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]
    assert ed25519_key_hash("PeterNeumann", raw) == 0xC74F20A3
    assert peter_verifier.key_hash == 0xC74F20A3
    assert peter_verifier.public_key_bytes == raw
    assert NoteVerifier.from_verifier_key(ENOCH_VKEY).key_hash == 0xAF0CFE78


def test_open_go_note(peter_verifier: NoteVerifier) -> None:
    assert open_note(SIGNED_BY_PETER, [peter_verifier]) == (TEXT, ["PeterNeumann"])
    assert open_note(SIGNED_BY_PETER.encode(), [peter_verifier]) == (TEXT, ["PeterNeumann"])


def test_open_doubly_signed_go_note(
    peter_verifier: NoteVerifier, enoch_verifier: NoteVerifier
) -> None:
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(note, [peter_verifier]) == (TEXT, ["PeterNeumann"])
    assert open_note(note, [enoch_verifier]) == (TEXT, ["EnochRoot"])
    both = open_note(note, [enoch_verifier, peter_verifier])
    assert both == (TEXT, ["PeterNeumann", "EnochRoot"])
    with pytest.raises(UnverifiedNoteError) as excinfo:
        open_note(note, [])
    assert excinfo.value.unknown_keys == ("PeterNeumann+c74f20a3", "EnochRoot+af0cfe78")
    assert excinfo.value.reason == "unknown_key"


def test_duplicate_signatures_are_counted_once(peter_verifier: NoteVerifier) -> None:
    note = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG
    assert open_note(note, [peter_verifier]) == (TEXT, ["PeterNeumann"])


def test_go_invalid_signature_vector(peter_verifier: NoteVerifier) -> None:
    note = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(InvalidSignatureError, match=r"PeterNeumann\+c74f20a3"):
        open_note(note, [peter_verifier])


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2"
        "pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG.replace("\u2014", "-"),
        TEXT + "\n" + "\u2014 PeterNeumann\n",
        TEXT + "\n" + "\u2014 PeterNeumann AAAA\n",  # too short for key ID + signature
        TEXT + "\n" + "\u2014 PeterNeumann !!!!\n",
        TEXT + "\r\n" + PETER_SIG,
        TEXT + "\ud800\n\n" + PETER_SIG,  # lone surrogate is not UTF-8
        TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1),
    ],
)
def test_go_malformed_notes(peter_verifier: NoteVerifier, note: str) -> None:
    with pytest.raises(MalformedNoteError) as excinfo:
        open_note(note, [peter_verifier])
    assert excinfo.value.reason == "malformed"


def test_invalid_utf8_bytes_are_malformed(peter_verifier: NoteVerifier) -> None:
    with pytest.raises(MalformedNoteError):
        open_note(b"\xff" + SIGNED_BY_PETER.encode(), [peter_verifier])


def test_max_signatures_is_accepted(peter_verifier: NoteVerifier) -> None:
    note = TEXT + "\n" + PETER_SIG * MAX_SIGNATURES
    assert open_note(note, [peter_verifier]) == (TEXT, ["PeterNeumann"])


def _mangled(key: str) -> list[str]:
    """Every proper substring and every single-character increment (as in note_test.go)."""
    variants = {key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)}
    variants |= {key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))}
    variants.discard(key)
    return sorted(variants)


def test_mangled_verifier_keys_are_rejected() -> None:
    accepted = []
    for candidate in _mangled(PETER_VKEY):
        try:
            NoteVerifier.from_verifier_key(candidate)
        except KeyFormatError:
            continue
        accepted.append(candidate)
    assert accepted == []


def test_mangled_signer_keys_are_rejected() -> None:
    accepted = []
    for candidate in _mangled(PETER_SKEY):
        try:
            NoteSigner.from_signer_key(candidate)
        except KeyFormatError:
            continue
        accepted.append(candidate)
    assert accepted == []


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        # From TestNewVerifier: hash adjusted so only the key data is wrong.
        (
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            "32 bytes",
        ),
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "algorithm"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "malformed"),
        ("PeterNeumann+0xf20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "malformed"),
    ],
)
def test_specific_bad_verifier_keys(vkey: str, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message):
        NoteVerifier.from_verifier_key(vkey)


# ---------------------------------------------------------------------------
# Round trips and tampering
# ---------------------------------------------------------------------------


def test_generated_key_round_trips() -> None:
    signer = NoteSigner.generate("registry.example/log")
    verifier = NoteVerifier.from_verifier_key(signer.verifier_key)
    assert verifier.verifier_key == signer.verifier_key
    assert verifier.key_hash == signer.key_hash
    again = NoteSigner.from_signer_key(signer.signer_key)
    assert again.verifier_key == signer.verifier_key
    body = "registry.example/log\n3\n" + base64.b64encode(b"\x07" * 32).decode() + "\n"
    note = sign_note(body, signer)
    assert open_note(note, [verifier]) == (body, ["registry.example/log"])
    assert open_note(note, [again.verifier()]) == (body, ["registry.example/log"])


def test_signer_from_key_object_and_repr_hides_secret() -> None:
    key = Ed25519PrivateKey.generate()
    signer = NoteSigner("example.com/log", key)
    verifier = NoteVerifier("example.com/log", key.public_key())
    assert signer.key_hash == verifier.key_hash
    # PRIVATE+KEY+<name>+<hash>+<base64 key>: base64 may itself hold "+", so split four times.
    secret = signer.signer_key.split("+", 4)[4]
    assert len(secret) > 40
    assert secret not in repr(signer)
    assert "PRIVATE" not in repr(signer)


def _body_and_signature(note: str) -> tuple[str, str, bytes]:
    body, _, sig_line = note.rpartition("\n\n")
    name, _, encoded = sig_line.removeprefix("\u2014 ").rstrip("\n").partition(" ")
    return body + "\n", name, base64.b64decode(encoded)


def test_flipped_body_byte_fails(peter: NoteSigner, peter_verifier: NoteVerifier) -> None:
    body = "hello\nworld\n"
    note = sign_note(body, peter)
    for position in range(len(body) - 1):
        if body[position] == "\n":
            continue
        tampered = note[:position] + chr(ord(note[position]) ^ 1) + note[position + 1 :]
        with pytest.raises(InvalidSignatureError) as excinfo:
            open_note(tampered, [peter_verifier])
        assert excinfo.value.reason == "bad_signature"


def test_flipped_signature_byte_fails(peter: NoteSigner, peter_verifier: NoteVerifier) -> None:
    body, name, raw = _body_and_signature(sign_note("hello\n", peter))
    for index in range(4, len(raw)):
        bad = bytearray(raw)
        bad[index] ^= 0x40
        note = body + "\n\u2014 " + name + " " + base64.b64encode(bytes(bad)).decode() + "\n"
        with pytest.raises(InvalidSignatureError):
            open_note(note, [peter_verifier])


def test_flipped_key_id_is_unknown_key(peter: NoteSigner, peter_verifier: NoteVerifier) -> None:
    body, name, raw = _body_and_signature(sign_note("hello\n", peter))
    bad = bytes([raw[0] ^ 1]) + raw[1:]
    note = body + "\n\u2014 " + name + " " + base64.b64encode(bad).decode() + "\n"
    with pytest.raises(UnverifiedNoteError, match="unknown keys"):
        open_note(note, [peter_verifier])


def test_truncated_signature_fails(peter: NoteSigner, peter_verifier: NoteVerifier) -> None:
    body, name, raw = _body_and_signature(sign_note("hello\n", peter))
    note = body + "\n\u2014 " + name + " " + base64.b64encode(raw[:-1]).decode() + "\n"
    with pytest.raises(InvalidSignatureError):
        open_note(note, [peter_verifier])


def test_unknown_key_fails(peter_verifier: NoteVerifier) -> None:
    stranger = NoteSigner.generate("stranger.example")
    with pytest.raises(UnverifiedNoteError) as excinfo:
        open_note(sign_note("hello\n", stranger), [peter_verifier])
    assert isinstance(excinfo.value, NoteError)
    assert isinstance(excinfo.value, ValueError)


def test_same_name_different_key_is_ignored_not_trusted(peter_verifier: NoteVerifier) -> None:
    impostor = NoteSigner.generate("PeterNeumann")
    note = sign_note(TEXT, impostor)
    with pytest.raises(UnverifiedNoteError):
        open_note(note, [peter_verifier])
    # An impostor line alongside the real one does not hurt.
    combined = SIGNED_BY_PETER + note.rpartition("\n\n")[2]
    assert open_note(combined, [peter_verifier]) == (TEXT, ["PeterNeumann"])


def test_ambiguous_verifiers(peter_verifier: NoteVerifier) -> None:
    # Same verifier twice is harmless; two different keys with one name+ID is not.
    assert open_note(SIGNED_BY_PETER, [peter_verifier, peter_verifier])[1] == ["PeterNeumann"]

    class Collider(NoteVerifier):
        """Pretends to have Peter's key ID (only possible by brute force)."""

    collider = Collider("PeterNeumann", Ed25519PrivateKey.generate().public_key())
    collider.key_hash = peter_verifier.key_hash
    with pytest.raises(AmbiguousKeyError):
        open_note(SIGNED_BY_PETER, [peter_verifier, collider])


def test_multiple_signers(peter: NoteSigner, peter_verifier: NoteVerifier) -> None:
    witness = NoteSigner.generate("witness.example")
    note = sign_note(TEXT, peter, witness)
    assert note.startswith(SIGNED_BY_PETER)
    body, names = open_note(note, [witness.verifier(), peter_verifier])
    assert (body, names) == (TEXT, ["PeterNeumann", "witness.example"])


@pytest.mark.parametrize("body", ["", "no newline", "tab\there\n", "cr\rhere\n", "\ud800\n"])
def test_sign_refuses_unopenable_text(peter: NoteSigner, body: str) -> None:
    with pytest.raises(MalformedNoteError):
        sign_note(body, peter)


def test_sign_needs_a_signer() -> None:
    with pytest.raises(ValueError, match="at least one signer"):
        sign_note("x\n")


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "a\nb", "\ud800"])
def test_invalid_key_names(name: str) -> None:
    with pytest.raises(KeyFormatError):
        NoteSigner.generate(name)


def test_body_with_blank_lines_round_trips(peter: NoteSigner, peter_verifier: NoteVerifier) -> None:
    body = "first\n\nthird\n\n"
    assert open_note(sign_note(body, peter), [peter_verifier]) == (body, ["PeterNeumann"])


note_text = st.text(
    # Signable text: valid UTF-8 (no lone surrogates) and no control characters.
    alphabet=st.characters(codec="utf-8", min_codepoint=0x20),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(note_text, min_size=1, max_size=5))
def test_any_valid_text_round_trips(lines: list[str]) -> None:
    signer = NoteSigner.from_signer_key(PETER_SKEY)
    body = "\n".join(lines) + "\n"
    assert open_note(sign_note(body, signer), [signer.verifier()]) == (body, ["PeterNeumann"])


# ---------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------

# The example in c2sp.org/tlog-checkpoint.
C2SP_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def test_parse_c2sp_example_checkpoint() -> None:
    checkpoint = parse_checkpoint(C2SP_BODY)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.to_body() == C2SP_BODY
    assert format_checkpoint(checkpoint.origin, checkpoint.size, checkpoint.root_hash) == C2SP_BODY


def test_checkpoint_with_extensions_round_trips() -> None:
    body = format_checkpoint("log.example", 0, b"\x00" * 32, ["ext one", "ext two"])
    assert (
        body == "log.example\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next one\next two\n"
    )
    assert parse_checkpoint(body) == Checkpoint(
        "log.example", 0, b"\x00" * 32, ("ext one", "ext two")
    )


@pytest.mark.parametrize(
    "body",
    [
        C2SP_BODY[:-1],  # no trailing newline
        "example.com/log\n1\n",  # too few lines
        "\n1\n" + C2SP_BODY.split("\n")[2] + "\n",  # empty origin
        C2SP_BODY.replace("20852163", "020852163"),  # leading zero
        C2SP_BODY.replace("20852163", "-1"),
        C2SP_BODY.replace("20852163", "+1"),
        C2SP_BODY.replace("20852163", " 1"),
        C2SP_BODY.replace("20852163", "1_000"),
        C2SP_BODY.replace("20852163", "\u0661"),  # Arabic-Indic digit one
        C2SP_BODY.replace("20852163", "18446744073709551616"),  # 2**64
        C2SP_BODY.replace("=", ""),  # unpadded base64
        C2SP_BODY.replace("2I=", "2J="),  # non-canonical trailing bits
        C2SP_BODY.replace("CsUY", "CsU!"),
        "example.com/log\n1\nAAAA\n",  # hash of the wrong length
        C2SP_BODY + "\n",  # empty extension line
        C2SP_BODY.replace("\n", "\r\n"),
    ],
)
def test_malformed_checkpoints_are_rejected(body: str) -> None:
    with pytest.raises(ValueError, match="checkpoint"):
        parse_checkpoint(body)


def test_checkpoint_constructor_validates() -> None:
    with pytest.raises(ValueError, match="root hash"):
        Checkpoint("o", 1, b"\x00" * 31)
    with pytest.raises(ValueError, match="size"):
        Checkpoint("o", -1, b"\x00" * 32)
    with pytest.raises(TypeError, match="size"):
        Checkpoint("o", True, b"\x00" * 32)
    with pytest.raises(ValueError, match="origin"):
        Checkpoint("o\n2", 1, b"\x00" * 32)
    with pytest.raises(ValueError, match="extension"):
        Checkpoint("o", 1, b"\x00" * 32, ("",))


def test_signed_checkpoint_end_to_end() -> None:
    store = MemoryNodeStore()
    for i in range(13):
        store.append(leaf_hash(b"entry %d" % i))
    signer = NoteSigner.generate("registry.example/provenance")
    body = format_checkpoint(signer.name, store.size, root_at(store.size, store))
    note = sign_note(body, signer)
    opened, names = open_note(note, [NoteVerifier.from_verifier_key(signer.verifier_key)])
    assert names == [signer.name]
    checkpoint = parse_checkpoint(opened)
    assert (checkpoint.origin, checkpoint.size) == (signer.name, 13)
    assert checkpoint.root_hash == store.root()


@settings(max_examples=100, deadline=None)
@given(
    origin=note_text.filter(bool),
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
)
def test_checkpoint_round_trip_property(origin: str, size: int, root: bytes) -> None:
    assert parse_checkpoint(format_checkpoint(origin, size, root)) == Checkpoint(origin, size, root)
