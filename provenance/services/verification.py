"""Re-verification: check stored attestations again, from their verbatim bytes.

An attestation verified at the door can stop verifying: its signer may be distrusted since, or
a privileged attacker may have edited the database (the stored statement no longer matching
the signed bytes). Each check starts from the stored bytes and today's trust, and records the
outcome on the row; a change of outcome is a log event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import NotSupportedError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from provenance.attestation_verify import (
    AttestationRejected,
    ParsedEnvelope,
    TrustedKeys,
    parse_envelope,
    parse_key_bundle,
    verify_envelope,
    verify_sigstore_bundle,
)
from provenance.log_format import Actor, Event
from provenance.models import (
    Attestation,
    AttestationFormat,
    SignerKind,
    SigningKey,
    TrustedSigner,
    VerificationStatus,
)
from provenance.services.log import log_append_many

# Rows per UPDATE ... WHERE id IN (...): well under SQLite's bound on query parameters.
_UPDATE_CHUNK = 900
_READ_CHUNK = 2000
# Attestations checked one step at a time (see _problems).
_BATCH = 100
# Columns a re-verification overwrites or never reads, left unread when it is given a queryset.
_NOT_READ = ("received_at", "verified_at", "verification_problem")


@dataclass(frozen=True, slots=True)
class Outcome:
    attestation: Attestation
    ok: bool
    problem: str = ""


@dataclass
class ReverifyReport:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]

    @property
    def ok(self) -> bool:
        return not self.failed


def attestations_reverify(*, attestations: Iterable[Attestation], actor: Actor) -> ReverifyReport:
    """Verify each attestation again; record the outcome; log every change of outcome.

    Thousands of rows make one pass: each signer and registry key is read once (and its public
    key loaded once), each envelope is parsed once, and outcomes are written in bulk.
    """
    report = ReverifyReport()
    trust = _Trust()
    batch: list[Attestation] = []
    for attestation in _streamed(attestations):
        batch.append(attestation)
        if len(batch) == _BATCH:
            _check(batch, trust, report)
            batch = []
    _check(batch, trust, report)
    _record(report, actor)
    return report


def _streamed(attestations: Iterable[Attestation]) -> Iterable[Attestation]:
    """A queryset is read in chunks through a server-side cursor where the database has them
    (10,000 envelopes are tens of megabytes), without the columns the check overwrites or
    never reads; anything else is taken as given."""
    if not isinstance(attestations, QuerySet):
        return attestations
    with suppress(NotSupportedError):  # a union() or the like is read whole
        attestations = attestations.defer(*_NOT_READ)
    return attestations.iterator(chunk_size=_READ_CHUNK)


def _check(batch: list[Attestation], trust: _Trust, report: ReverifyReport) -> None:
    for attestation, problem in zip(batch, _problems(batch, trust), strict=True):
        report.outcomes.append(Outcome(attestation=attestation, ok=not problem, problem=problem))


def attestation_problem(attestation: Attestation) -> str:
    """Why ``attestation`` does not verify today, or "" when it does."""
    return _problems([attestation], _Trust())[0]


def _problems(attestations: list[Attestation], trust: _Trust) -> list[str]:
    """Why each attestation does not verify today ("" when it does).

    One step at a time over the whole batch — parse all, verify all, then compare — so each
    loop stays warm in the CPU caches; the signature checks gain the most.
    """
    checks = [_Check(attestation) for attestation in attestations]
    for check in checks:
        check.parse(trust)
    for check in checks:
        check.verify(trust)
    return [check.conclusion(trust) for check in checks]


class _Check:
    """One attestation's re-verification, step by step."""

    __slots__ = ("attestation", "parsed", "problem", "statement")

    def __init__(self, attestation: Attestation) -> None:
        self.attestation = attestation
        self.parsed: ParsedEnvelope | None = None
        self.statement: Any = None  # what the stored bytes sign; None: not this row's bytes
        self.problem = ""

    def parse(self, trust: _Trust) -> None:
        """Strictly parse the stored bytes (a Sigstore bundle is verified whole here)."""
        attestation = self.attestation
        raw = bytes(attestation.envelope)
        limit = max(settings.ATTESTATION_MAX_BYTES, len(raw))
        try:
            if attestation.format == AttestationFormat.SIGSTORE:
                self.statement = _sigstore_statement(trust.signer(attestation), raw, limit)
                return
            parsed = (
                parse_key_bundle(raw, max_bytes=limit)
                if attestation.format == AttestationFormat.MODEL_SIG
                else parse_envelope(raw, max_bytes=limit)
            )
        except AttestationRejected as rejected:
            self.problem = f"{rejected.code}: {rejected.detail}"
            return
        if parsed is not None and parsed.envelope_digest == attestation.envelope_digest:
            self.parsed = parsed

    def verify(self, trust: _Trust) -> None:
        if self.parsed is None:
            return
        try:
            verify_envelope(self.parsed, trust.keys(self.attestation))
        except AttestationRejected as rejected:
            self.problem = f"{rejected.code}: {rejected.detail}"
            return
        # The statement parsed from the very payload bytes just verified (no second parse).
        self.statement = self.parsed.statement

    def conclusion(self, trust: _Trust) -> str:
        attestation = self.attestation
        if self.problem:
            return self.problem
        if self.statement != attestation.statement:
            return "the stored statement differs from the signed bytes"
        signer = trust.signer(attestation)
        if signer is not None:
            if not signer.active:
                return f"signer {signer.name!r} is no longer trusted"
            if attestation.predicate_type not in signer.predicate_types:
                return f"signer {signer.name!r} may no longer sign this predicate type"
        return ""


class _Trust:
    """Today's signers and registry keys, each read from the database once per pass."""

    def __init__(self) -> None:
        self._signers: dict[int, TrustedSigner | None] = {}
        self._keys: dict[int, SigningKey | None] = {}
        self._loaded: dict[tuple[int | None, int | None], TrustedKeys] = {}

    def signer(self, attestation: Attestation) -> TrustedSigner | None:
        """The attestation's signer as the database holds it now."""
        if attestation.signer_id is None:
            return None
        if attestation.signer_id not in self._signers:
            self._signers[attestation.signer_id] = TrustedSigner.objects.filter(
                pk=attestation.signer_id
            ).first()
        return self._signers[attestation.signer_id]

    def signing_key(self, attestation: Attestation) -> SigningKey | None:
        if attestation.signing_key_id is None:
            return None
        if attestation.signing_key_id not in self._keys:
            self._keys[attestation.signing_key_id] = SigningKey.objects.filter(
                pk=attestation.signing_key_id
            ).first()
        return self._keys[attestation.signing_key_id]

    def keys(self, attestation: Attestation) -> TrustedKeys:
        """The public keys that may have signed ``attestation``: its registry key, or its
        signer's key while that signer is a key signer; loaded once per pass."""
        cache_key = (attestation.signing_key_id, attestation.signer_id)
        if cache_key not in self._loaded:
            self._loaded[cache_key] = TrustedKeys(self._public_keys(attestation))
        return self._loaded[cache_key]

    def _public_keys(self, attestation: Attestation) -> Mapping[str, Mapping[str, Any]]:
        key = self.signing_key(attestation)
        if key is not None:
            return {key.key_id: key.public_key}
        signer = self.signer(attestation)
        if signer is None or signer.kind != SignerKind.KEY or signer.public_key is None:
            return {}
        return {signer.key_id: signer.public_key}


def _sigstore_statement(signer: TrustedSigner | None, raw: bytes, limit: int) -> Any:
    root = settings.SIGSTORE_TRUSTED_ROOT
    if signer is None or not root:
        return None
    result = verify_sigstore_bundle(
        raw,
        artifact=None,
        trusted_root_path=Path(root),
        identity=signer.identity,
        issuer=signer.issuer,
        max_bytes=limit,
    )
    return result.statement


@transaction.atomic
def _record(report: ReverifyReport, actor: Actor) -> None:
    """One UPDATE per outcome (status and problem) and chunk of rows; a log event for each
    attestation whose status changed."""
    now = timezone.now()
    events = []
    rows_by_outcome: dict[tuple[str, str], list[int]] = defaultdict(list)
    for outcome in report.outcomes:
        attestation = outcome.attestation
        status = VerificationStatus.VERIFIED if outcome.ok else VerificationStatus.FAILED
        changed = attestation.verification_status != status
        rows_by_outcome[(status, outcome.problem)].append(attestation.pk)
        attestation.verification_status, attestation.verified_at = status, now
        attestation.verification_problem = outcome.problem
        if changed:
            events.append(
                Event(
                    event_type=f"attestation.verification_{'restored' if outcome.ok else 'failed'}",
                    actor=actor,
                    object_type="attestation",
                    object_id=attestation.envelope_digest,
                    after={"status": status, "predicate_type": attestation.predicate_type},
                    reason=outcome.problem[:1000],
                    evidence=[f"sha256:{attestation.envelope_digest}"],
                )
            )
    for (recorded, problem), pks in rows_by_outcome.items():
        for start in range(0, len(pks), _UPDATE_CHUNK):
            Attestation.objects.filter(pk__in=pks[start : start + _UPDATE_CHUNK]).update(
                verification_status=recorded, verified_at=now, verification_problem=problem
            )
    if events:
        log_append_many(events)
