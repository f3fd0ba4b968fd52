"""Writes of the registry app (STYLE.md: services), one module per concern."""

from __future__ import annotations

from registry.services.aliases import alias_expect, alias_record
from registry.services.attestations import (
    attestation_submit,
    attestation_upload_check,
    datasets_link,
)
from registry.services.scans import (
    model_version_scan,
    model_version_scan_request,
    versions_with_outdated_scans,
)
from registry.services.sync import (
    AcceptedDelivery,
    SyncReport,
    mlflow_sync,
    webhook_delivery_receive,
)
from registry.services.versions import (
    model_version_hash,
    model_version_observe,
    model_version_reverify,
)

__all__ = [
    "AcceptedDelivery",
    "SyncReport",
    "alias_expect",
    "alias_record",
    "attestation_submit",
    "attestation_upload_check",
    "datasets_link",
    "mlflow_sync",
    "model_version_hash",
    "model_version_observe",
    "model_version_reverify",
    "model_version_scan",
    "model_version_scan_request",
    "versions_with_outdated_scans",
    "webhook_delivery_receive",
]
