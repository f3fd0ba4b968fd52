"""Writes for evidence bundles and auditor access; each a governance-log event.

Asking for a bundle queues a Celery task (``evidence_build``); the task writes the zip to a
temporary file, moves it into the ``evidence`` storage, and only then marks the bundle ready —
a failed build leaves no file and a ``failed`` bundle with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from compliance.choices import EvidenceScope, EvidenceStatus
from compliance.evidence import build
from compliance.evidence.selectors import bundles_visible, may_request
from compliance.models import AuditorGrant, EvidenceBundle
from compliance.selectors import actor_for
from config.access import visibility_for
from config.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from provenance.log_format import Actor, Event
from provenance.models import Checkpoint
from provenance.services import log_append
from provenance.services.keys import signing_key_ensure
from provenance.services.log import checkpoint_issue
from provenance.visibility import Visibility
from registry.models import ModelVersion, RegisteredModel

logger = logging.getLogger(__name__)

MAX_PERIOD = timedelta(days=3660)


def _event(bundle: EvidenceBundle, event_type: str, actor: Actor, **extra: Any) -> Event:
    return Event(
        event_type=event_type,
        actor=actor,
        object_type="evidence_bundle",
        object_id=str(bundle.pk),
        after={
            "scope": bundle.scope,
            "model": bundle.model_name,
            "version": bundle.version.version if bundle.version else None,
            "period_start": bundle.period_start,
            "period_end": bundle.period_end,
            "status": bundle.status,
            **extra.pop("after", {}),
        },
        **extra,
    )


def _scope_args(
    visibility: Visibility,
    *,
    scope: str,
    model: str | None,
    version: int | None,
    period_start: datetime | None,
    period_end: datetime | None,
) -> tuple[RegisteredModel | None, ModelVersion | None]:
    """The model and version a bundle covers; a model the caller may not see is "not found",
    exactly like one that does not exist, and so are its versions."""
    if scope not in EvidenceScope.values:
        raise InvalidInput(
            f"scope must be one of {', '.join(EvidenceScope.values)}", code="invalid_scope"
        )
    registered: RegisteredModel | None = None
    chosen: ModelVersion | None = None
    if scope != EvidenceScope.INVENTORY:
        if not model:
            raise InvalidInput(f"a {scope} bundle needs a model", code="model_required")
        registered = RegisteredModel.objects.filter(name=model, deleted_at__isnull=True).first()
        if registered is None or not visibility.sees_model(model):
            raise NotFound(f"no registered model {model!r}", code="model_not_found")
    if scope == EvidenceScope.MODEL_VERSION:
        if version is None:
            raise InvalidInput("a model_version bundle needs a version", code="version_required")
        chosen = ModelVersion.objects.filter(registered_model=registered, version=version).first()
        if chosen is None:
            raise NotFound(f"no version {version} of {model!r}", code="version_not_found")
        if period_start is not None or period_end is not None:
            raise InvalidInput(
                "a model_version bundle covers the version's whole history: give no period",
                code="period_not_allowed",
            )
        return None, chosen
    if version is not None:
        raise InvalidInput(f"a {scope} bundle takes no version", code="version_not_allowed")
    if period_start is None or period_end is None:
        raise InvalidInput(f"a {scope} bundle needs period_start and period_end",
                           code="period_required")  # fmt: skip
    if period_end <= period_start:
        raise InvalidInput("period_end must be after period_start", code="invalid_period")
    if period_end - period_start > MAX_PERIOD:
        raise InvalidInput("a period may span ten years at most", code="invalid_period")
    return registered, None


@transaction.atomic
def evidence_request(
    *,
    user: User,
    scope: str,
    model: str | None = None,
    version: int | None = None,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
) -> EvidenceBundle:
    """Ask for a bundle; a Compliance Officer of the model (a global one for the inventory)."""
    registered, chosen = _scope_args(
        visibility_for(user),
        scope=scope,
        model=model,
        version=version,
        period_start=period_start,
        period_end=period_end,
    )
    target = registered or (chosen.registered_model if chosen else None)
    if not may_request(user=user, registered_model=target):
        raise Forbidden(
            "only a Compliance Officer"
            + (" of this model" if target else " holding the role globally")
            + " may ask for this evidence",
            code="not_compliance_officer",
        )
    bundle = EvidenceBundle.objects.create(
        scope=scope,
        registered_model=registered,
        version=chosen,
        period_start=period_start,
        period_end=period_end,
        requested_by=user,
        requested_by_name=user.get_username(),
        requested_at=timezone.now(),
        progress={"step": "queued", "done": 0, "total": 1},
    )
    log_append(_event(bundle, "evidence.requested", actor_for(user, registered_model=target)))
    bundle_id = bundle.pk
    transaction.on_commit(lambda: _enqueue(bundle_id))
    return bundle


def _enqueue(bundle_id: int) -> None:
    from compliance.tasks import evidence_build  # noqa: PLC0415  (tasks import the services)

    evidence_build.delay(bundle_id)


def _progress(bundle_id: int) -> Any:
    last = [0.0]

    def report(step: str, done: int, total: int) -> None:
        now = timezone.now().timestamp()
        if now - last[0] < 0.5 and done < total:
            return
        last[0] = now
        EvidenceBundle.objects.filter(pk=bundle_id).update(
            progress={"step": step, "done": done, "total": max(total, 1)}
        )

    return report


def _start(bundle_id: int) -> EvidenceBundle | None:
    """Claim the bundle for building; fix its checkpoint and time on the first build."""
    with transaction.atomic():
        bundle = (
            EvidenceBundle.objects.select_for_update(of=("self",))
            .select_related("registered_model", "version__registered_model", "checkpoint")
            .filter(pk=bundle_id)
            .first()
        )
        if bundle is None or bundle.status == EvidenceStatus.READY:
            return None
        bundle.status = EvidenceStatus.BUILDING
        bundle.error = ""
        bundle.save(update_fields=["status", "error"])
    if bundle.checkpoint is None:
        signing_key_ensure()
        checkpoint = checkpoint_issue()
        if checkpoint is None:  # pragma: no cover  (the request itself is a log entry)
            raise RuntimeError("the governance log is empty")
        bundle.checkpoint = checkpoint
        bundle.generated_at = timezone.now().replace(microsecond=0)
        EvidenceBundle.objects.filter(pk=bundle_id).update(
            checkpoint=checkpoint, generated_at=bundle.generated_at
        )
    return bundle


def evidence_build(*, bundle_id: int) -> EvidenceBundle | None:
    """Build the bundle (the task). Idempotent: a ready bundle is left as it is."""
    bundle = _start(bundle_id)
    if bundle is None:
        return None
    storage = storages["evidence"]
    name = f"{bundle.pk:06d}-{slugify(build.title_of(bundle))[:80]}.zip"
    with tempfile.TemporaryDirectory(prefix="evidence-") as directory:
        path = Path(directory) / name
        try:
            build.build(bundle, path, progress=_progress(bundle.pk))
        except Exception as error:
            logger.exception("evidence bundle %s failed", bundle.pk)
            _fail(bundle, error)
            raise
        digest, size = _digest(path)
        if storage.exists(name):
            storage.delete(name)
        with path.open("rb") as handle:
            stored = storage.save(name, File(handle, name=name))
    with transaction.atomic():
        bundle.status = EvidenceStatus.READY
        bundle.file_name, bundle.sha256, bundle.size = stored, digest, size
        bundle.finished_at = timezone.now()
        bundle.progress = {"step": "ready", "done": 1, "total": 1}
        bundle.save(
            update_fields=["status", "file_name", "sha256", "size", "finished_at", "progress"]
        )
        log_append(
            _event(
                bundle,
                "evidence.generated",
                Actor.system("evidence builder"),
                after={"sha256": digest, "size": size, "tree_size": _tree_size(bundle)},
                evidence=[f"sha256:{digest}"],
            )
        )
    return bundle


def _tree_size(bundle: EvidenceBundle) -> int | None:
    checkpoint: Checkpoint | None = bundle.checkpoint
    return checkpoint.tree_size if checkpoint else None


def _digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _fail(bundle: EvidenceBundle, error: BaseException) -> None:
    detail = str(error) if isinstance(error, DomainError) else f"{type(error).__name__}: {error}"
    with transaction.atomic():
        EvidenceBundle.objects.filter(pk=bundle.pk).update(
            status=EvidenceStatus.FAILED, error=detail[:2000], finished_at=timezone.now()
        )
        bundle.status = EvidenceStatus.FAILED
        log_append(
            _event(bundle, "evidence.failed", Actor.system("evidence builder"), reason=detail[:500])
        )


def evidence_retry(*, bundle: EvidenceBundle, user: User) -> EvidenceBundle:
    """Queue a failed bundle again (same scope, same checkpoint if one was fixed)."""
    if bundle.status != EvidenceStatus.FAILED:
        raise Conflict("only a failed bundle can be built again", code="invalid_state")
    target = bundle.registered_model or (
        bundle.version.registered_model if bundle.version else None
    )
    if not may_request(user=user, registered_model=target):
        raise Forbidden("only a Compliance Officer may rebuild it", code="not_compliance_officer")
    with transaction.atomic():
        EvidenceBundle.objects.filter(pk=bundle.pk).update(status=EvidenceStatus.QUEUED, error="")
        bundle.status = EvidenceStatus.QUEUED
        log_append(_event(bundle, "evidence.requested", actor_for(user, registered_model=target),
                          reason="rebuild after failure"))  # fmt: skip
        transaction.on_commit(lambda: _enqueue(bundle.pk))
    return bundle


def evidence_open(*, bundle_id: int, user: User) -> tuple[EvidenceBundle, File[Any]]:
    """The ready bundle's zip for ``user``, logging the download (and the auditor's use)."""
    bundle = bundles_visible(user=user).filter(pk=bundle_id).first()
    if bundle is None:
        raise NotFound("no such evidence bundle", code="evidence_not_found")
    if bundle.status != EvidenceStatus.READY:
        raise Conflict(f"the bundle is {bundle.status}, not ready", code="evidence_not_ready")
    handle = storages["evidence"].open(bundle.file_name, "rb")
    grant = _auditor_grant_used(user, bundle)
    with transaction.atomic():
        actor = actor_for(user, registered_model=bundle.registered_model)
        log_append(_event(bundle, "evidence.downloaded", actor, after={"sha256": bundle.sha256}))
        if grant is not None:
            log_append(_grant_event(grant, "auditor.access_used", actor,
                                    after={"bundle": bundle.pk, "action": "download"}))  # fmt: skip
    return bundle, handle


def evidence_viewed(*, bundle: EvidenceBundle, user: User) -> None:
    """An auditor looked at a bundle's page: logged (staff views are ordinary reads)."""
    grant = _auditor_grant_used(user, bundle)
    if grant is not None:
        log_append(
            _grant_event(
                grant,
                "auditor.access_used",
                actor_for(user),
                after={"bundle": bundle.pk, "action": "view"},
            )
        )


def _auditor_grant_used(user: User, bundle: EvidenceBundle) -> AuditorGrant | None:
    if not user.auditor_grants.exists():
        return None
    return (
        AuditorGrant.objects.filter(
            auditor=user, bundles=bundle, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
        .order_by("-granted_at")
        .first()
    )


# --- auditor access ----------------------------------------------------------------------------


def _grant_event(grant: AuditorGrant, event_type: str, actor: Actor, **extra: Any) -> Event:
    return Event(
        event_type=event_type,
        actor=actor,
        object_type="auditor_grant",
        object_id=str(grant.pk),
        after={
            "auditor": grant.auditor.get_username(),
            "expires_at": grant.expires_at,
            **extra.pop("after", {}),
        },
        **extra,
    )


@transaction.atomic
def auditor_grant(
    *,
    granted_by: User,
    auditor: User,
    bundles: Iterable[EvidenceBundle],
    expires_at: datetime,
    reason: str,
) -> AuditorGrant:
    """Give ``auditor`` read-only access to ``bundles`` until ``expires_at``."""
    chosen = list(bundles)
    if not chosen:
        raise InvalidInput("choose at least one bundle", code="bundles_required")
    if not reason.strip():
        raise InvalidInput("say why the auditor needs access", code="reason_required")
    now = timezone.now()
    if expires_at <= now:
        raise InvalidInput("the access must end in the future", code="invalid_expiry")
    if expires_at - now > timedelta(days=settings.AUDITOR_GRANT_MAX_DAYS):
        raise InvalidInput(
            f"access may be granted for {settings.AUDITOR_GRANT_MAX_DAYS} days at most",
            code="invalid_expiry",
        )
    if auditor.pk == granted_by.pk:
        raise Forbidden("nobody grants themselves auditor access", code="self_grant")
    if (
        auditor.is_staff
        or auditor.is_superuser
        or auditor.role_assignments.filter(revoked_at__isnull=True).exists()
    ):
        raise InvalidInput(
            "an auditor account holds no role and no staff rights: use a separate account",
            code="auditor_not_external",
        )
    visible = set(bundles_visible(user=granted_by).values_list("pk", flat=True))
    for bundle in chosen:
        target = bundle.registered_model or (
            bundle.version.registered_model if bundle.version else None
        )
        if bundle.pk not in visible or not may_request(user=granted_by, registered_model=target):
            raise Forbidden(
                f"only a Compliance Officer of bundle #{bundle.pk}'s scope may share it",
                code="not_compliance_officer",
            )
        if bundle.status != EvidenceStatus.READY:
            raise InvalidInput(f"bundle #{bundle.pk} is not ready", code="evidence_not_ready")
    grant = AuditorGrant.objects.create(
        auditor=auditor,
        granted_by=granted_by,
        granted_by_name=granted_by.get_username(),
        granted_at=now,
        expires_at=expires_at,
        reason=reason.strip(),
    )
    grant.bundles.set(chosen)
    log_append(
        _grant_event(
            grant,
            "auditor.access_granted",
            actor_for(granted_by),
            after={"bundles": sorted(b.pk for b in chosen)},
            reason=grant.reason,
        )
    )
    return grant


@transaction.atomic
def auditor_revoke(*, grant: AuditorGrant, user: User, reason: str = "") -> AuditorGrant:
    locked = AuditorGrant.objects.select_for_update().get(pk=grant.pk)
    if locked.revoked_at is not None:
        raise Conflict("this access was already revoked", code="already_revoked")
    if locked.granted_by_id != user.pk and not may_request(user=user, registered_model=None):
        raise Forbidden(
            "only who granted it or a global Compliance Officer may revoke it",
            code="not_compliance_officer",
        )
    locked.revoked_at = timezone.now()
    locked.revoked_by_name = user.get_username()
    locked.save(update_fields=["revoked_at", "revoked_by_name"])
    log_append(_grant_event(locked, "auditor.access_revoked", actor_for(user), reason=reason))
    return locked
