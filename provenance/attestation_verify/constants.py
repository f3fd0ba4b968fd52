"""Media types, predicate types and limits of attestations, and the patterns that check them."""

from __future__ import annotations

import re

PAYLOAD_TYPE_IN_TOTO = "application/vnd.in-toto+json"
# The Sigstore bundle model_signing writes a key-signed model.sig as.
KEY_BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
STATEMENT_TYPE_V1 = "https://in-toto.io/Statement/v1"

PREDICATE_SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
PREDICATE_TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
PREDICATE_MODEL_SIGNING = "https://model_signing/signature/v1.0"
PREDICATE_CYCLONEDX = "https://cyclonedx.org/bom"
PREDICATE_SPDX = "https://spdx.dev/Document"
REGISTRY_PREDICATE_PREFIX = "https://secmlops.dev/attestation/"

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
"""Upload cap, checked before any parsing so a huge body costs nothing but its length."""

MAX_JSON_DEPTH = 64
"""Nesting of objects and lists in a statement: in-toto predicates need a handful of levels;
the registry stores, re-encodes and serves statements, and every reader recurses."""

MAX_SUBJECT_NAME_CHARS = 500
"""A subject's name, as the registry keeps it beside the subject's digest."""

MAX_RUN_ID_CHARS = 600
"""A provenance's ``invocationId``: it names the run's lineage node."""

MAX_SIGNATURES = 32
"""Each signature may cost one verification per trusted key; bound the work an upload buys."""

_EXACT_PREDICATE_TYPES = frozenset(
    {PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_TEST_RESULT, PREDICATE_MODEL_SIGNING}
)
# BOM formats put their spec version in the TypeURI (".../bom/v1.6", ".../Document/v2.3").
_VERSIONED_PREDICATE_TYPES = (
    re.compile(re.escape(PREDICATE_CYCLONEDX) + r"(/v[0-9]+\.[0-9]+)?"),
    re.compile(re.escape(PREDICATE_SPDX) + r"(/v[0-9]+(\.[0-9]+)*)?"),
    re.compile(
        re.escape(REGISTRY_PREDICATE_PREFIX) + r"[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*"
    ),
)

# DigestSet algorithms that in-toto defines with lowercase hex values (spec/v1/digest_set.md);
# values of other algorithms are opaque strings that consumers must ignore.
_HEX_DIGEST_ALGORITHMS = frozenset(
    {
        "sha256", "sha224", "sha384", "sha512", "sha512_224", "sha512_256", "sha3_224",
        "sha3_256", "sha3_384", "sha3_512", "shake128", "shake256", "blake2b", "blake2s",
        "ripemd160", "sm3", "gost", "sha1", "md5", "dirHash", "gitCommit", "gitTree",
        "gitBlob", "gitTag",
    }
)  # fmt: skip
_LOWER_HEX = re.compile(r"[0-9a-f]+")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# DSSE allows standard or URL-safe base64 (envelope.md); mixing the two alphabets is not either.
_STANDARD_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_URLSAFE_B64 = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_DETAIL_VALUE_CHARS = 80
_DETAIL_MESSAGE_CHARS = 300
