"""attestation_bundle_ingest: what an upload of many envelopes writes, and how it copes with a
concurrent upload of one of them."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from provenance import predicates
from provenance.attestation_verify import (
    PREDICATE_TEST_RESULT,
    generate_signing_key,
    sign_statement,
    signer_from_pem,
)
from provenance.log_format import Actor
from provenance.models import Artifact, ArtifactKind, Attestation, LineageEdge, LogEntry
from provenance.services import Intake, attestation_ingest, trusted_signer_add
from provenance.services import attestation_reads as intake_service
from provenance.services.attestation_bundles import attestation_bundle_ingest
from provenance.services.attestations import AttestationRefused

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("test")
MODEL = "ab" * 32


@pytest.fixture
def envelopes() -> list[bytes]:
    Artifact.objects.create(
        digest=MODEL, kind=ArtifactKind.MODEL, name="fraud/1", size=1, created_at=timezone.now()
    )
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="evaluator",
        public_key=public_key,
        predicate_types=[PREDICATE_TEST_RESULT],
        actor=ACTOR,
    )
    signer = signer_from_pem(private_pem)
    return [
        sign_statement(
            predicates.statement(
                subjects=[("fraud/1", MODEL)],
                predicate_type=PREDICATE_TEST_RESULT,
                predicate={"result": "PASSED", "configuration": [{"name": f"eval-{n}"}]},
            ),
            signer,
        )
        for n in range(3)
    ]


def created(outcome: Intake | AttestationRefused) -> bool | str:
    return outcome.created if isinstance(outcome, Intake) else outcome.code


def test_an_envelope_stored_meanwhile_is_200_and_the_others_are_stored(
    envelopes: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    attestation_ingest(raw=envelopes[1], media_type="application/json", actor=ACTOR)
    # The bundle was checked before that upload committed: it found nothing held.
    monkeypatch.setattr(intake_service._Reads, "existing", lambda self, digest: None)

    lines = attestation_bundle_ingest(raw=b"\n".join(envelopes), actor=ACTOR)

    assert [(line.line, created(line.outcome)) for line in lines] == [
        (1, True),
        (2, False),
        (3, True),
    ]
    assert Attestation.objects.count() == 3
    assert LineageEdge.objects.count() == 3
    accepted = LogEntry.objects.filter(event_type="attestation.accepted")
    assert sorted(entry.object_id for entry in accepted) == sorted(
        a.envelope_digest for a in Attestation.objects.all()
    )


def test_events_are_logged_in_line_order(envelopes: list[bytes]) -> None:
    lines = [envelopes[0], b"[]", envelopes[2]]

    attestation_bundle_ingest(raw=b"\n".join(lines), actor=ACTOR)

    logged = [
        (entry.event_type, entry.object_id)
        for entry in LogEntry.objects.filter(event_type__startswith="attestation.")
    ]
    digests = {a.envelope: a.envelope_digest for a in Attestation.objects.all()}
    assert [event for event, _ in logged] == [
        "attestation.accepted",
        "attestation.rejected",
        "attestation.accepted",
    ]
    assert logged[0][1] == digests[envelopes[0]]
    assert logged[2][1] == digests[envelopes[2]]


def test_a_refused_bundle_raises_and_logs_once(envelopes: list[bytes], settings: Any) -> None:
    settings.ATTESTATION_BUNDLE_MAX_LINES = 1

    with pytest.raises(AttestationRefused) as refused:
        attestation_bundle_ingest(raw=b"\n".join(envelopes), actor=ACTOR)

    assert refused.value.code == "payload_too_large"
    assert refused.value.status == 413
    assert not Attestation.objects.exists()
    assert LogEntry.objects.filter(event_type="attestation.rejected").count() == 1
