"""Attestations the registry issues itself, signed with its own key and stored like any other."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import transaction

from provenance import signing_keys
from provenance.attestation_verify import sign_statement
from provenance.log_format import Actor
from provenance.models import Artifact, Attestation, AttestationFormat
from provenance.services.attestation_reads import _sha256
from provenance.services.attestations import _Admitted, _store
from provenance.services.keys import signing_key_ensure
from provenance.services.log import log_append_many


def registry_attestation_issue(*, statement: dict[str, Any], actor: Actor) -> Attestation:
    """Sign ``statement`` with the registry's active key and store it like any attestation.

    Every subject must be an artifact the registry holds. Equal statements give equal bytes
    (canonical JSON, deterministic ECDSA is not assumed: the digest dedups only exact repeats).
    """
    key = signing_key_ensure()
    envelope = sign_statement(statement, signing_keys.load_signer(key.key_id))
    subjects: list[tuple[str, Artifact | None, str]] = [
        (_sha256(subject), Artifact.objects.get(digest=_sha256(subject)), str(subject["name"]))
        for subject in statement["subject"]
    ]
    admitted = _Admitted(
        envelope=envelope,
        digest=hashlib.sha256(envelope).hexdigest(),
        fmt=AttestationFormat.DSSE,
        statement=statement,
        signer=None,
        subjects=subjects,
    )
    with transaction.atomic():
        intake, events = _store(admitted, actor=actor, signing_key=key)
        log_append_many(events)
    return intake.attestation
