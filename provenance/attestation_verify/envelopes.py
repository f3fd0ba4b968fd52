"""Strict parsing of uploaded DSSE envelopes and key-signed model_signing bundles: JSON,
base64 and signatures, and the in-toto statement inside; no signature is checked here."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from provenance.attestation_verify.constants import (
    _STANDARD_B64,
    _URLSAFE_B64,
    DEFAULT_MAX_BYTES,
    KEY_BUNDLE_MEDIA_TYPE,
    MAX_SIGNATURES,
    PAYLOAD_TYPE_IN_TOTO,
)
from provenance.attestation_verify.errors import (
    AttestationRejected,
    RejectionCode,
    _quoted,
    _reject_if_too_large,
    _truncated,
)
from provenance.attestation_verify.statement import _check_statement


@dataclass(frozen=True, slots=True)
class EnvelopeSignature:
    """One DSSE signature; ``keyid`` is an unauthenticated hint and may be empty."""

    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class ParsedEnvelope:
    """A structurally valid DSSE envelope holding an in-toto Statement v1, not yet verified.

    ``raw`` and ``payload`` are the exact bytes received and decoded: store and verify those,
    never a re-encoding of ``statement``.
    """

    raw: bytes
    payload_type: str
    payload: bytes
    statement: dict[str, Any]
    signatures: tuple[EnvelopeSignature, ...]
    envelope_digest: str

    @property
    def predicate_type(self) -> str:
        return str(self.statement["predicateType"])


def parse_envelope(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedEnvelope:
    """Strictly parse an uploaded DSSE envelope; raises :class:`AttestationRejected`.

    Checks, in order: size, JSON, payloadType, base64, signatures, then the payload as an
    in-toto Statement v1 with a known predicate type.  No signature is checked here.
    """
    _reject_if_too_large(raw, max_bytes, "envelope")
    document = _strict_json(raw, "envelope")
    if not isinstance(document, dict):
        raise AttestationRejected(RejectionCode.MALFORMED_ENVELOPE, "envelope is not a JSON object")
    payload_type = _payload_type(document)
    payload = _b64decode(_required_str(document, "payload", "envelope"), "payload")
    signatures = _signatures(document.get("signatures"))
    return ParsedEnvelope(
        raw=raw,
        payload_type=payload_type,
        payload=payload,
        statement=_parse_statement(payload),
        signatures=signatures,
        envelope_digest=hashlib.sha256(raw).hexdigest(),
    )


def _strict_json(data: bytes, what: str) -> Any:
    """UTF-8 JSON without duplicate keys, non-finite numbers or lone surrogates.

    Duplicate keys are the classic parser-differential trick: another tool reading the stored
    bytes could see a different value from the one we checked.
    """
    document = _compact_json(data)
    if document is not _NOT_COMPACT:
        return document
    try:
        text = data.decode("utf-8")
        if text.startswith("\ufeff"):  # what json.loads says of a byte-order mark
            raise ValueError("Unexpected UTF-8 BOM (decode using utf-8-sig)")
        document = _STRICT_DECODER.decode(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise AttestationRejected(
            RejectionCode.MALFORMED_JSON, f"{what} is not valid JSON: {_truncated(str(exc))}"
        ) from exc
    # Strict UTF-8 decoding never yields a surrogate: only a \uD800-\uDFFF escape can, so the
    # walk over every string is needed only when the text holds one.
    if _SURROGATE_ESCAPE.search(text) and any(
        not _is_unicode(string) for string in _strings_in(document)
    ):
        raise AttestationRejected(
            RejectionCode.MALFORMED_JSON, f"{what} contains an unpaired UTF-16 surrogate"
        )
    return document


_NOT_COMPACT: Any = object()
# Python's parser recurses once per nesting level and gives up near the interpreter's limit;
# orjson goes deeper. Fewer brackets than this, strings included, cannot nest that deep.
_COMPACT_MAX_BRACKETS = 512


def _compact_json(data: bytes) -> Any:
    """The document, when ``data`` is exactly orjson's compact serialisation of what it parses
    to; ``_NOT_COMPACT`` otherwise, for the strict parser to decide.

    The fast path for what the registry signs and stores (RFC 8785 envelopes and payloads are
    compact). Equal bytes prove the strict parser would read the same document: a duplicate key
    would be missing from the serialisation, and orjson refuses a byte-order mark, invalid
    UTF-8, lone surrogates, NaN and numbers out of range; any other escape or number spelling
    serialises differently. The serialisation is only compared, never stored nor verified.
    """
    if data.count(b"{") + data.count(b"[") > _COMPACT_MAX_BRACKETS:
        return _NOT_COMPACT
    try:
        document = orjson.loads(data)
        return document if orjson.dumps(document) == data else _NOT_COMPACT
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return _NOT_COMPACT


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in JSON object")
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """``1e999`` parses to infinity, which no canonical JSON encoder or database accepts."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


# One decoder for every parse (json.loads builds a new one per call when given hooks); it keeps
# no state between calls, which is why json.loads itself shares one.
_STRICT_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates,
    parse_constant=_reject_constant,
    parse_float=_finite_float,
)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _strings_in(document: Any) -> Iterator[str]:
    """Every key and string value, iteratively: nesting depth is attacker-controlled."""
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from item.keys()
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _is_unicode(text: str) -> bool:
    """Lone surrogates survive json.loads but not UTF-8 encoding, nor a database column."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _required_str(document: Mapping[str, Any], field: str, what: str) -> str:
    value = document.get(field)
    if not isinstance(value, str):
        raise AttestationRejected(
            RejectionCode.MALFORMED_ENVELOPE, f"{what} field {field!r} must be a string"
        )
    return value


def _payload_type(document: Mapping[str, Any]) -> str:
    """The type is signed with the payload (PAE), so checking it is not redundant."""
    payload_type = _required_str(document, "payloadType", "envelope")
    if payload_type != PAYLOAD_TYPE_IN_TOTO:
        raise AttestationRejected(
            RejectionCode.WRONG_PAYLOAD_TYPE,
            f"payloadType is {_quoted(payload_type)}, expected {PAYLOAD_TYPE_IN_TOTO!r}",
        )
    return payload_type


def _b64decode(text: str, what: str) -> bytes:
    """Padded standard or URL-safe base64 (DSSE allows either), in canonical form only.

    Refusing non-canonical encodings (stray characters, set padding bits) removes one way to
    make byte-different copies of the same signed envelope, which would defeat deduplication
    by envelope digest.

    Text that re-encodes to itself is canonical in one alphabet, which is all the checks below
    ask: that test alone decides the common case, and only a refusal goes through the checks
    one by one to say what is wrong.
    """
    try:
        encoded = text.encode("ascii")
        urlsafe = b"-" in encoded or b"_" in encoded
        standard = encoded.translate(_URLSAFE_TO_STANDARD) if urlsafe else encoded
        data = binascii.a2b_base64(standard, strict_mode=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return _b64decode_or_reject(text, what)
    again = binascii.b2a_base64(data, newline=False)
    if (again.translate(_STANDARD_TO_URLSAFE) if urlsafe else again) != encoded:
        return _b64decode_or_reject(text, what)
    return data


_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_STANDARD_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64decode_or_reject(text: str, what: str) -> bytes:
    """The same acceptance as :func:`_b64decode`, checked step by step for the reason."""
    alphabet = _b64_alphabet(text, what)
    try:
        data = base64.b64decode(text, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AttestationRejected(
            RejectionCode.MALFORMED_BASE64, f"{what} is not valid base64: {exc}"
        ) from exc
    if base64.b64encode(data, altchars=alphabet).decode("ascii") != text:
        raise AttestationRejected(RejectionCode.MALFORMED_BASE64, f"{what} is not canonical base64")
    return data


def _b64_alphabet(text: str, what: str) -> bytes:
    if _STANDARD_B64.fullmatch(text):
        return b"+/"
    if _URLSAFE_B64.fullmatch(text):
        return b"-_"
    raise AttestationRejected(
        RejectionCode.MALFORMED_BASE64,
        f"{what} is not base64: characters outside one alphabet (standard or URL-safe)",
    )


def _signatures(value: Any) -> tuple[EnvelopeSignature, ...]:
    if not isinstance(value, list) or not value:
        raise AttestationRejected(
            RejectionCode.MALFORMED_ENVELOPE, "envelope must have a non-empty 'signatures' list"
        )
    if len(value) > MAX_SIGNATURES:
        raise AttestationRejected(
            RejectionCode.MALFORMED_ENVELOPE,
            f"envelope has {len(value)} signatures, more than {MAX_SIGNATURES}",
        )
    return tuple(_signature(entry, index) for index, entry in enumerate(value))


def _signature(entry: Any, index: int) -> EnvelopeSignature:
    """DSSE: ``sig`` is required, ``keyid`` optional and unset equals empty (null too, as in
    proto3 JSON); other fields are ignored."""
    if not isinstance(entry, dict):
        raise AttestationRejected(
            RejectionCode.MALFORMED_ENVELOPE, f"signature {index} is not a JSON object"
        )
    keyid = entry.get("keyid")
    if keyid is None:
        keyid = ""
    if not isinstance(keyid, str):
        raise AttestationRejected(
            RejectionCode.MALFORMED_ENVELOPE, f"signature {index} keyid must be a string"
        )
    sig = _b64decode(_required_str(entry, "sig", f"signature {index}"), f"signature {index}")
    return EnvelopeSignature(keyid=keyid, sig=sig)


def _parse_statement(payload: bytes) -> dict[str, Any]:
    statement = _strict_json(payload, "payload")
    _check_statement(statement)
    return statement  # type: ignore[no-any-return]  # _check_statement proved it is a dict


def parse_key_bundle(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedEnvelope | None:
    """A Sigstore bundle signed with a plain key (``model.sig``), as the DSSE envelope inside.

    model_signing's key-signed ``model.sig`` is a Sigstore bundle v0.3 whose verification
    material is a public-key hint, not a certificate: its DSSE envelope is checked against the
    trusted keys like any uploaded envelope. Returns None for a certificate (keyless) bundle.
    ``raw`` and ``envelope_digest`` stay those of the bundle bytes received.
    """
    _reject_if_too_large(raw, max_bytes, "bundle")
    document = _strict_json(raw, "bundle")
    if not isinstance(document, dict):
        raise AttestationRejected(RejectionCode.MALFORMED_BUNDLE, "bundle is not a JSON object")
    material = document.get("verificationMaterial")
    if not isinstance(material, dict) or "publicKey" not in material:
        return None
    _check_key_bundle(document, material)
    envelope = document["dsseEnvelope"]
    # Re-encoding the envelope's JSON wrapper is harmless: signatures cover PAE(type, payload),
    # and the payload bytes are decoded from the same base64 text.
    parsed = parse_envelope(json.dumps(envelope).encode(), max_bytes=max_bytes)
    return ParsedEnvelope(
        raw=raw,
        payload_type=parsed.payload_type,
        payload=parsed.payload,
        statement=parsed.statement,
        signatures=parsed.signatures,
        envelope_digest=hashlib.sha256(raw).hexdigest(),
    )


def _check_key_bundle(document: Mapping[str, Any], material: Mapping[str, Any]) -> None:
    """A key-signed bundle is what model_signing writes, and nothing the registry would store
    without checking: the v0.3 media type, a public-key hint as the only verification
    material (no transparency log entry nor timestamp, which a key signature does not have
    and the registry would not verify), and a DSSE envelope."""

    def malformed(detail: str) -> AttestationRejected:
        return AttestationRejected(RejectionCode.MALFORMED_BUNDLE, f"key-signed bundle: {detail}")

    if document.get("mediaType") != KEY_BUNDLE_MEDIA_TYPE:
        raise malformed(f"mediaType must be {KEY_BUNDLE_MEDIA_TYPE!r}")
    extra = sorted(set(document) - {"mediaType", "verificationMaterial", "dsseEnvelope"})
    if extra:
        raise malformed(f"unexpected field {_quoted(extra[0])}")
    if not isinstance(document.get("dsseEnvelope"), dict):
        raise malformed("it must hold a dsseEnvelope")
    if not isinstance(material.get("publicKey"), dict):
        raise malformed("verificationMaterial.publicKey must be an object")
    extra = sorted(set(material) - {"publicKey", "tlogEntries", "timestampVerificationData"})
    if extra:
        raise malformed(f"unexpected verificationMaterial field {_quoted(extra[0])}")
    for field in ("tlogEntries", "timestampVerificationData"):
        if material.get(field):
            raise malformed(
                f"verificationMaterial.{field} is not empty: a key signature has none, and "
                "the registry would not verify it"
            )
