"""Read-only admin over what the registry has proven: changes go through services only."""

from __future__ import annotations

from django.contrib import admin

from config.admin_base import ReadOnlyAdmin
from provenance.models import Artifact, Attestation, Checkpoint, LogEntry, SigningKey, TrustedSigner


@admin.register(TrustedSigner)
class TrustedSignerAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "key_id", "identity", "issuer", "active", "created_at"]
    list_filter = ["kind", "active"]


@admin.register(Attestation)
class AttestationAdmin(ReadOnlyAdmin):
    list_display = ["envelope_digest", "predicate_type", "format", "signer", "received_at"]
    list_filter = ["predicate_type", "format"]
    exclude = ["envelope"]


@admin.register(Artifact)
class ArtifactAdmin(ReadOnlyAdmin):
    list_display = ["digest", "kind", "name", "size", "created_at"]
    list_filter = ["kind"]
    search_fields = ["digest", "name"]


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    list_display = ["key_id", "scheme", "created_at", "retired_at"]


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["tree_size", "issued_at", "key"]
    exclude = ["root_hash"]


@admin.register(LogEntry)
class LogEntryAdmin(ReadOnlyAdmin):
    list_display = ["index", "event_type", "occurred_at", "actor_name", "object_type", "object_id"]
    list_filter = ["event_type"]
    search_fields = ["object_id", "actor_name"]
    exclude = ["entry"]
