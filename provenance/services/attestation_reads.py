"""What checking uploaded attestations reads besides signers: the records of envelopes already
held, the artifacts subjects name, the digests the registry measured (a bundle's, in bulk)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch

from provenance.attestation_verify import ParsedEnvelope
from provenance.models import Artifact, Attestation, AttestationSubject
from provenance.services.lineage import lineage_digests

# Given subjects' names, the digest the registry measured for what each names, for those it
# measured something for (the rest are not its own).
MeasuredDigests = Callable[[Collection[str]], Mapping[str, str]]


@dataclass(frozen=True)
class Intake:
    """An accepted upload's record; ``created`` is False when the registry already held it."""

    attestation: Attestation
    created: bool
    subjects: tuple[AttestationSubject, ...]  # with their artifacts


class _Reads:
    """What checking uploads reads besides signers: the records of envelopes already held, the
    artifacts subjects name, the digests the registry measured. A bundle reads each for all
    its envelopes at once, against the registry as it stood when the bundle arrived."""

    def __init__(
        self, measured_digests: MeasuredDigests | None, *, held_last: bool = False
    ) -> None:
        self.held_last = held_last  # see _checked_envelope
        self._measured_digests = measured_digests
        self._existing: dict[str, Intake] | None = None
        self._artifacts: dict[str, Artifact | None] = {}
        self._measured: Mapping[str, str] | None = None

    def prefetch(self, parsed: Sequence[ParsedEnvelope]) -> None:
        self._existing = _held_records({p.envelope_digest for p in parsed})
        subjects = [subject for p in parsed for subject in p.statement["subject"]]
        self.artifacts(
            [_sha256(subject) for subject in subjects]
            + [digest for p in parsed for digest in lineage_digests(p.statement)]
        )
        self._measured = self.measured({str(s.get("name", "")) for s in subjects})

    def existing(self, digest: str) -> Intake | None:
        if self._existing is None:
            return _existing(digest)
        return self._existing.get(digest)

    def artifacts(
        self, digests: Sequence[str], *, also: Sequence[str] = ()
    ) -> dict[str, Artifact | None]:
        """The artifacts of ``digests`` (None: unknown), read with those of ``also`` (what
        deriving lineage will want) in the same query."""
        unread = sorted({*digests, *also} - self._artifacts.keys())
        if unread:
            found = Artifact.objects.in_bulk(unread, field_name="digest")
            self._artifacts |= {digest: found.get(digest) for digest in unread}
        return {digest: self._artifacts[digest] for digest in digests}

    def measured(self, names: Collection[str]) -> Mapping[str, str]:
        """The digests the registry measured for what ``names`` name (those it measured
        something for): read with the bundle when prefetched, else in one query."""
        if self._measured is not None:
            return self._measured
        if self._measured_digests is None:
            return {}
        return self._measured_digests(names)

    def read(self, digests: Collection[str]) -> dict[str, Artifact | None]:
        """What was read of ``digests`` (artifact or None), leaving out those never read."""
        return {digest: self._artifacts[digest] for digest in digests if digest in self._artifacts}


def _sha256(subject: dict[str, Any]) -> str:
    return str(subject["digest"]["sha256"])


def _existing(digest: str) -> Intake | None:
    """The record of an envelope already held, with its signer and subjects."""
    return _held_records({digest}).get(digest)


def _held_records(digests: set[str]) -> dict[str, Intake]:
    held = (
        Attestation.objects.filter(envelope_digest__in=digests)
        .select_related("signer")
        .prefetch_related(
            Prefetch("subjects", queryset=AttestationSubject.objects.select_related("artifact"))
        )
    )
    return {
        attestation.envelope_digest: Intake(
            attestation=attestation, created=False, subjects=tuple(attestation.subjects.all())
        )
        for attestation in held
    }
