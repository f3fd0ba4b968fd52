"""Alias moves the registry makes itself (promotions, rollbacks, reverts).

The registry announces a move before making it in MLflow (``alias_expect``), so a sync that
sees the move first knows it is the registry's; once MLflow has it, ``alias_record`` mirrors
it with who asked. Either way the move is recorded once, never as an out-of-band change.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from config.errors import NotFound
from provenance.log_format import Actor, Event
from provenance.services import log_append
from registry.choices import AliasChangeSource
from registry.models import (
    AliasHistory,
    ExpectedAliasChange,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
)
from registry.services.sync import _alias_apply, _lock_sync
from registry.services.versions import model_version_observe


def _target(model_name: str, version: int | None) -> tuple[RegisteredModel, ModelVersion | None]:
    model = RegisteredModel.objects.filter(name=model_name).first()
    if model is None:
        raise NotFound(f"no registered model {model_name!r}", code="model_not_found")
    if version is None:
        return model, None
    target = ModelVersion.objects.filter(registered_model=model, version=version).first()
    if target is None:
        raise NotFound(f"no version {model_name}/{version}", code="version_not_found")
    return model, target


@transaction.atomic
def alias_expect(
    *, model_name: str, alias: str, version: int | None, reference: str, actor_name: str
) -> ExpectedAliasChange:
    """Announce a move the registry is about to make in MLflow (``version`` None: removal)."""
    model, target = _target(model_name, version)
    return ExpectedAliasChange.objects.create(
        registered_model=model,
        alias=alias,
        to_version=target,
        reference=reference,
        actor_name=actor_name,
        created_at=timezone.now(),
    )


@transaction.atomic
def alias_record(
    *, model_name: str, alias: str, version: int | None, reference: str, actor: Actor
) -> AliasHistory | None:
    """Mirror a move the registry has just made in MLflow; None if a sync mirrored it first."""
    _lock_sync()
    model, target = _target(model_name, version)
    now = timezone.now()
    ExpectedAliasChange.objects.filter(
        registered_model=model, alias=alias, to_version=target, consumed_at__isnull=True
    ).update(consumed_at=now)
    row = (
        ModelAlias.objects.select_related("version")
        .filter(registered_model=model, alias=alias)
        .first()
    )
    if (row.version_id if row else None) == (target.pk if target else None):
        return None
    entry = AliasHistory.objects.create(
        registered_model=model,
        alias=alias,
        from_version_id=row.version_id if row else None,
        to_version=target,
        changed_at=now,
        changed_by=actor.name,
        source=AliasChangeSource.REGISTRY,
    )
    previous = row.version if row else None
    _alias_apply(model.pk, alias, row, target, now)
    log_append(
        Event(
            event_type="alias.moved_by_registry",
            actor=actor,
            object_type="alias",
            object_id=f"{model_name}@{alias}",
            before={"version": previous.version} if previous else None,
            after={"version": target.version} if target else None,
            reason=reference,
        )
    )
    for moved in (previous, target):
        if moved is not None:
            model_version_observe(version_pk=moved.pk)
    return entry
