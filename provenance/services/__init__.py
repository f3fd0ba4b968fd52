"""Writes of the provenance app (STYLE.md: services), one module per concern."""

from __future__ import annotations

from provenance.log_format import Actor, Event
from provenance.services.artifacts import HashedModel, model_artifact_record, model_signature_create
from provenance.services.attestations import (
    AttestationRefused,
    Intake,
    attestation_ingest,
    trusted_signer_add,
)
from provenance.services.keys import signing_key_ensure, signing_key_rotate
from provenance.services.log import (
    checkpoint_issue,
    log_append,
    log_append_many,
    log_key_register,
    log_verify,
)

__all__ = [
    "Actor",
    "AttestationRefused",
    "Event",
    "HashedModel",
    "Intake",
    "attestation_ingest",
    "checkpoint_issue",
    "log_append",
    "log_append_many",
    "log_key_register",
    "log_verify",
    "model_artifact_record",
    "model_signature_create",
    "signing_key_ensure",
    "signing_key_rotate",
    "trusted_signer_add",
]
