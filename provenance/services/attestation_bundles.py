"""Bundles: many envelopes in one upload (in-toto's JSON Lines bundle), each judged with the
single-upload rules."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from provenance.attestation_verify import (
    AttestationRejected,
    ParsedEnvelope,
    RejectionCode,
    parse_envelope,
)
from provenance.log_format import Actor, Event
from provenance.services.attestation_checks import _reject
from provenance.services.attestation_reads import Intake, MeasuredDigests, _existing, _Reads
from provenance.services.attestations import (
    AttestationRefused,
    OnAccepted,
    _Admitted,
    _check_size,
    _checked_envelope,
    _log_rejection,
    _rejection_event,
    _Signers,
    _store,
    _store_many,
)
from provenance.services.log import log_append_many

# The intake's logger: a refused line is logged under the same name as a refused upload.
logger = logging.getLogger("provenance.services.attestations")


@dataclass(frozen=True)
class BundleLine:
    """One envelope of a bundle, by its 1-based line number in the upload: its record (stored
    now, or already held) or why it was refused."""

    line: int
    outcome: Intake | AttestationRefused


def attestation_bundle_ingest(
    *,
    raw: bytes,
    actor: Actor,
    measured_digests: MeasuredDigests | None = None,
    on_accepted: OnAccepted | None = None,
) -> list[BundleLine]:
    """Verify and store each DSSE envelope of an in-toto bundle (one per line, JSON Lines).

    Each line is judged on its own, against the registry as it stood when the bundle arrived
    (so no line's outcome depends on another's, nor on their order) and with the single-upload
    rules: a refused line stores nothing but its ``attestation.rejected`` event, an envelope
    already held gives its record. Accepted lines are stored one savepoint each, and the whole
    bundle commits at once: every line of the answer is durable, or (on a server error) none.
    Raises AttestationRefused, storing nothing but the event, for a bundle over
    ATTESTATION_MAX_BYTES or ATTESTATION_BUNDLE_MAX_LINES, or holding no envelope.
    """
    try:
        lines = _bundle_lines(raw)
    except AttestationRejected as rejected:
        _log_rejection(raw, rejected, actor)
        raise AttestationRefused(rejected) from None
    signers, reads = _Signers(), _Reads(measured_digests)
    checked = _bundle_checked(lines, signers, reads)
    with transaction.atomic():
        results, events = _bundle_store(lines, checked, actor, on_accepted)
        log_append_many(events)
    for result in results:
        if isinstance(result.outcome, AttestationRefused):
            logger.warning(
                "attestation refused: %s (%s)", result.outcome.code, result.outcome.detail
            )
    return results


def _bundle_lines(raw: bytes) -> list[tuple[int, bytes]]:
    """(line number, envelope bytes) of each non-blank line; a CRLF ending is not part of it."""
    _check_size(raw)
    lines = [
        (number, line.removesuffix(b"\r"))
        for number, line in enumerate(raw.split(b"\n"), start=1)
        if line.strip()
    ]
    if len(lines) > settings.ATTESTATION_BUNDLE_MAX_LINES:
        raise _reject(
            RejectionCode.PAYLOAD_TOO_LARGE,
            f"the bundle holds {len(lines)} envelopes; the limit is "
            f"{settings.ATTESTATION_BUNDLE_MAX_LINES}",
        )
    if not lines:
        raise _reject(RejectionCode.MALFORMED_ENVELOPE, "the bundle holds no envelope")
    return lines


def _bundle_checked(
    lines: list[tuple[int, bytes]], signers: _Signers, reads: _Reads
) -> list[Intake | _Admitted | AttestationRejected]:
    """Every line checked, before anything is written: parsed, then read in bulk, then
    verified one by one."""
    parsed = [_line_parsed(envelope) for _number, envelope in lines]
    reads.prefetch([envelope for envelope in parsed if isinstance(envelope, ParsedEnvelope)])
    return [_line_checked(envelope, signers, reads) for envelope in parsed]


def _line_parsed(envelope: bytes) -> ParsedEnvelope | AttestationRejected:
    try:
        return parse_envelope(envelope, max_bytes=settings.ATTESTATION_MAX_BYTES)
    except AttestationRejected as rejected:
        return rejected


def _line_checked(
    parsed: ParsedEnvelope | AttestationRejected, signers: _Signers, reads: _Reads
) -> Intake | _Admitted | AttestationRejected:
    if isinstance(parsed, AttestationRejected):
        return parsed
    try:
        return _checked_envelope(parsed, signers, reads)
    except AttestationRejected as rejected:
        return rejected


def _bundle_store(
    lines: list[tuple[int, bytes]],
    checked: list[Intake | _Admitted | AttestationRejected],
    actor: Actor,
    on_accepted: OnAccepted | None,
) -> tuple[list[BundleLine], list[Event]]:
    """Store the admitted lines; each line's outcome, and the events to log in line order."""
    admitted: dict[str, _Admitted] = {}
    for outcome in checked:
        if isinstance(outcome, _Admitted):
            admitted.setdefault(outcome.digest, outcome)  # the same envelope twice: once
    written = _bundle_write(list(admitted.values()), actor, on_accepted)
    results: list[BundleLine] = []
    events: list[Event] = []
    for (number, envelope), outcome in zip(lines, checked, strict=True):
        if isinstance(outcome, AttestationRejected):
            events.append(_rejection_event(envelope, outcome, actor))
            results.append(BundleLine(number, AttestationRefused(outcome)))
        elif isinstance(outcome, Intake):
            results.append(BundleLine(number, outcome))
        elif outcome is admitted[outcome.digest]:
            intake, line_events = written[outcome.digest]
            events += line_events
            results.append(BundleLine(number, intake))
        else:
            results.append(BundleLine(number, _held(written[outcome.digest][0])))
    return results, events


def _bundle_write(
    admitted: list[_Admitted], actor: Actor, on_accepted: OnAccepted | None
) -> dict[str, tuple[Intake, list[Event]]]:
    """All admitted lines written together; should a concurrent upload have stored one of them
    meanwhile, the lot is undone and written one line at a time."""
    if not admitted:
        return {}
    try:
        with transaction.atomic():  # a savepoint to fall back from
            written = _store_many(admitted, actor=actor, on_accepted=on_accepted)
    except IntegrityError:
        written = [_line_store(one, actor, on_accepted) for one in admitted]
    return {one.digest: outcome for one, outcome in zip(admitted, written, strict=True)}


def _line_store(
    admitted: _Admitted, actor: Actor, on_accepted: OnAccepted | None
) -> tuple[Intake, list[Event]]:
    try:
        with transaction.atomic():  # a savepoint: a line that fails takes nothing with it
            return _store(admitted, actor=actor, on_accepted=on_accepted)
    except IntegrityError:  # the same bytes arrived concurrently and won the race
        existing = _existing(admitted.digest)
        if existing is None:
            raise
        return existing, []


def _held(intake: Intake) -> Intake:
    return Intake(attestation=intake.attestation, created=False, subjects=intake.subjects)
