"""Re-checking stored envelopes in bulk, in worker processes: parse, verify, compare.

A re-verification of thousands of envelopes is CPU work in Python and in ``cryptography``; a
thread cannot share it out (the parse and the comparison hold the GIL), a process can. This
module is what such a process runs, and imports no Django: the caller reads the rows, sends
each envelope with its stored statement as JSON text and the keys that may have signed it, and
gets back, for each, the problem found ("" for none) — the same words the one-process check
gives (provenance/services/verification.py, which also judges the signer's trust today).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from provenance.attestation_verify.envelopes import parse_envelope, parse_key_bundle
from provenance.attestation_verify.errors import AttestationRejected
from provenance.attestation_verify.signatures import TrustedKeys, verify_envelope

# The format values of provenance.models.AttestationFormat this module checks.
DSSE, MODEL_SIG = "dsse", "model_sig"
STATEMENT_DIFFERS = "the stored statement differs from the signed bytes"


class Recheck(NamedTuple):
    """One stored envelope to check again: its format, bytes, digest as recorded, stored
    statement (JSON text; None for none) and which of the batch's key sets may have signed it."""

    format: str
    envelope: bytes
    envelope_digest: str
    statement: str | None
    keys: int


def recheck_batch(
    rechecks: Sequence[Recheck], key_sets: Mapping[int, Mapping[str, Mapping[str, Any]]], limit: int
) -> list[str]:
    """The problem with each envelope ("" when it parses, verifies and matches its statement)."""
    loaded = {number: TrustedKeys(keys) for number, keys in key_sets.items()}
    return [_problem(recheck, loaded[recheck.keys], limit) for recheck in rechecks]


def _problem(recheck: Recheck, keys: TrustedKeys, limit: int) -> str:
    raw = recheck.envelope
    try:
        parsed = (
            parse_key_bundle(raw, max_bytes=max(limit, len(raw)))
            if recheck.format == MODEL_SIG
            else parse_envelope(raw, max_bytes=max(limit, len(raw)))
        )
        if parsed is None or parsed.envelope_digest != recheck.envelope_digest:
            return STATEMENT_DIFFERS  # not this row's bytes: nothing of them is signed
        verify_envelope(parsed, keys)
    except AttestationRejected as rejected:
        return f"{rejected.code}: {rejected.detail}"
    stored = None if recheck.statement is None else json.loads(recheck.statement)
    return "" if parsed.statement == stored else STATEMENT_DIFFERS
