"""The registry's attestation signing keys: created once, rotated, always logged."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.errors import Conflict
from provenance import signing_keys
from provenance.log_format import Actor, Event
from provenance.models import SigningKey
from provenance.services.log import log_append


@transaction.atomic
def signing_key_ensure() -> SigningKey:
    """The active signing key: the configured one, or the newest, or a new one (logged)."""
    configured = signing_keys.configured_key()
    if configured is not None:
        existing = SigningKey.objects.filter(key_id=configured[0]).first()
        if existing is not None and existing.retired_at is None:
            return existing
        return _signing_key_register(*configured, actor=Actor.system())
    active = SigningKey.objects.filter(retired_at__isnull=True).order_by("-created_at").first()
    if active is not None:
        return active
    return _signing_key_register(
        *signing_keys.new_key(settings.ATTESTATION_KEY_SCHEME), actor=Actor.system()
    )


@transaction.atomic
def signing_key_rotate(*, actor: Actor, reason: str = "") -> SigningKey:
    """Generate a new key and retire the active one; what the old key signed stays verifiable."""
    if settings.ATTESTATION_SIGNING_KEY_FILE:
        raise Conflict(
            "the signing key comes from ATTESTATION_SIGNING_KEY_FILE: rotate by pointing it "
            "at a new key file",
            code="signing_key_configured",
        )
    return _signing_key_register(
        *signing_keys.new_key(settings.ATTESTATION_KEY_SCHEME), actor=actor, reason=reason
    )


def _signing_key_register(
    new_key_id: str, public_key: dict[str, Any], pem: str, *, actor: Actor, reason: str = ""
) -> SigningKey:
    now = timezone.now()
    previous = list(SigningKey.objects.select_for_update().filter(retired_at__isnull=True))
    SigningKey.objects.filter(pk__in=[key.pk for key in previous]).update(retired_at=now)
    key, _ = SigningKey.objects.update_or_create(
        key_id=new_key_id,
        defaults={
            "scheme": public_key["scheme"],
            "public_key": public_key,
            "public_pem": pem,
            "created_at": now,
            "retired_at": None,
        },
    )
    log_append(
        Event(
            event_type="signing_key.rotated" if previous else "signing_key.created",
            actor=actor,
            object_type="signing_key",
            object_id=key.key_id,
            before={"active_key_ids": [k.key_id for k in previous]} if previous else None,
            after={"key_id": key.key_id, "scheme": key.scheme, "public_key_pem": pem},
            reason=reason,
        )
    )
    return key
