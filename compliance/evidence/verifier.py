"""Verify a SecMLOps evidence bundle offline: ``python3 verify.py [BUNDLE_DIR_OR_ZIP]``.

This file is copied into every bundle as ``verify.py``. It needs only Python 3.10+ and the
``cryptography`` package (version 40 or later) and trusts nothing but the bytes in the bundle,
so an auditor can read it in full and run it on an air-gapped machine. It checks:

1. ``manifest.json.dsse`` is a signature over ``manifest.json`` by a key in
   ``keys/registry-keys.json``, and ``manifest.json`` is well-formed canonical JSON;
2. every file the manifest lists has its size and sha256, and no file was added or removed;
3. every attestation verifies (DSSE with the registry's or a trusted signer's key, Sigstore
   bundles with the certificate's key and the certificate's issuer in the bundled trusted
   root) and states the predicate type and subjects ``attestations/index.json`` lists;
4. the log checkpoint is signed by ``keys/log-key.vkey``, every log entry's RFC 9162
   inclusion proof leads to the checkpoint's root, and the consistency proof links the
   previous bundle's checkpoint.

It exits 0 when everything holds, 1 when something does not (naming the first file that
failed and why), 2 when the bundle cannot be found. A forger would ship their own keys:
compare the registry key's id with the one the organisation publishes (``GET /api/v1/keys``).
The format is specified in the registry's ``docs/evidence.md``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import math
import os
import re
import stat
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

MANIFEST = "manifest.json"
MANIFEST_DSSE = "manifest.json.dsse"
MANIFEST_TSR = "manifest.json.tsr"
UNLISTED = frozenset({MANIFEST, MANIFEST_DSSE, MANIFEST_TSR})
MANIFEST_TYPE = "https://secmlops.dev/evidence/manifest/v1"
MANIFEST_PAYLOAD_TYPE = "application/vnd.secmlops.evidence-manifest+json"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"

REGISTRY_KEYS = "keys/registry-keys.json"
TRUSTED_SIGNERS = "keys/trusted-signers.json"
LOG_KEY = "keys/log-key.vkey"
SIGSTORE_ROOT = "keys/sigstore-trusted-root.json"
ATTESTATION_INDEX = "attestations/index.json"
CHECKPOINT = "log/checkpoint.txt"
ENTRIES = "log/entries.jsonl"
INCLUSION_PROOFS = "log/inclusion-proofs.jsonl"
CONSISTENCY_PROOF = "log/consistency-proof.json"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_READ_BYTES = 256 << 20  # files parsed in memory (JSON, envelopes); others are streamed
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_ATTESTATION_NAME = re.compile(r"attestations/([0-9a-f]{64})\.intoto\.jsonl")
_NOTE_SIGNATURE_PREFIX = "\u2014 "  # em dash, space (c2sp.org/signed-note)
_FULCIO_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_FULCIO_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


class Writer(Protocol):
    """Where lines go as they are found: ``sys.stdout`` or a Django command's stdout."""

    def write(self, text: str, /) -> Any: ...


@dataclass(frozen=True)
class Failure:
    """A check that did not hold: the file at fault and why."""

    file: str
    reason: str


@dataclass
class Report:
    """Every check's outcome, in order; lines are also written to ``out`` as they happen."""

    out: Writer | None = None
    lines: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    passed_checks: int = 0

    def ok(self, message: str) -> None:
        self.passed_checks += 1
        self._line(f"ok   {message}")

    def fail(self, file: str, reason: str) -> None:
        self.failures.append(Failure(file, reason))
        self._line(f"FAIL {file}: {reason}")

    def note(self, message: str) -> None:
        """Something the auditor should know that this script does not check."""
        self._line(f"note {message}")

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def first_failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    def summary(self) -> str:
        if self.first_failure is None:
            return f"VERIFIED: all {self.passed_checks} checks hold"
        first = self.first_failure
        return (
            f"NOT VERIFIED: {len(self.failures)} check(s) failed; "
            f"first: {first.file}: {first.reason}"
        )

    def _line(self, line: str) -> None:
        self.lines.append(line)
        if self.out is not None:
            self.out.write(line + "\n")


class CheckFailed(Exception):
    """Raised inside a check; the check reports it as a failure of ``file``."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


class UsageError(Exception):
    """The bundle to verify does not exist or is neither a directory nor a zip."""


# --------------------------------------------------------------------------
# Reading a bundle: an unpacked directory or a zip, read in place
# --------------------------------------------------------------------------


def is_safe_path(name: str) -> bool:
    """A relative POSIX path that stays inside the bundle."""
    if not name or name.startswith("/") or "\\" in name or ":" in name or "\x00" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


class Bundle:
    """The files of a bundle by relative POSIX path; directories are not files."""

    duplicates: tuple[str, ...] = ()  # only a zip can hold a name twice

    def __init__(self, names: list[str]) -> None:
        self._names = sorted(names)
        self._name_set = set(names)

    def names(self) -> list[str]:
        return self._names

    def exists(self, name: str) -> bool:
        return name in self._name_set

    def size(self, name: str) -> int:
        raise NotImplementedError

    def _open(self, name: str) -> IO[bytes]:
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        """The file's bytes; a missing or unsafe file fails the check that needed it."""
        if not is_safe_path(name):
            raise CheckFailed(name, "path escapes the bundle")
        if not self.exists(name):
            raise CheckFailed(name, "missing from the bundle")
        if self.size(name) > MAX_READ_BYTES:
            raise CheckFailed(name, f"larger than {MAX_READ_BYTES} bytes")
        with self._open(name) as stream:
            return stream.read()

    def sha256(self, name: str) -> str:
        """Hex SHA-256 of a file, read in chunks (reports can be large)."""
        digest = hashlib.sha256()
        with self._open(name) as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def close(self) -> None:
        """Release the zip file, if any."""


class DirectoryBundle(Bundle):
    """An unpacked bundle. Symbolic links are listed (so they fail) but never followed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        super().__init__(self._walk())

    def _walk(self) -> list[str]:
        found = []
        for directory, dirnames, filenames in os.walk(self.root):
            for name in filenames + dirnames:
                path = Path(directory, name)
                if name in filenames or path.is_symlink():
                    found.append(path.relative_to(self.root).as_posix())
        return found

    def size(self, name: str) -> int:
        return self._regular_file(name).st_size

    def _regular_file(self, name: str) -> os.stat_result:
        status = (self.root / name).lstat()
        if not stat.S_ISREG(status.st_mode):
            raise CheckFailed(name, "not a regular file (a symbolic link?)")
        return status

    def _open(self, name: str) -> IO[bytes]:
        self._regular_file(name)
        return (self.root / name).open("rb")


class ZipBundle(Bundle):
    """A bundle zip, read member by member without extracting anything to disk."""

    def __init__(self, path: Path) -> None:
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise CheckFailed(path.name, f"not a readable zip: {exc}") from exc
        members = [info for info in self._zip.infolist() if not info.is_dir()]
        self._members = {info.filename: info for info in members}
        counts = Counter(info.filename for info in members)
        self.duplicates = tuple(sorted(name for name, count in counts.items() if count > 1))
        super().__init__(list(self._members))

    def size(self, name: str) -> int:
        return self._members[name].file_size

    def _open(self, name: str) -> IO[bytes]:
        # zipfile stops at the declared size and checks the CRC at the end of the member.
        return self._zip.open(self._members[name])

    def read(self, name: str) -> bytes:
        try:
            return super().read(name)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise CheckFailed(name, f"cannot be read from the zip: {exc}") from exc

    def sha256(self, name: str) -> str:
        try:
            return super().sha256(name)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise CheckFailed(name, f"cannot be read from the zip: {exc}") from exc

    def close(self) -> None:
        self._zip.close()


def open_bundle(source: Path) -> Bundle:
    """A directory or a .zip; anything else is a usage error."""
    if source.is_dir():
        return DirectoryBundle(source)
    if source.is_file():
        return ZipBundle(source)
    raise UsageError(f"no evidence bundle at {source} (expected a directory or a .zip)")


# --------------------------------------------------------------------------
# Small helpers: strict JSON, canonical JSON, base64, DER
# --------------------------------------------------------------------------


def parse_json(data: bytes, file: str) -> Any:
    """UTF-8 JSON without duplicate keys or NaN/Infinity, as RFC 8785 requires."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key in a JSON object")
        return dict(pairs)

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(
            data.decode("utf-8"), object_pairs_hook=no_duplicates, parse_constant=no_constant
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckFailed(file, f"not valid JSON: {exc}") from exc


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) serialisation: sorted keys (by UTF-16 code units), no whitespace,
    ECMAScript number formatting. Used only to check that ``manifest.json`` is canonical."""
    return _canonical_text(value).encode("utf-8")


def _canonical_text(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _ecmascript_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_canonical_text(item) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda item: item[0].encode("utf-16-be"))
        return "{" + ",".join(f"{_canonical_text(k)}:{_canonical_text(v)}" for k, v in items) + "}"
    raise ValueError(f"{type(value).__name__} is not JSON")


def _ecmascript_number(number: float) -> str:
    """ECMAScript's Number.prototype.toString, from Python's shortest round-trip digits."""
    if not math.isfinite(number):
        raise ValueError("NaN and Infinity are not JSON")
    if number == 0:
        return "0"
    sign, number = ("-", -number) if number < 0 else ("", number)
    mantissa, _, exponent = repr(number).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    leading_zeros = len(all_digits) - len(all_digits.lstrip("0"))
    digits = all_digits.strip("0")
    point = len(whole) - leading_zeros + int(exponent or 0)  # value = 0.<digits> * 10**point
    count = len(digits)
    if count <= point <= 21:
        text = digits + "0" * (point - count)
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        power = point - 1
        text = digits[0] + ("." + digits[1:] if count > 1 else "")
        text += "e" + ("+" if power > 0 else "-") + str(abs(power))
    return sign + text


def b64decode(text: object, what: str, file: str) -> bytes:
    """Canonical base64 (standard or URL-safe, padded or not): one encoding per byte string,
    so that no byte of a signed file can change without changing what it decodes to."""
    if not isinstance(text, str):
        raise CheckFailed(file, f"{what} is not a base64 string")
    urlsafe = "-" in text or "_" in text
    padded = text.endswith("=")
    try:
        raw = text.encode("ascii")
        if urlsafe:
            raw = raw.replace(b"-", b"+").replace(b"_", b"/")
        data = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise CheckFailed(file, f"{what} is not valid base64") from exc
    again = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode("ascii")
    if (again if padded else again.rstrip("=")) != text:
        raise CheckFailed(file, f"{what} is not canonical base64")
    return data


def der_elements(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) pairs of consecutive DER elements (low tag numbers only)."""
    elements = []
    offset = 0
    while offset < len(data):
        tag, length = data[offset], data[offset + 1]
        offset += 2
        if length & 0x80:
            count = length & 0x7F
            if not 0 < count <= 4:
                raise ValueError("unsupported DER length")
            length = int.from_bytes(data[offset : offset + count], "big")
            offset += count
        if offset + length > len(data):
            raise ValueError("truncated DER")
        elements.append((tag, data[offset : offset + length]))
        offset += length
    return elements


# --------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "nistp256": hashes.SHA256,
    "nistp384": hashes.SHA384,
    "nistp521": hashes.SHA512,
}


@dataclass(frozen=True)
class PublicKey:
    """A verification key from ``keys/``: its id, securesystemslib scheme and key."""

    keyid: str
    scheme: str
    key: PublicKeyTypes
    pem: bytes
    name: str = ""
    retired: bool = False

    @property
    def pem_sha256(self) -> str:
        """What model_signing puts in a bundle's ``publicKey.hint``."""
        return hashlib.sha256(self.pem).hexdigest()

    def verifies(self, signature: bytes, message: bytes) -> bool:
        """Does ``signature`` over ``message`` verify under this key and scheme?"""
        try:
            _verify_with_scheme(self.key, self.scheme, signature, message)
        except (InvalidSignature, ValueError, KeyError, UnsupportedAlgorithm):
            return False  # a KeyError is a scheme naming a hash we do not know
        return True


def _verify_with_scheme(key: PublicKeyTypes, scheme: str, signature: bytes, msg: bytes) -> None:
    """securesystemslib's schemes: ed25519, ecdsa-sha2-nistpNNN, rsassa-pss-*, rsa-pkcs1v15-*."""
    hash_name = scheme.rsplit("-", 1)[-1]
    if scheme == "ed25519" and isinstance(key, Ed25519PublicKey):
        key.verify(signature, msg)
    elif scheme.startswith("ecdsa-sha2-") and isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, msg, ec.ECDSA(_HASHES[hash_name]()))
    elif scheme.startswith("rsassa-pss-") and isinstance(key, rsa.RSAPublicKey):
        algorithm = _HASHES[hash_name]()
        pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO)
        key.verify(signature, msg, pss, algorithm)
    elif scheme.startswith("rsa-pkcs1v15-") and isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, msg, padding.PKCS1v15(), _HASHES[hash_name]())
    else:
        raise ValueError(f"scheme {scheme} does not fit a {type(key).__name__}")


def securesystemslib_keyid(key: PublicKeyTypes, scheme: str) -> str:
    """securesystemslib's default key id: SHA-256 of the OLPC canonical JSON of keytype,
    scheme and public key value (Ed25519 as hex, others as PEM). The registry names its keys
    this way, so a key id printed here can be compared with the one it publishes."""
    if isinstance(key, Ed25519PublicKey):
        keytype, public = "ed25519", key.public_bytes_raw().hex()
    else:
        keytype = "ecdsa" if isinstance(key, ec.EllipticCurvePublicKey) else "rsa"
        public = _pem(key).decode("ascii")
    # OLPC canonical JSON escapes only backslash and quote, so the PEM's newlines stay raw.
    canonical = f'{{"keytype":"{keytype}","keyval":{{"public":"{public}"}},"scheme":"{scheme}"}}'
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _pem(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _load_pem_key(entry: dict[str, Any], file: str) -> PublicKey:
    keyid, scheme, pem = entry.get("keyid"), entry.get("scheme"), entry.get("public_pem")
    if not (isinstance(keyid, str) and isinstance(scheme, str) and isinstance(pem, str)):
        raise CheckFailed(file, f"key {keyid!r} needs a keyid, a scheme and a public_pem")
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise CheckFailed(file, f"key {keyid} is not a PEM public key: {exc}") from exc
    name = entry.get("name")
    name = name if isinstance(name, str) else ""
    return PublicKey(keyid, scheme, key, _pem(key), name, retired=entry.get("retired") is True)


def _json_list(bundle: Bundle, file: str) -> list[dict[str, Any]]:
    rows = parse_json(bundle.read(file), file)
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise CheckFailed(file, "is not a JSON list of objects")
    return rows


def registry_keys(bundle: Bundle) -> list[PublicKey]:
    """``keys/registry-keys.json``; each key id must be the key's securesystemslib key id."""
    keys = [_load_pem_key(entry, REGISTRY_KEYS) for entry in _json_list(bundle, REGISTRY_KEYS)]
    for key in keys:
        if securesystemslib_keyid(key.key, key.scheme) != key.keyid:
            raise CheckFailed(REGISTRY_KEYS, f"key id {key.keyid} is not the id of its key")
    return keys


def trusted_signers(bundle: Bundle) -> list[dict[str, Any]]:
    """``keys/trusted-signers.json``, as listed; an absent file lists nobody."""
    return _json_list(bundle, TRUSTED_SIGNERS) if bundle.exists(TRUSTED_SIGNERS) else []


def trusted_signer_keys(bundle: Bundle) -> list[PublicKey]:
    return [
        _load_pem_key(entry, TRUSTED_SIGNERS)
        for entry in trusted_signers(bundle)
        if entry.get("kind") == "key"
    ]


# --------------------------------------------------------------------------
# DSSE
# --------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what a DSSE signature actually signs."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class VerifiedEnvelope:
    payload_type: str
    payload: bytes
    key: PublicKey


def verify_dsse(envelope: Any, keys: list[PublicKey], file: str) -> VerifiedEnvelope:
    """At least one signature must verify with one of ``keys``. A signature naming one of
    ``keys`` by keyid must verify with it (a forgery under a trusted name fails the whole
    envelope); one with no keyid is tried against every key; other keyids are ignored."""
    if not isinstance(envelope, dict):
        raise CheckFailed(file, "DSSE envelope is not a JSON object")
    payload_type = envelope.get("payloadType")
    signatures = envelope.get("signatures")
    if not isinstance(payload_type, str) or not isinstance(signatures, list) or not signatures:
        raise CheckFailed(file, "DSSE envelope needs a payloadType and signatures")
    payload = b64decode(envelope.get("payload"), "DSSE payload", file)
    message = pae(payload_type, payload)
    verified: PublicKey | None = None
    for number, signature in enumerate(signatures):
        if not isinstance(signature, dict):
            raise CheckFailed(file, f"DSSE signature {number} is not an object")
        sig = b64decode(signature.get("sig"), f"DSSE signature {number}", file)
        keyid = signature.get("keyid") or ""
        named = [key for key in keys if keyid and key.keyid == keyid]
        if named and not named[0].verifies(sig, message):
            raise CheckFailed(file, f"signature by key {keyid} does not verify")
        candidates = named or ([] if keyid else keys)
        verified = verified or next((k for k in candidates if k.verifies(sig, message)), None)
    if verified is None:
        listed = ", ".join(key.keyid for key in keys) or "none"
        raise CheckFailed(file, f"no signature verifies with a trusted key (trusted: {listed})")
    return VerifiedEnvelope(payload_type, payload, verified)


# --------------------------------------------------------------------------
# 1. The manifest and its signature
# --------------------------------------------------------------------------


def check_manifest_signature(bundle: Bundle, report: Report) -> None:
    """``manifest.json.dsse`` verifies with a registry key; its payload is ``manifest.json``."""
    try:
        envelope = parse_json(bundle.read(MANIFEST_DSSE), MANIFEST_DSSE)
        verified = verify_dsse(envelope, registry_keys(bundle), MANIFEST_DSSE)
        if verified.payload_type != MANIFEST_PAYLOAD_TYPE:
            raise CheckFailed(MANIFEST_DSSE, f"payload type is {verified.payload_type!r}")
        if verified.payload != bundle.read(MANIFEST):
            raise CheckFailed(MANIFEST, f"is not the payload signed in {MANIFEST_DSSE}")
    except CheckFailed as failure:
        report.fail(failure.file, failure.reason)
        return
    retired = " (a retired key)" if verified.key.retired else ""
    report.ok(f"manifest signature by key {verified.key.keyid}{retired}")


def check_manifest_format(bundle: Bundle, report: Report) -> dict[str, Any] | None:
    """``manifest.json`` parses, has the right type, is canonical and lists files in order.

    Returns the manifest, or None when its file list cannot be used."""
    try:
        manifest = parse_json(bundle.read(MANIFEST), MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("_type") != MANIFEST_TYPE:
            raise CheckFailed(MANIFEST, f"is not a {MANIFEST_TYPE} manifest")
        _check_file_list(manifest.get("files"))
        if canonical_json(manifest) != bundle.read(MANIFEST):
            raise CheckFailed(MANIFEST, "is not RFC 8785 canonical JSON")
    except (CheckFailed, ValueError, UnicodeEncodeError) as failure:
        reason = failure.reason if isinstance(failure, CheckFailed) else str(failure)
        report.fail(MANIFEST, reason)
        return None
    report.ok(f"{MANIFEST} is canonical JSON listing {len(manifest['files'])} files")
    return manifest


def _check_file_list(files: Any) -> None:
    if not isinstance(files, list):
        raise CheckFailed(MANIFEST, "has no file list")
    for entry in files:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or not is_safe_path(path):
            raise CheckFailed(MANIFEST, f"lists an unsafe or missing path {path!r}")
        size, digest = entry.get("size"), entry.get("sha256")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise CheckFailed(MANIFEST, f"{path} has no valid size")
        if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
            raise CheckFailed(MANIFEST, f"{path} has no valid sha256")
        if not isinstance(entry.get("mediaType"), str):
            raise CheckFailed(MANIFEST, f"{path} has no mediaType")
    paths = [entry["path"] for entry in files]
    if any(earlier >= later for earlier, later in itertools.pairwise(paths)):
        raise CheckFailed(MANIFEST, "files are not sorted by path without duplicates")


# --------------------------------------------------------------------------
# 2. Every file, and nothing else
# --------------------------------------------------------------------------


def check_files(bundle: Bundle, manifest: dict[str, Any], report: Report) -> None:
    """Each listed file has its size and sha256; no file is missing or added."""
    listed = {entry["path"]: entry for entry in manifest["files"]}
    failures_before = len(report.failures)
    for name in bundle.duplicates:
        report.fail(name, "is in the zip more than once")
    for name in bundle.names():
        if not is_safe_path(name):
            report.fail(name, "path escapes the bundle")
        elif name not in listed and name not in UNLISTED:
            report.fail(name, "is in the bundle but not in the manifest (added)")
    for path, entry in listed.items():
        _check_listed_file(bundle, path, entry, report)
    if len(report.failures) == failures_before:
        report.ok(f"all {len(listed)} listed files have their size and sha256; none added")


def _check_listed_file(bundle: Bundle, path: str, entry: dict[str, Any], report: Report) -> None:
    if not bundle.exists(path):
        report.fail(path, "is in the manifest but not in the bundle (removed)")
        return
    try:
        if bundle.size(path) != entry["size"]:
            raise CheckFailed(
                path, f"is {bundle.size(path)} bytes, the manifest says {entry['size']}"
            )
        if bundle.sha256(path) != entry["sha256"]:
            raise CheckFailed(path, "sha256 differs from the manifest")
    except CheckFailed as failure:
        report.fail(failure.file, failure.reason)


# --------------------------------------------------------------------------
# RFC 3161 timestamp
# --------------------------------------------------------------------------

_OID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")
_OID_TST_INFO = bytes.fromhex("2a864886f70d0109100104")
_HASH_OIDS = {
    bytes.fromhex("608648016503040201"): "sha256",
    bytes.fromhex("608648016503040202"): "sha384",
    bytes.fromhex("608648016503040203"): "sha512",
}


def check_timestamp(bundle: Bundle, report: Report) -> None:
    """When ``manifest.json.tsr`` is present, its message imprint must be ``manifest.json``'s
    hash. The TSA's own signature needs the TSA's certificate, which is not in the bundle."""
    if not bundle.exists(MANIFEST_TSR):
        return
    try:
        algorithm, imprint, gen_time = timestamp_imprint(bundle.read(MANIFEST_TSR))
        if hashlib.new(algorithm, bundle.read(MANIFEST)).digest() != imprint:
            raise CheckFailed(
                MANIFEST_TSR, f"timestamps a different {algorithm} than manifest.json"
            )
    except CheckFailed as failure:
        report.fail(failure.file, failure.reason)
        return
    when = f"{gen_time[0:4]}-{gen_time[4:6]}-{gen_time[6:8]}T{gen_time[8:10]}:{gen_time[10:12]}:"
    when += gen_time[12:]
    report.ok(f"{MANIFEST_TSR}: RFC 3161 token over manifest.json ({algorithm}) at {when}")
    report.note(
        f"the TSA's signature on {MANIFEST_TSR} is not checked here: use "
        "`openssl ts -verify -in manifest.json.tsr -data manifest.json -CAfile <TSA chain>`"
    )


def timestamp_imprint(tsr: bytes) -> tuple[str, bytes, str]:
    """Hash algorithm, hashed message and genTime of a TimeStampResp or bare token (RFC 3161
    §2.4.2): just enough DER walking to reach TSTInfo.messageImprint."""
    try:
        (tag, outer), *_ = der_elements(tsr)
        parts = der_elements(outer) if tag == 0x30 else []
        if parts[0][0] == 0x30:  # TimeStampResp: PKIStatusInfo, then the token
            status = int.from_bytes(der_elements(parts[0][1])[0][1], "big")
            if status not in (0, 1) or len(parts) < 2:
                raise CheckFailed(MANIFEST_TSR, f"the TSA did not grant a token (status {status})")
            parts = der_elements(parts[1][1])
        if parts[0][1] != _OID_SIGNED_DATA:
            raise ValueError("token is not CMS SignedData")
        signed_data = der_elements(der_elements(parts[1][1])[0][1])
        content_type, wrapped = der_elements(signed_data[2][1])[:2]
        if content_type[1] != _OID_TST_INFO:
            raise ValueError("token does not hold a TSTInfo")
        tst_info = der_elements(der_elements(der_elements(wrapped[1])[0][1])[0][1])
        algorithm_id, hashed = der_elements(tst_info[2][1])[:2]
        algorithm = _HASH_OIDS[der_elements(algorithm_id[1])[0][1]]
        return algorithm, hashed[1], tst_info[4][1].decode("ascii")
    except (ValueError, IndexError, KeyError, UnicodeDecodeError) as exc:
        raise CheckFailed(MANIFEST_TSR, f"not an RFC 3161 token we can read: {exc!r}") from exc


# --------------------------------------------------------------------------
# 3. Attestations
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class AttestationRow:
    """One row of ``attestations/index.json``."""

    file: str
    envelope_sha256: str
    format: str
    predicate_type: str
    subjects: list[tuple[str, str]]
    signer_kind: str
    signer_keyid: str
    signer_name: str
    status: str

    @classmethod
    def parse(cls, row: dict[str, Any]) -> AttestationRow:
        file = row.get("file")
        if not isinstance(file, str):
            raise CheckFailed(ATTESTATION_INDEX, f"row without a file: {row!r}")
        path = file if "/" in file else f"attestations/{file}"
        signer = row.get("signer")
        signer = signer if isinstance(signer, dict) else {}
        try:
            subjects = sorted(_subject_key(subject) for subject in row["subjects"])
            return cls(
                file=path,
                envelope_sha256=str(row["envelope_sha256"]),
                format=str(row["format"]),
                predicate_type=str(row["predicate_type"]),
                subjects=subjects,
                signer_kind=str(signer.get("kind") or ""),
                signer_keyid=str(signer.get("keyid") or ""),
                signer_name=str(signer.get("name") or ""),
                status=str(row.get("verification_status") or ""),
            )
        except (KeyError, TypeError) as exc:
            raise CheckFailed(ATTESTATION_INDEX, f"row for {file} is incomplete: {exc!r}") from exc


def check_attestations(bundle: Bundle, report: Report) -> None:
    """Each indexed attestation verifies and says what the index says; none is unindexed."""
    files = [name for name in bundle.names() if name.startswith("attestations/")]
    if not files:
        report.ok("attestations: none in this bundle")
        return
    try:
        rows = [AttestationRow.parse(row) for row in _json_list(bundle, ATTESTATION_INDEX)]
    except CheckFailed as failure:
        report.fail(failure.file, failure.reason)
        return
    indexed = [row.file for row in rows]
    for name in files:
        if name != ATTESTATION_INDEX and name not in indexed:
            report.fail(name, f"is not listed in {ATTESTATION_INDEX}")
    for name in sorted({name for name in indexed if indexed.count(name) > 1}):
        report.fail(ATTESTATION_INDEX, f"lists {name} more than once")
    for row in rows:
        try:
            report.ok(check_attestation(bundle, row))
        except CheckFailed as failure:
            report.fail(failure.file, failure.reason)
    if any(row.format == "sigstore" for row in rows):
        report.note(
            "Sigstore bundles: their Rekor log inclusion, and so the signing time within the "
            "certificate's validity, is not checked offline by this script"
        )


def check_attestation(bundle: Bundle, row: AttestationRow) -> str:
    """Verify one attestation against its index row; returns the line to print."""
    match = _ATTESTATION_NAME.fullmatch(row.file)
    if match is None or match.group(1) != row.envelope_sha256:
        raise CheckFailed(row.file, "file name is not attestations/<envelope_sha256>.intoto.jsonl")
    content = bundle.read(row.file)
    if b"\n" in content.rstrip(b"\n"):
        raise CheckFailed(row.file, "holds more than one line")
    document = parse_json(content, row.file)
    if row.format == "dsse" and row.signer_kind in ("registry", "key"):
        verified, signed_by = _verify_key_signed(bundle, row, document)
    elif row.format == "model_sig" and row.signer_kind in ("registry", "key"):
        verified, signed_by = _verify_model_sig(bundle, row, document)
    elif row.format == "sigstore" and row.signer_kind == "sigstore":
        verified, signed_by = _verify_sigstore(bundle, row, document)
    else:
        raise CheckFailed(row.file, f"format {row.format!r} signed by {row.signer_kind!r}?")
    _check_statement(verified, row)
    status = f" (registry status: {row.status})" if row.status not in ("", "verified") else ""
    count = len(row.subjects)
    return f"{row.file}: {row.format} {row.predicate_type}, {count} subject(s), {signed_by}{status}"


def _signer_keys(bundle: Bundle, row: AttestationRow) -> list[PublicKey]:
    """The keys that may have signed ``row``: the one its signer keyid names, if any."""
    keys = registry_keys(bundle) if row.signer_kind == "registry" else trusted_signer_keys(bundle)
    if not row.signer_keyid:
        return keys
    named = [key for key in keys if key.keyid == row.signer_keyid]
    if not named:
        source = REGISTRY_KEYS if row.signer_kind == "registry" else TRUSTED_SIGNERS
        raise CheckFailed(row.file, f"signer key {row.signer_keyid} is not in {source}")
    return named


def _signed_by(key: PublicKey, kind: str) -> str:
    owner = "registry" if kind == "registry" else "trusted-signer"
    return f"signed by {owner} key {key.keyid}" + (f" ({key.name})" if key.name else "")


def _verify_key_signed(
    bundle: Bundle, row: AttestationRow, envelope: Any
) -> tuple[VerifiedEnvelope, str]:
    verified = verify_dsse(envelope, _signer_keys(bundle, row), row.file)
    return verified, _signed_by(verified.key, row.signer_kind)


def _verify_model_sig(
    bundle: Bundle, row: AttestationRow, document: Any
) -> tuple[VerifiedEnvelope, str]:
    verified = verify_key_bundle(document, _signer_keys(bundle, row), row.file)
    return verified, _signed_by(verified.key, row.signer_kind)


def verify_key_bundle(document: Any, keys: list[PublicKey], file: str) -> VerifiedEnvelope:
    """A key-signed Sigstore bundle (model_signing's ``model.sig``): its public-key hint is
    the sha256 of the key's PEM (or a key id); the hint only narrows which keys are tried."""
    material = document.get("verificationMaterial") if isinstance(document, dict) else None
    if not isinstance(material, dict) or not isinstance(material.get("publicKey"), dict):
        raise CheckFailed(file, "is not a key-signed Sigstore bundle")
    hint = material["publicKey"].get("hint")
    hinted = [key for key in keys if hint in (key.keyid, key.pem_sha256)]
    return verify_dsse(document.get("dsseEnvelope"), hinted or keys, file)


def statement_of(verified: VerifiedEnvelope, file: str) -> tuple[str, list[tuple[str, str]]]:
    """Predicate type and sorted (name, sha256) subjects of a signed in-toto Statement v1."""
    if verified.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise CheckFailed(file, f"payload type is {verified.payload_type!r}")
    statement = parse_json(verified.payload, file)
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise CheckFailed(file, "payload is not an in-toto Statement v1")
    try:
        subjects = sorted(_subject_key(subject) for subject in statement["subject"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise CheckFailed(file, "statement subjects are malformed") from exc
    return str(statement.get("predicateType")), subjects


def _subject_key(subject: dict[str, Any]) -> tuple[str, str]:
    """(name, sha256) of an in-toto subject; the name is optional in Statement v1."""
    return str(subject.get("name", "")), str(subject["digest"]["sha256"])


def _check_statement(verified: VerifiedEnvelope, row: AttestationRow) -> None:
    predicate_type, subjects = statement_of(verified, row.file)
    if predicate_type != row.predicate_type:
        raise CheckFailed(
            row.file, f"predicate type is {predicate_type!r}, the index says {row.predicate_type!r}"
        )
    if subjects != row.subjects:
        raise CheckFailed(row.file, f"subjects differ from {ATTESTATION_INDEX}")


def check_model_signatures(bundle: Bundle, report: Report) -> None:
    """Each ``model/<model>/<version>/model.sig`` is signed by a registry key."""
    for name in bundle.names():
        if not (name.startswith("model/") and name.endswith("/model.sig")):
            continue
        try:
            document = parse_json(bundle.read(name), name)
            verified = verify_key_bundle(document, registry_keys(bundle), name)
            _, subjects = statement_of(verified, name)
        except CheckFailed as failure:
            report.fail(failure.file, failure.reason)
            continue
        models = ", ".join(f"{subject} (sha256 {digest})" for subject, digest in subjects)
        report.ok(f"{name}: model_signing signature of {models} by key {verified.key.keyid}")


# Sigstore (keyless) bundles -----------------------------------------------


def _verify_sigstore(
    bundle: Bundle, row: AttestationRow, document: Any
) -> tuple[VerifiedEnvelope, str]:
    """The DSSE signature verifies with the leaf certificate's key, the certificate was
    issued by a CA of the bundled trusted root, and it names the trusted signer's identity."""
    material = document.get("verificationMaterial") if isinstance(document, dict) else None
    leaf = _leaf_certificate(material, row.file)
    issuer = _trusted_issuer(bundle, leaf, row.file)
    identity = _check_identity(bundle, leaf, row)
    leaf_key = PublicKey("", _certificate_scheme(leaf, row.file), leaf.public_key(), b"")
    verified = verify_dsse(document.get("dsseEnvelope"), [leaf_key], row.file)
    issuer_name = issuer.subject.rfc4514_string()
    return verified, f"signed by {identity}, certificate issued by {issuer_name}"


def _leaf_certificate(material: Any, file: str) -> x509.Certificate:
    """The signing certificate: v0.3 ``certificate`` or the first of ``x509CertificateChain``."""
    try:
        if "certificate" in material:
            raw = material["certificate"]["rawBytes"]
        else:
            raw = material["x509CertificateChain"]["certificates"][0]["rawBytes"]
    except (KeyError, TypeError, IndexError) as exc:
        raise CheckFailed(file, "Sigstore bundle holds no signing certificate") from exc
    try:
        return x509.load_der_x509_certificate(b64decode(raw, "certificate", file))
    except ValueError as exc:
        raise CheckFailed(file, f"certificate is not DER X.509: {exc}") from exc


def _trusted_issuer(bundle: Bundle, leaf: x509.Certificate, file: str) -> x509.Certificate:
    for ca in sigstore_certificate_authorities(bundle):
        try:
            leaf.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        return ca
    raise CheckFailed(file, f"certificate was not issued by a CA in {SIGSTORE_ROOT}")


def sigstore_certificate_authorities(bundle: Bundle) -> list[x509.Certificate]:
    """Every certificate of every CA chain in ``keys/sigstore-trusted-root.json``."""
    root = parse_json(bundle.read(SIGSTORE_ROOT), SIGSTORE_ROOT)
    certificates = []
    try:
        for authority in root["certificateAuthorities"]:
            for certificate in authority["certChain"]["certificates"]:
                der = b64decode(certificate["rawBytes"], "CA certificate", SIGSTORE_ROOT)
                certificates.append(x509.load_der_x509_certificate(der))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckFailed(SIGSTORE_ROOT, f"is not a Sigstore trusted root: {exc!r}") from exc
    return certificates


def _check_identity(bundle: Bundle, leaf: x509.Certificate, row: AttestationRow) -> str:
    """The trusted signer the index names: its identity must be in the certificate's SAN
    and its OIDC issuer in Fulcio's issuer extension."""
    signers = [s for s in trusted_signers(bundle) if s.get("name") == row.signer_name]
    if not signers or signers[0].get("kind") != "sigstore":
        raise CheckFailed(
            row.file, f"Sigstore signer {row.signer_name!r} is not in {TRUSTED_SIGNERS}"
        )
    identity, issuer = signers[0].get("identity"), signers[0].get("issuer")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.UniformResourceIdentifier)
        names += san.get_values_for_type(x509.RFC822Name)
    except (x509.ExtensionNotFound, ValueError):
        names = []
    if identity not in names:
        raise CheckFailed(row.file, f"certificate is not for {identity!r} (it names {names})")
    if _fulcio_issuer(leaf) != issuer:
        raise CheckFailed(row.file, f"certificate's OIDC issuer is not {issuer!r}")
    return f"{identity} ({issuer})"


def _fulcio_issuer(leaf: x509.Certificate) -> str | None:
    for oid, is_der in ((_FULCIO_ISSUER_V2, True), (_FULCIO_ISSUER_V1, False)):
        try:
            value = leaf.extensions.get_extension_for_oid(oid).value
        except (x509.ExtensionNotFound, ValueError):
            continue
        raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
        try:
            return (der_elements(raw)[0][1] if is_der else raw).decode("utf-8")
        except (ValueError, IndexError, UnicodeDecodeError):
            return None
    return None


def _certificate_scheme(leaf: x509.Certificate, file: str) -> str:
    key = leaf.public_key()
    if isinstance(key, Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ("secp256r1", "secp384r1"):
        return "ecdsa-sha2-nistp" + key.curve.name[4:7]
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa-pkcs1v15-sha256"
    raise CheckFailed(file, f"certificate key type {type(key).__name__} is not supported")


# --------------------------------------------------------------------------
# 4. The log: checkpoint, inclusion and consistency (RFC 9162, C2SP signed notes)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LogKey:
    """A C2SP note verifier key: ``<name>+<hex key hash>+<base64(0x01 || Ed25519 key)>``."""

    name: str
    key_hash: bytes
    key: Ed25519PublicKey

    @classmethod
    def parse(cls, text: str) -> LogKey:
        name, _, rest = text.strip().partition("+")
        hash_hex, _, encoded = rest.partition("+")
        key_data = b64decode(encoded, "log key", LOG_KEY)
        key_hash = hashlib.sha256(name.encode("utf-8") + b"\n" + key_data).digest()[:4]
        if not re.fullmatch(r"[0-9a-f]{8}", hash_hex) or key_hash.hex() != hash_hex:
            raise CheckFailed(LOG_KEY, "key hash does not match the key")
        if len(key_data) != 33 or key_data[0] != 0x01:
            raise CheckFailed(LOG_KEY, "is not an Ed25519 note verifier key")
        return cls(name, key_hash, Ed25519PublicKey.from_public_bytes(key_data[1:]))


@dataclass(frozen=True)
class Checkpoint:
    """A verified tree head: the log's origin, its size and the root hash of that tree."""

    origin: str
    size: int
    root: bytes


def open_checkpoint(note: bytes, log_key: LogKey, file: str) -> Checkpoint:
    """Verify a signed note (c2sp.org/signed-note) with the log key and parse its checkpoint
    (c2sp.org/tlog-checkpoint). Signatures by other keys (witnesses) are ignored."""
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckFailed(file, "signed note is not UTF-8") from exc
    split = text.rfind("\n\n")
    if split < 0 or not text.endswith("\n"):
        raise CheckFailed(file, "is not a signed note")
    body, signature_lines = text[: split + 1], text[split + 2 : -1].split("\n")
    signatures = [_note_signature(line, log_key, file) for line in signature_lines]
    ours = [signature for signature in signatures if signature is not None]
    if not ours:
        raise CheckFailed(file, f"has no signature by the log key {log_key.name}")
    try:
        for signature in ours:
            log_key.key.verify(signature, body.encode("utf-8"))
    except InvalidSignature as exc:
        raise CheckFailed(file, f"signature by the log key {log_key.name} does not verify") from exc
    return _parse_checkpoint(body, file)


def _note_signature(line: str, log_key: LogKey, file: str) -> bytes | None:
    """The signature bytes of ``— <name> <base64(key hash || signature)>`` if it is the
    log key's, else None."""
    name, _, encoded = line.removeprefix(_NOTE_SIGNATURE_PREFIX).partition(" ")
    if not line.startswith(_NOTE_SIGNATURE_PREFIX) or not encoded:
        raise CheckFailed(file, f"bad signature line {line!r}")
    raw = b64decode(encoded, "note signature", file)
    if name != log_key.name or raw[:4] != log_key.key_hash:
        return None
    return raw[4:]


def _parse_checkpoint(body: str, file: str) -> Checkpoint:
    lines = body[:-1].split("\n")
    if len(lines) < 3 or not re.fullmatch(r"0|[1-9][0-9]*", lines[1]):
        raise CheckFailed(file, "is not a checkpoint (origin, tree size, root hash)")
    root = b64decode(lines[2], "root hash", file)
    if len(root) != 32:
        raise CheckFailed(file, "root hash is not 32 bytes")
    return Checkpoint(lines[0], int(lines[1]), root)


def check_checkpoint(
    bundle: Bundle, manifest: dict[str, Any] | None, report: Report
) -> tuple[Checkpoint, LogKey] | None:
    """``log/checkpoint.txt`` is signed by ``keys/log-key.vkey`` (and is for the manifest's
    log origin, when the manifest names one)."""
    try:
        log_key = LogKey.parse(bundle.read(LOG_KEY).decode("utf-8", "replace"))
        checkpoint = open_checkpoint(bundle.read(CHECKPOINT), log_key, CHECKPOINT)
        bundle_facts = (manifest or {}).get("bundle")
        origin = bundle_facts.get("log_origin") if isinstance(bundle_facts, dict) else None
        if origin is not None and origin != checkpoint.origin:
            raise CheckFailed(CHECKPOINT, f"is for log {checkpoint.origin!r}, not {origin!r}")
    except CheckFailed as failure:
        report.fail(failure.file, failure.reason)
        return None
    report.ok(
        f"{CHECKPOINT} signed by log key {log_key.name}+{log_key.key_hash.hex()}: "
        f"{checkpoint.origin}, tree size {checkpoint.size}"
    )
    return checkpoint, log_key


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion_proof(
    leaf: bytes, index: int, tree_size: int, proof: list[bytes]
) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root the proof leads to, or None if it cannot be a proof."""
    if not 0 <= index < tree_size:
        return None
    fn, sn, result = index, tree_size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return result if sn == 0 else None


def consistency_holds(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2; equal sizes need equal roots and an empty proof, and the empty
    tree (whose root is SHA-256 of nothing) is a prefix of every tree."""
    if first == 0:
        return not proof and first_root == hashlib.sha256(b"").digest()
    if not 0 < first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    path = ([first_root] if first & (first - 1) == 0 else []) + proof
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first_result = second_result = path[0]
    for element in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first_result = node_hash(element, first_result)
            second_result = node_hash(element, second_result)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            second_result = node_hash(second_result, element)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and first_result == first_root and second_result == second_root


def _jsonl_lines(data: bytes) -> list[bytes]:
    """Lines of a JSON Lines file; the final newline is optional, blank lines are not."""
    return data[:-1].split(b"\n") if data.endswith(b"\n") else data.split(b"\n") if data else []


def _hex_hashes(value: Any, file: str) -> list[bytes]:
    try:
        hashes_ = [bytes.fromhex(item) for item in value]
    except (TypeError, ValueError) as exc:
        raise CheckFailed(file, "hashes must be a list of hex strings") from exc
    if any(len(item) != 32 for item in hashes_):
        raise CheckFailed(file, "a proof hash is not 32 bytes")
    return hashes_


def check_inclusion(bundle: Bundle, checkpoint: Checkpoint, report: Report) -> None:
    """Every entry of ``log/entries.jsonl`` is in the checkpoint's tree, in index order."""
    try:
        entries = _jsonl_lines(bundle.read(ENTRIES))
        proofs = _jsonl_lines(bundle.read(INCLUSION_PROOFS))
        if len(proofs) != len(entries):
            raise CheckFailed(INCLUSION_PROOFS, f"{len(proofs)} proofs for {len(entries)} entries")
        previous = -1
        for position, (entry, proof_line) in enumerate(zip(entries, proofs, strict=True)):
            index = _entry_index(entry, position)
            if index <= previous:
                raise CheckFailed(ENTRIES, f"entry {index} is out of order (indexes must increase)")
            _check_inclusion_proof(entry, index, proof_line, checkpoint)
            previous = index
    except CheckFailed as failure:
        report.fail(failure.file, failure.reason)
        return
    report.ok(
        f"{ENTRIES}: all {len(entries)} entries are in the checkpoint's tree "
        f"(RFC 9162 inclusion proofs against size {checkpoint.size})"
    )


def _entry_index(entry: bytes, position: int) -> int:
    document = parse_json(entry, ENTRIES) if entry else None
    index = document.get("index") if isinstance(document, dict) else None
    if isinstance(index, bool) or not isinstance(index, int):
        raise CheckFailed(ENTRIES, f"line {position + 1} is not a log entry with an index")
    return index


def _check_inclusion_proof(
    entry: bytes, index: int, proof_line: bytes, checkpoint: Checkpoint
) -> None:
    proof = parse_json(proof_line, INCLUSION_PROOFS)
    if not isinstance(proof, dict) or proof.get("index") != index:
        raise CheckFailed(INCLUSION_PROOFS, f"proof for entry {index} is for another index")
    if proof.get("tree_size") != checkpoint.size:
        raise CheckFailed(
            INCLUSION_PROOFS, f"proof for entry {index} is not against the checkpoint"
        )
    path = _hex_hashes(proof.get("hashes"), INCLUSION_PROOFS)
    root = root_from_inclusion_proof(leaf_hash(entry), index, checkpoint.size, path)
    if root != checkpoint.root:
        raise CheckFailed(ENTRIES, f"entry {index} does not lead to the checkpoint root")


def check_consistency(
    bundle: Bundle, checkpoint: Checkpoint, log_key: LogKey, report: Report
) -> None:
    """The previous bundle's checkpoint (if any) is a prefix of this one's tree."""
    try:
        proof = parse_json(bundle.read(CONSISTENCY_PROOF), CONSISTENCY_PROOF)
        if not isinstance(proof, dict):
            raise CheckFailed(CONSISTENCY_PROOF, "is not a JSON object")
        if proof.get("previous_checkpoint") is None:
            report.ok(f"{CONSISTENCY_PROOF}: first bundle for this scope, nothing to link")
            return
        note = str(proof["previous_checkpoint"]).encode("utf-8")
        previous = open_checkpoint(note, log_key, CONSISTENCY_PROOF)
        _check_consistency_proof(proof, previous, checkpoint)
    except CheckFailed as failure:
        report.fail(failure.file, failure.reason)
        return
    report.ok(
        f"{CONSISTENCY_PROOF}: bundle {proof.get('previous_bundle')}'s checkpoint "
        f"(size {previous.size}) is a prefix of this one (size {checkpoint.size})"
    )


def _check_consistency_proof(
    proof: dict[str, Any], previous: Checkpoint, checkpoint: Checkpoint
) -> None:
    if previous.origin != checkpoint.origin:
        raise CheckFailed(CONSISTENCY_PROOF, f"previous checkpoint is of log {previous.origin!r}")
    if proof.get("first") != previous.size or proof.get("second") != checkpoint.size:
        raise CheckFailed(CONSISTENCY_PROOF, "first/second are not the two checkpoints' sizes")
    path = _hex_hashes(proof.get("hashes"), CONSISTENCY_PROOF)
    if not consistency_holds(previous.size, checkpoint.size, previous.root, checkpoint.root, path):
        raise CheckFailed(CONSISTENCY_PROOF, "previous checkpoint is not a prefix of this one")


def check_log(bundle: Bundle, manifest: dict[str, Any] | None, report: Report) -> None:
    """The checkpoint, then every inclusion proof and the consistency proof against it."""
    opened = check_checkpoint(bundle, manifest, report)
    if opened is None:
        return
    checkpoint, log_key = opened
    check_inclusion(bundle, checkpoint, report)
    check_consistency(bundle, checkpoint, log_key, report)


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------


def verify(source: Path, *, out: Writer | None = None) -> Report:
    """Run every check on the bundle at ``source`` (a directory or a zip); lines go to ``out``
    as they are found. Raises UsageError when there is no bundle there."""
    report = Report(out)
    try:
        bundle = open_bundle(source)
    except CheckFailed as failure:
        report.fail(failure.file, failure.reason)
        return report
    try:
        _run_checks(bundle, report)
    finally:
        bundle.close()
    return report


def _run_checks(bundle: Bundle, report: Report) -> None:
    check_manifest_signature(bundle, report)
    manifest = check_manifest_format(bundle, report)
    if manifest is not None:
        check_files(bundle, manifest, report)
    check_timestamp(bundle, report)
    check_attestations(bundle, report)
    check_model_signatures(bundle, report)
    check_log(bundle, manifest, report)
    report.note(
        f"compare the registry key ids in {REGISTRY_KEYS} with those the organisation "
        "publishes (GET /api/v1/keys): a forger would ship their own key"
    )


USAGE = "usage: python3 verify.py [BUNDLE_DIR_OR_ZIP]  (default: the directory of verify.py)\n"


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) > 1 or (arguments and arguments[0] in ("-h", "--help")):
        sys.stderr.write(USAGE)
        return EXIT_USAGE
    source = Path(arguments[0]) if arguments else Path(__file__).resolve().parent
    try:
        report = verify(source, out=sys.stdout)
    except UsageError as exc:
        sys.stderr.write(f"verify.py: {exc}\n{USAGE}")
        return EXIT_USAGE
    sys.stdout.write(report.summary() + "\n")
    return EXIT_OK if report.passed else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
