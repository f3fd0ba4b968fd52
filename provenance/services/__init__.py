"""Writes of the provenance app (STYLE.md: services), one module per concern."""

from __future__ import annotations

from provenance.log_format import Actor, Event
from provenance.services.artifacts import (
    HashedModel,
    model_artifact_record,
    model_digest_measure,
    model_signature_create,
)
from provenance.services.attestation_reads import Intake
from provenance.services.attestations import (
    AttestationRefused,
    attestation_ingest,
    attestation_refuse_oversize,
)
from provenance.services.keys import signing_key_ensure, signing_key_rotate
from provenance.services.lineage import lineage_derive, version_node_ensure
from provenance.services.log import (
    checkpoint_issue,
    log_append,
    log_append_many,
    log_key_register,
    log_verify,
)
from provenance.services.registry_attestations import registry_attestation_issue
from provenance.services.scans import model_scan_record
from provenance.services.signers import trusted_signer_add
from provenance.services.verification import ReverifyReport, attestations_reverify

__all__ = [
    "Actor",
    "AttestationRefused",
    "Event",
    "HashedModel",
    "Intake",
    "ReverifyReport",
    "attestation_ingest",
    "attestation_refuse_oversize",
    "attestations_reverify",
    "checkpoint_issue",
    "lineage_derive",
    "log_append",
    "log_append_many",
    "log_key_register",
    "log_verify",
    "model_artifact_record",
    "model_digest_measure",
    "model_scan_record",
    "model_signature_create",
    "registry_attestation_issue",
    "signing_key_ensure",
    "signing_key_rotate",
    "trusted_signer_add",
    "version_node_ensure",
]
