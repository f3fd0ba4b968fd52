"""C2SP signed notes (c2sp.org/signed-note) and checkpoints (c2sp.org/tlog-checkpoint).

We emit the exact byte format of golang.org/x/mod/sumdb/note so that the log's
checkpoints can be checked by off-the-shelf tooling (Go's sumdb, witnesses,
Sigsum/Trillian clients), not only by this project.  Only Ed25519 (signature
type 0x01) is implemented: the spec asks implementations to support only the
algorithms they need.

Layout of a signed note::

    <text, ending in a newline>
    <blank line>
    — <key name> <base64(4-byte key ID || 64-byte Ed25519 signature)>
    ...

The signed message is the text including its final newline but excluding the
blank separator line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "AmbiguousKeyError",
    "Checkpoint",
    "InvalidSignatureError",
    "KeyFormatError",
    "MalformedNoteError",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "UnverifiedNoteError",
    "ed25519_key_hash",
    "format_checkpoint",
    "open_note",
    "parse_checkpoint",
    "sign_note",
]

ALG_ED25519 = 0x01
"""Signature type identifier byte for Ed25519 in c2sp.org/signed-note."""

MAX_SIGNATURES = 100
"""Same cap as the Go implementation; the spec requires accepting at least 16."""

_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_ED25519_KEY_SIZE = 32
_ED25519_SIGNATURE_SIZE = 64
_KEY_HASH_SIZE = 4
_ROOT_HASH_SIZE = 32
_MAX_TREE_SIZE = (1 << 64) - 1
_PRIVATE_KEY_PREFIX = "PRIVATE+KEY+"
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class NoteError(ValueError):
    """Base for every note/key problem; ``reason`` is a stable machine tag."""

    reason = "note_error"


class MalformedNoteError(NoteError):
    """The text is not syntactically a signed note."""

    reason = "malformed"


class KeyFormatError(NoteError):
    """A signer/verifier key string or key name is not acceptable."""

    reason = "bad_key"


class UnverifiedNoteError(NoteError):
    """Well-formed, but no signature is from a trusted key (all keys unknown)."""

    reason = "unknown_key"

    def __init__(self, unknown_keys: Sequence[str]) -> None:
        self.unknown_keys = tuple(unknown_keys)
        listed = ", ".join(self.unknown_keys) if self.unknown_keys else "none"
        super().__init__(f"note has no verifiable signatures (unknown keys: {listed})")


class InvalidSignatureError(NoteError):
    """A trusted key's signature did not verify: the whole note is rejected."""

    reason = "bad_signature"


class AmbiguousKeyError(NoteError):
    """Two different trusted keys share a name and key ID, so we cannot choose."""

    reason = "ambiguous_key"


# --------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------


def _is_valid_name(name: object) -> bool:
    """Names sit inside space-separated lines and '+'-separated key strings."""
    if not isinstance(name, str) or not name or "+" in name:
        return False
    if any(char.isspace() for char in name):
        return False
    return _is_utf8(name)


def _is_utf8(text: str) -> bool:
    """Python strings may hold lone surrogates, which are not valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _require_name(name: object) -> str:
    """Fail at construction so a bad name cannot produce an unopenable note."""
    if not isinstance(name, str) or not _is_valid_name(name):
        raise KeyFormatError(
            f"invalid key name {name!r}: must be non-empty UTF-8 without spaces or '+'"
        )
    return name


def _key_hash(name: str, encoded_key: bytes) -> int:
    """Key ID = SHA-256(name || 0x0A || encoded key)[:4] as a big-endian uint32."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + encoded_key).digest()
    return int.from_bytes(digest[:_KEY_HASH_SIZE], "big")


def ed25519_key_hash(name: str, public_key: bytes) -> int:
    """Key ID of a raw 32-byte Ed25519 public key under ``name``."""
    if len(public_key) != _ED25519_KEY_SIZE:
        raise KeyFormatError(f"Ed25519 public key must be {_ED25519_KEY_SIZE} bytes")
    return _key_hash(_require_name(name), bytes([ALG_ED25519]) + public_key)


def _b64decode(text: str) -> bytes:
    """Strict standard base64; any stray character is a format error, not skipped."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError(f"invalid base64: {text!r}") from exc


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _split_key_string(key: str, what: str) -> tuple[str, int, bytes]:
    """Parse ``<name>+<hex8>+<base64>``; the base64 part may itself contain '+'."""
    name, _, rest = key.partition("+")
    hash_hex, _, key_b64 = rest.partition("+")
    if not _is_valid_name(name) or not _HEX8.fullmatch(hash_hex) or not key_b64:
        raise KeyFormatError(f"malformed {what} key")
    try:
        key_data = _b64decode(key_b64)
    except ValueError as exc:
        raise KeyFormatError(f"malformed {what} key: bad base64") from exc
    if not key_data:
        raise KeyFormatError(f"malformed {what} key: empty key data")
    return name, int(hash_hex, 16), key_data


def _ed25519_key_material(key_data: bytes, what: str) -> bytes:
    """Strip and check the algorithm byte; only Ed25519 is supported."""
    if key_data[0] != ALG_ED25519:
        raise KeyFormatError(f"unknown {what} key algorithm {key_data[0]}")
    if len(key_data) != 1 + _ED25519_KEY_SIZE:
        raise KeyFormatError(f"malformed {what} key: Ed25519 key must be 32 bytes")
    return key_data[1:]


class NoteVerifier:
    """A trusted public key: name, key ID and Ed25519 public key."""

    __slots__ = ("_public_key", "_raw", "key_hash", "name")

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        self.name = _require_name(name)
        self._public_key = public_key
        self._raw = public_key.public_bytes_raw()
        self.key_hash = ed25519_key_hash(self.name, self._raw)

    @classmethod
    def from_verifier_key(cls, vkey: str) -> NoteVerifier:
        """Parse ``<name>+<hex8 key ID>+<base64(0x01 || public key)>``.

        The key ID is recomputed and must match, which catches copy/paste
        damage and keys pasted under the wrong name.
        """
        if not isinstance(vkey, str):
            raise KeyFormatError("verifier key must be a string")
        name, key_id, key_data = _split_key_string(vkey, "verifier")
        if _key_hash(name, key_data) != key_id:
            raise KeyFormatError("verifier key ID does not match the key")
        raw = _ed25519_key_material(key_data, "verifier")
        return cls(name, Ed25519PublicKey.from_public_bytes(raw))

    @property
    def public_key_bytes(self) -> bytes:
        """Raw 32-byte Ed25519 public key."""
        return self._raw

    @property
    def verifier_key(self) -> str:
        """Text form to publish so that others can verify our notes."""
        encoded = _b64encode(bytes([ALG_ED25519]) + self._raw)
        return f"{self.name}+{self.key_hash:08x}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Check a raw Ed25519 signature (without the 4-byte key ID)."""
        if len(signature) != _ED25519_SIGNATURE_SIZE:
            return False
        try:
            self._public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"NoteVerifier({self.verifier_key!r})"


class NoteSigner:
    """A named Ed25519 signing key; ``repr`` never shows the secret."""

    __slots__ = ("_private_key", "_verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self._verifier = NoteVerifier(name, private_key.public_key())

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """Fresh random key, e.g. for tests or first-time log setup."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_signer_key(cls, skey: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+<name>+<hex8 key ID>+<base64(0x01 || seed)>``.

        The key ID is of the *public* key, so it can only be checked after
        deriving that key from the seed.
        """
        if not isinstance(skey, str) or not skey.startswith(_PRIVATE_KEY_PREFIX):
            raise KeyFormatError("malformed signer key: missing PRIVATE+KEY+ prefix")
        name, key_id, key_data = _split_key_string(skey[len(_PRIVATE_KEY_PREFIX) :], "signer")
        seed = _ed25519_key_material(key_data, "signer")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_hash != key_id:
            raise KeyFormatError("signer key ID does not match the key")
        return signer

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def key_hash(self) -> int:
        return self._verifier.key_hash

    @property
    def verifier_key(self) -> str:
        return self._verifier.verifier_key

    @property
    def signer_key(self) -> str:
        """Secret text form; store it like a password."""
        seed = self._private_key.private_bytes_raw()
        encoded = _b64encode(bytes([ALG_ED25519]) + seed)
        return f"{_PRIVATE_KEY_PREFIX}{self.name}+{self.key_hash:08x}+{encoded}"

    def verifier(self) -> NoteVerifier:
        """The matching public verifier."""
        return self._verifier

    def sign(self, message: bytes) -> bytes:
        """Raw 64-byte Ed25519 signature (deterministic per RFC 8032)."""
        return self._private_key.sign(message)

    def __repr__(self) -> str:
        return f"NoteSigner(name={self.name!r}, key_hash={self.key_hash:08x})"


# --------------------------------------------------------------------------
# Notes
# --------------------------------------------------------------------------


def _check_note_characters(text: str) -> None:
    """The spec forbids control characters other than newline, and non-UTF-8."""
    for char in text:
        if char < " " and char != "\n":
            raise MalformedNoteError(f"malformed note: control character U+{ord(char):04X}")
    if not _is_utf8(text):
        raise MalformedNoteError("malformed note: not valid UTF-8")


def _check_body(body: object) -> str:
    """Refuse to sign anything that could not be opened again."""
    if not isinstance(body, str) or not body.endswith("\n"):
        raise MalformedNoteError("malformed note: text must be a string ending in a newline")
    _check_note_characters(body)
    return body


def sign_note(body: str, *signers: NoteSigner) -> str:
    """Sign ``body`` with every signer and return the complete note text."""
    text = _check_body(body)
    if not signers:
        raise ValueError("sign_note needs at least one signer")
    message = text.encode("utf-8")
    lines = [_signature_line(signer, message) for signer in signers]
    return text + "\n" + "".join(lines)


def _signature_line(signer: NoteSigner, message: bytes) -> str:
    """``— <name> base64(key ID || signature)`` plus newline."""
    payload = signer.key_hash.to_bytes(_KEY_HASH_SIZE, "big") + signer.sign(message)
    return f"{_SIGNATURE_PREFIX}{signer.name} {_b64encode(payload)}\n"


@dataclass(frozen=True)
class _SignatureLine:
    name: str
    key_hash: int
    signature: bytes

    @property
    def key_label(self) -> str:
        return f"{self.name}+{self.key_hash:08x}"


def _split_note(note_text: str | bytes) -> tuple[str, list[str]]:
    """Separate text and signature lines at the *last* blank line."""
    if isinstance(note_text, bytes):
        try:
            note_text = note_text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNoteError("malformed note: not valid UTF-8") from exc
    if not isinstance(note_text, str):
        raise MalformedNoteError("malformed note: expected str or bytes")
    _check_note_characters(note_text)
    split = note_text.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("malformed note: no blank line before signatures")
    body, block = note_text[: split + 1], note_text[split + 2 :]
    if not block.endswith("\n"):
        raise MalformedNoteError("malformed note: signature block must end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    return body, lines


def _parse_signature_line(line: str) -> _SignatureLine:
    """Decode one signature line; the name/key-ID pair selects the verifier."""
    if not line.startswith(_SIGNATURE_PREFIX):
        raise MalformedNoteError(f"malformed note: bad signature line {line!r}")
    name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    if not _is_valid_name(name) or not encoded:
        raise MalformedNoteError(f"malformed note: bad signature line {line!r}")
    try:
        raw = _b64decode(encoded)
    except ValueError as exc:
        raise MalformedNoteError(f"malformed note: bad signature encoding for {name}") from exc
    if len(raw) <= _KEY_HASH_SIZE:
        raise MalformedNoteError(f"malformed note: signature for {name} is too short")
    key_hash = int.from_bytes(raw[:_KEY_HASH_SIZE], "big")
    return _SignatureLine(name, key_hash, raw[_KEY_HASH_SIZE:])


def _index_verifiers(
    verifiers: Iterable[NoteVerifier],
) -> dict[tuple[str, int], list[NoteVerifier]]:
    """Group trusted keys by (name, key ID), dropping exact duplicates."""
    index: dict[tuple[str, int], list[NoteVerifier]] = {}
    for verifier in verifiers:
        group = index.setdefault((verifier.name, verifier.key_hash), [])
        if all(known.public_key_bytes != verifier.public_key_bytes for known in group):
            group.append(verifier)
    return index


def open_note(note_text: str | bytes, verifiers: Iterable[NoteVerifier]) -> tuple[str, list[str]]:
    """Verify a note; return its text and the names of keys that signed it.

    Follows the spec: signatures from unknown keys are ignored, a failing
    signature from a trusted key rejects the whole note, and at least one
    trusted signature must verify.
    """
    body, lines = _split_note(note_text)
    signatures = [_parse_signature_line(line) for line in lines]
    trusted = _index_verifiers(verifiers)
    message = body.encode("utf-8")
    verified: list[str] = []
    seen: set[tuple[str, int]] = set()
    unknown: list[str] = []
    for signature in signatures:
        key = (signature.name, signature.key_hash)
        candidates = trusted.get(key)
        if candidates is None:
            unknown.append(signature.key_label)
            continue
        if key in seen:
            continue
        seen.add(key)
        _check_signature(signature, candidates, message)
        verified.append(signature.name)
    if not verified:
        raise UnverifiedNoteError(list(dict.fromkeys(unknown)))
    return body, verified


def _check_signature(
    signature: _SignatureLine, candidates: Sequence[NoteVerifier], message: bytes
) -> None:
    """Verify one signature from a trusted key or reject the note."""
    if len(candidates) > 1:
        raise AmbiguousKeyError(f"ambiguous key {signature.key_label}")
    if not candidates[0].verify(message, signature.signature):
        raise InvalidSignatureError(f"invalid signature for key {signature.key_label}")


# --------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The signed body of a log's tree head (c2sp.org/tlog-checkpoint)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_checkpoint_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise TypeError("checkpoint size must be an int")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise ValueError(f"checkpoint size must be in [0, 2**64), got {self.size}")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _ROOT_HASH_SIZE:
            raise ValueError(f"checkpoint root hash must be {_ROOT_HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise TypeError("checkpoint extensions must be a tuple of lines")
        for line in self.extensions:
            _check_checkpoint_line(line, "extension line")

    def to_body(self) -> str:
        """The exact note text to sign."""
        lines = [
            self.origin,
            str(self.size),
            _b64encode(self.root_hash),
            *self.extensions,
        ]
        return "\n".join(lines) + "\n"


def _check_checkpoint_line(line: object, what: str) -> None:
    """Lines must be non-empty and signable; newlines would shift the fields."""
    if not isinstance(line, str) or not line:
        raise ValueError(f"checkpoint {what} must be a non-empty string")
    if any(char < " " for char in line) or not _is_utf8(line):
        raise ValueError(f"checkpoint {what} contains a control character or invalid UTF-8")


def format_checkpoint(
    origin: str, size: int, root_hash: bytes, extensions: Sequence[str] = ()
) -> str:
    """Checkpoint note text: origin, decimal size, base64 root, extension lines."""
    return Checkpoint(origin, size, root_hash, tuple(extensions)).to_body()


def parse_checkpoint(body: str) -> Checkpoint:
    """Strictly parse a checkpoint body (the note text, without signatures).

    Non-canonical encodings (leading zeros, unpadded or non-canonical base64)
    are rejected so that each tree head has exactly one signed representation.
    """
    if not isinstance(body, str) or not body.endswith("\n"):
        raise ValueError("checkpoint must be a string ending in a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise ValueError("checkpoint needs origin, size and root hash lines")
    origin, size_text, root_text, *extensions = lines
    return Checkpoint(origin, _parse_size(size_text), _parse_root(root_text), tuple(extensions))


def _parse_size(text: str) -> int:
    """ASCII decimal without leading zeros, within uint64."""
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f"checkpoint size is not a canonical decimal: {text!r}")
    size = int(text)
    if size > _MAX_TREE_SIZE:
        raise ValueError("checkpoint size exceeds 2**64 - 1")
    return size


def _parse_root(text: str) -> bytes:
    """Canonical standard base64 of exactly 32 bytes."""
    try:
        root = _b64decode(text)
    except ValueError as exc:
        raise ValueError(f"checkpoint root hash is not valid base64: {text!r}") from exc
    if len(root) != _ROOT_HASH_SIZE or _b64encode(root) != text:
        raise ValueError("checkpoint root hash must be canonical base64 of 32 bytes")
    return root
