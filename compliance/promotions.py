"""The promotion workflow: a hand-written state machine, one service per transition.

Each transition locks the request row, checks its guard, saves with ``update_fields``, writes a
governance-log event in the same transaction, and fires side effects (the execution task,
notifications) after commit. Approvals are bound to the exact model digest; separation of
duties is a guard of every step (ARCHITECTURE: the eight roles).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from compliance import notifications
from compliance.choices import Decision, PromotionStatus, RiskTier
from compliance.gates import GateResult, gates_evaluate
from compliance.models import (
    Approval,
    ModelRiskTier,
    PromotionPolicy,
    PromotionRequest,
    RoleAssignment,
)
from compliance.quorum import Approver, Quorum, Requirement, quorum
from compliance.selectors import actor_for, roles_held
from config.errors import Conflict, Forbidden, InvalidInput, NotFound
from provenance import predicates
from provenance.log_format import Actor, Event
from provenance.services import log_append, registry_attestation_issue
from registry import mlflow_gateway
from registry import services as registry_services
from registry.hooks import DigestChange
from registry.models import ModelAlias, ModelVersion

S = PromotionStatus
PROMOTION_TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.PENDING, S.WITHDRAWN}),
    S.PENDING: frozenset({S.APPROVED, S.REJECTED, S.WITHDRAWN, S.EXPIRED, S.FAILED}),
    S.APPROVED: frozenset({S.EXECUTING, S.PENDING, S.WITHDRAWN, S.EXPIRED, S.FAILED}),
    S.EXECUTING: frozenset({S.PROMOTED, S.FAILED}),
    S.PROMOTED: frozenset(),
    S.REJECTED: frozenset(),
    S.WITHDRAWN: frozenset(),
    S.EXPIRED: frozenset(),
    S.FAILED: frozenset(),
}
OPEN_STATUSES = (S.DRAFT, S.PENDING, S.APPROVED, S.EXECUTING)
DEFAULT_TIER = RiskTier.HIGH  # a model nobody classified is treated as high risk
_ALIAS_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,255}")
BREAK_GLASS_ROLE = "security_operations"
# Break-glass skips the quorum and the policy's gates; the digest check always runs.
_BREAK_GLASS_GATES = {"require_scan_clean": False, "require_no_open_incident": False}
_EXECUTION_LOCK_CLASS = 0x50524F4D  # arbitrary constant naming execution locks on PostgreSQL


# --------------------------------------------------------------------------
# Reading the rules
# --------------------------------------------------------------------------


def risk_tier_of(version: ModelVersion) -> str:
    found = ModelRiskTier.objects.filter(registered_model_id=version.registered_model_id).first()
    return found.tier if found else DEFAULT_TIER


def authors_of(version: ModelVersion) -> set[str]:
    """Who made the version, as MLflow reports it (its run's user, the version's user)."""
    names = {version.user_id, version.run.user if version.run else ""}
    return {name.strip().lower() for name in names if name and name.strip()}


def _requirements(snapshot: dict[str, Any]) -> list[Requirement]:
    return [Requirement(tuple(r["roles"]), int(r["count"])) for r in snapshot["approvals"]]


def _eligible_roles(snapshot: dict[str, Any]) -> set[str]:
    return {role for requirement in snapshot["approvals"] for role in requirement["roles"]}


def quorum_of(request: PromotionRequest) -> Quorum:
    """Whether the live approvals, bound to the request's digest, meet its policy snapshot."""
    approvals = request.approvals.filter(
        decision=Decision.APPROVE, voided_at__isnull=True, model_digest=request.model_digest
    )
    approvers = [
        Approver(user_id=a.approver_id, name=a.approver_name, roles=frozenset(a.roles))
        for a in approvals
    ]
    return quorum(_requirements(request.policy), approvers)


# --------------------------------------------------------------------------
# Transitions
# --------------------------------------------------------------------------


def _move(request: PromotionRequest, to: str, *, fields: Iterable[str] = ()) -> None:
    if to not in PROMOTION_TRANSITIONS[request.status]:
        raise Conflict(
            f"request #{request.pk} is {request.status}; it cannot become {to}",
            code="promotion_wrong_state",
        )
    request.status = to
    request.updated_at = timezone.now()
    request.save(update_fields=["status", "updated_at", *fields])


def _locked(request_id: int) -> PromotionRequest:
    request = (
        PromotionRequest.objects.select_for_update(of=("self",))
        .select_related("registered_model", "version__run", "version__model_artifact")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise NotFound(f"no promotion request #{request_id}", code="promotion_not_found")
    return request


def _event(request: PromotionRequest, event_type: str, actor: Actor, **extra: Any) -> Event:
    return Event(
        event_type=f"promotion.{event_type}",
        actor=actor,
        object_type="promotion_request",
        object_id=str(request.pk),
        after={
            "model": request.registered_model.name,
            "version": request.version.version,
            "alias": request.alias,
            "status": request.status,
            "digest": f"sha256:{request.model_digest}",
            **extra.pop("after", {}),
        },
        **extra,
    )


@transaction.atomic
def promotion_request_create(
    *,
    version: ModelVersion,
    alias: str,
    reason: str,
    requester: User,
    submit: bool = True,
    break_glass: bool = False,
) -> PromotionRequest:
    """Ask for ``alias`` to point at ``version``: snapshot the policy, bind the digest, check
    the gates once (they are checked again before execution), notify who can approve."""
    version = ModelVersion.objects.select_related("registered_model", "run", "model_artifact").get(
        pk=version.pk
    )
    _check_new_request(version, alias, reason, requester)
    policy = _policy_for(alias, risk_tier_of(version))
    now = timezone.now()
    digest = version.model_artifact.digest if version.model_artifact else ""
    current = (
        ModelAlias.objects.filter(registered_model=version.registered_model, alias=alias)
        .select_related("version")
        .first()
    )
    gates = gates_evaluate(version=version, bound_digest=digest, gates=policy.gates)
    request = PromotionRequest.objects.create(
        registered_model=version.registered_model,
        version=version,
        alias=alias,
        model_digest=digest,
        risk_tier=policy.risk_tier,
        policy=_snapshot(policy),
        reason=reason.strip(),
        requested_by=requester,
        requested_at=now,
        expires_at=now + timedelta(hours=policy.request_ttl_hours),
        previous_version=current.version if current else None,
        break_glass=break_glass,
        gate_results=[g.to_dict() for g in gates],
        updated_at=now,
    )
    actor = actor_for(requester, registered_model=version.registered_model)
    log_append(_event(request, "requested", actor, reason=request.reason))
    if submit:
        _submit(request, actor)
    return request


def _check_new_request(version: ModelVersion, alias: str, reason: str, requester: User) -> None:
    if not _ALIAS_NAME.fullmatch(alias) or alias.lower() == "latest":
        raise InvalidInput(f"{alias!r} is not a valid alias name", code="promotion_bad_alias")
    if not reason.strip():
        raise InvalidInput("say why this version should be promoted", code="reason_required")
    if version.model_artifact is None:
        raise Conflict(
            f"{version} has not been hashed yet: there is no digest to approve", code="not_hashed"
        )
    if version.deleted_at is not None:
        raise Conflict(f"{version} was deleted in MLflow", code="version_deleted")
    if not roles_held(user=requester, registered_model=version.registered_model):
        raise Forbidden(
            f"{requester.get_username()} holds no role on {version.registered_model.name}",
            code="no_role",
        )
    if requester.get_username().lower() in authors_of(version):
        raise Forbidden(
            "separation of duties: the version's author may not request its promotion",
            code="sod_requester_is_author",
        )
    busy = PromotionRequest.objects.filter(
        registered_model=version.registered_model, alias=alias, status__in=OPEN_STATUSES
    ).first()
    if busy is not None:
        raise Conflict(
            f"request #{busy.pk} for {alias} is still {busy.status}", code="promotion_open"
        )


def _policy_for(alias: str, tier: str) -> PromotionPolicy:
    policy = PromotionPolicy.objects.filter(alias=alias, risk_tier=tier).first()
    if policy is None:
        raise InvalidInput(
            f"no promotion policy for alias {alias!r} at risk tier {tier}: ask a Security "
            "Architect to define one",
            code="no_policy",
        )
    return policy


def _snapshot(policy: PromotionPolicy) -> dict[str, Any]:
    return {
        "id": policy.pk,
        "alias": policy.alias,
        "risk_tier": policy.risk_tier,
        "approvals": list(policy.approvals),
        "gates": dict(policy.gates),
        "request_ttl_hours": policy.request_ttl_hours,
        "approval_ttl_hours": policy.approval_ttl_hours,
    }


def _submit(request: PromotionRequest, actor: Actor) -> None:
    _move(request, S.PENDING)
    log_append(_event(request, "submitted", actor))
    if not request.break_glass:  # nobody approves a break-glass promotion
        request_id = request.pk
        transaction.on_commit(lambda: notifications.approvers_notify(request_id=request_id))


@transaction.atomic
def promotion_request_submit(*, request_id: int, user: User) -> PromotionRequest:
    request = _locked(request_id)
    if request.requested_by_id != user.pk:
        raise Forbidden("only the requester submits a draft", code="not_requester")
    _submit(request, actor_for(user, registered_model=request.registered_model))
    return request


def promotion_request_decide(
    *, request_id: int, approver: User, decision: str, comment: str, password: str
) -> Approval:
    """Approve or reject, after re-entering one's password; a signed, logged decision.

    A rejection ends the request. An approval that completes the quorum moves it to approved
    and queues its execution.
    """
    if not approver.check_password(password):
        _log_step_up_failure(request_id, approver)
        raise Forbidden("the password is not correct", code="step_up_failed")
    _expire_committed(request_id)
    with transaction.atomic():
        request = _locked(request_id)
        roles = _check_decision(request, approver, decision, comment)
        approval = _approval_record(request, approver, decision, comment, roles)
        if decision == Decision.REJECT:
            _move(request, S.REJECTED, fields=["decided_at"])
        elif quorum_of(request).met:
            request.decided_at = timezone.now()
            _move(request, S.APPROVED, fields=["decided_at"])
            log_append(_event(request, "quorum_met", Actor.system("registry:workflow")))
            _execute_after_commit(request.pk)
        notify_id, status = request.pk, request.status
        transaction.on_commit(
            lambda: notifications.decision_notify(request_id=notify_id, status=status)
        )
        return approval


def _log_step_up_failure(request_id: int | str, approver: User) -> None:
    with transaction.atomic():
        log_append(
            Event(
                event_type="promotion.step_up_failed",
                actor=actor_for(approver),
                object_type="promotion_request",
                object_id=str(request_id),
                reason="wrong password at re-authentication",
            )
        )


def _check_decision(
    request: PromotionRequest, approver: User, decision: str, comment: str
) -> list[str]:
    if decision not in Decision.values:
        raise InvalidInput("decision must be approve or reject", code="bad_decision")
    if not comment.strip():
        raise InvalidInput("a decision needs a comment", code="comment_required")
    if request.status != S.PENDING:
        raise Conflict(
            f"request #{request.pk} is {request.status}, not pending", code="promotion_wrong_state"
        )
    name = approver.get_username().lower()
    if approver.pk == request.requested_by_id or name in authors_of(request.version):
        raise Forbidden(
            "separation of duties: the requester and the version's author may not decide",
            code="sod_violation",
        )
    roles = roles_held(user=approver, registered_model=request.registered_model)
    relevant = sorted(roles & _eligible_roles(request.policy))
    if not relevant:
        raise Forbidden(
            "you hold none of the roles this policy asks to approve", code="not_an_approver"
        )
    current = request.version.model_artifact.digest if request.version.model_artifact else ""
    if current != request.model_digest:
        raise Conflict(
            "the model's files changed since the request was made: approvals are void",
            code="digest_changed",
        )
    if request.approvals.filter(approver=approver, voided_at__isnull=True).exists():
        raise Conflict("you have already decided on this request", code="already_decided")
    return relevant


def _approval_record(
    request: PromotionRequest, approver: User, decision: str, comment: str, roles: list[str]
) -> Approval:
    now = timezone.now()
    actor = actor_for(approver, registered_model=request.registered_model)
    statement = predicates.approval_statement(
        model_digest=request.model_digest,
        model_version=_version_ref(request),
        request={"id": request.pk, "alias": request.alias, "riskTier": request.risk_tier},
        approver={"id": approver.pk, "name": approver.get_username(), "roles": roles},
        decision=decision,
        comment=comment.strip(),
        decided_at=now,
    )
    attestation = registry_attestation_issue(statement=statement, actor=actor)
    approval = Approval.objects.create(
        request=request,
        approver=approver,
        approver_name=approver.get_username(),
        decision=decision,
        roles=roles,
        comment=comment.strip(),
        model_digest=request.model_digest,
        decided_at=now,
        attestation_digest=attestation.envelope_digest,
    )
    log_append(
        _event(
            request,
            "approved" if decision == Decision.APPROVE else "rejected",
            actor,
            reason=approval.comment[:1000],
            after={"roles": roles},
            evidence=[f"sha256:{attestation.envelope_digest}", f"sha256:{request.model_digest}"],
        )
    )
    return approval


def _version_ref(request: PromotionRequest) -> dict[str, Any]:
    return {"name": request.registered_model.name, "version": request.version.version}


@transaction.atomic
def promotion_request_withdraw(*, request_id: int, user: User, reason: str) -> PromotionRequest:
    request = _locked(request_id)
    if request.requested_by_id != user.pk and not user.is_superuser:
        raise Forbidden("only the requester may withdraw a request", code="not_requester")
    _move(request, S.WITHDRAWN)
    log_append(
        _event(
            request,
            "withdrawn",
            actor_for(user, registered_model=request.registered_model),
            reason=reason.strip()[:1000],
        )
    )
    return request


def _expire_committed(request_id: int) -> None:
    """Expire an overdue request for good, then refuse: the expiry must not be rolled back
    with the refused action."""
    with transaction.atomic():
        expired = _expire_if_due(_locked(request_id))
    if expired:
        raise Conflict(f"request #{request_id} expired", code="promotion_expired")


def _expire_if_due(request: PromotionRequest) -> bool:
    if request.status in (S.PENDING, S.APPROVED) and request.expires_at <= timezone.now():
        _move(request, S.EXPIRED)
        log_append(_event(request, "expired", Actor.system("registry:workflow")))
        return True
    return False


def promotion_requests_expire() -> int:
    """Expire overdue requests; void approvals older than their policy allows (beat task)."""
    now = timezone.now()
    expired = 0
    for request_id in PromotionRequest.objects.filter(
        status__in=(S.PENDING, S.APPROVED), expires_at__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic():
            expired += _expire_if_due(_locked(request_id))
    for request_id in PromotionRequest.objects.filter(
        status__in=(S.PENDING, S.APPROVED)
    ).values_list("pk", flat=True):
        _void_stale_approvals(request_id, now)
    return expired


@transaction.atomic
def _void_stale_approvals(request_id: int, now: Any) -> None:
    request = _locked(request_id)
    ttl = timedelta(hours=int(request.policy.get("approval_ttl_hours", 72)))
    stale = request.approvals.filter(voided_at__isnull=True, decided_at__lte=now - ttl)
    if not stale.update(voided_at=now, void_reason="approval expired"):
        return
    log_append(_event(request, "approvals_expired", Actor.system("registry:workflow")))
    if request.status == S.APPROVED and not quorum_of(request).met:
        _move(request, S.PENDING)


def approvals_void_for_digest(*, version: ModelVersion, digest: str) -> int:
    """The version's files changed: open requests bound to the old digest fail, their
    approvals void. A new request binds the new digest."""
    failed = 0
    for request_id in (
        PromotionRequest.objects.filter(
            version=version, status__in=(S.DRAFT, S.PENDING, S.APPROVED)
        )
        .exclude(model_digest=digest)
        .values_list("pk", flat=True)
    ):
        with transaction.atomic():
            request = _locked(request_id)
            now = timezone.now()
            request.approvals.filter(voided_at__isnull=True).update(
                voided_at=now, void_reason="model digest changed"
            )
            reason = f"the model's files changed: the digest is now sha256:{digest}"
            request.failure_reason = reason
            if request.status == S.DRAFT:
                _move(request, S.WITHDRAWN, fields=["failure_reason"])
            else:
                _move(request, S.FAILED, fields=["failure_reason"])
            log_append(
                _event(request, "digest_changed", Actor.system("registry:hasher"), reason=reason)
            )
            failed += 1
    return failed


# --------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------


def _execute_after_commit(request_id: int) -> None:
    from compliance import tasks  # noqa: PLC0415  (tasks import this module)

    transaction.on_commit(lambda: tasks.promotion_execute.delay(request_id))


def promotion_execute(*, request_id: int) -> PromotionRequest | None:
    """Set the alias in MLflow as the registry's service account, after checking again.

    Idempotent: a retry after MLflow was down picks up where it stopped; the request waits in
    ``executing`` meanwhile and is never half-applied. Raises MlflowUnavailable for a retry.
    One execution at a time: a call while another is under way (a redelivered task, the
    resume beat) does nothing and returns None.
    """
    with _execution_claim(request_id) as claimed:
        return _execute(request_id) if claimed else None


@contextmanager
def _execution_claim(request_id: int) -> Iterator[bool]:
    """Whether this caller is the one executing ``request_id`` now.

    The status cannot tell: the request stays ``executing`` between attempts, and a retry
    must go on from there. So on PostgreSQL a session advisory lock, held across the MLflow
    calls (no transaction stays open meanwhile) and released with the session if the worker
    dies, lets one caller through. SQLite (embedded mode) has none: a concurrent duplicate
    there is refused at the final transition and records nothing twice.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = [_EXECUTION_LOCK_CLASS, request_id]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        claimed = bool(cursor.fetchone()[0])
    try:
        yield claimed
    finally:
        if claimed:
            # Suppressed: a session that is gone took its lock with it.
            with suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def _execute(request_id: int) -> PromotionRequest | None:
    with transaction.atomic():
        request = _locked(request_id)
        if request.status == S.APPROVED:
            request.attempts += 1
            _move(request, S.EXECUTING, fields=["attempts"])
            log_append(_event(request, "executing", Actor.system("registry:workflow")))
        elif request.status != S.EXECUTING:
            return None
    problems, gates = _execution_checks(request)
    if problems:
        return _fail(request_id, "; ".join(problems), gates)
    reference = f"promotion:{request.pk}"
    registry_services.alias_expect(
        model_name=request.registered_model.name,
        alias=request.alias,
        version=request.version.version,
        reference=reference,
        actor_name=f"registry for {request.requested_by.get_username()}",
    )
    mlflow_gateway.alias_set(request.registered_model.name, request.alias, request.version.version)
    return _promoted(request_id, gates)


def _execution_checks(request: PromotionRequest) -> tuple[list[str], list[GateResult]]:
    checked: dict[str, Any] = {}

    def policy_checks() -> None:
        """Quorum and gates: run while the files are re-hashed (they do not need the hash)."""
        checked["quorum_met"] = request.break_glass or quorum_of(request).met
        version = ModelVersion.objects.select_related("model_artifact", "run").get(
            pk=request.version_id
        )
        checked["gates"] = gates_evaluate(
            version=version,
            bound_digest=request.model_digest,
            gates=_BREAK_GLASS_GATES if request.break_glass else request.policy["gates"],
        )

    verification = registry_services.model_version_reverify(
        version_pk=request.version_id,
        actor=Actor.system("registry:workflow"),
        alongside=policy_checks,
    )
    if "gates" not in checked:  # the version is gone: nothing was re-verified
        policy_checks()
    problems = []
    if not checked["quorum_met"]:
        problems.append("the approvals no longer meet the policy")
    if verification is None or verification.statement["predicate"]["result"] != "PASSED":
        problems.append("re-verification failed: files or attestations no longer verify")
    gates: list[GateResult] = checked["gates"]
    problems += [f"gate {g.gate} failed: {g.detail}" for g in gates if not g.passed]
    return problems, gates


@transaction.atomic
def _fail(request_id: int, reason: str, gates: list[GateResult]) -> PromotionRequest:
    request = _locked(request_id)
    request.failure_reason = reason
    request.gate_results = [g.to_dict() for g in gates]
    _move(request, S.FAILED, fields=["failure_reason", "gate_results"])
    log_append(_event(request, "failed", Actor.system("registry:workflow"), reason=reason[:1000]))
    transaction.on_commit(
        lambda: notifications.decision_notify(request_id=request_id, status=S.FAILED)
    )
    return request


@transaction.atomic
def _promoted(request_id: int, gates: list[GateResult]) -> PromotionRequest:
    request = _locked(request_id)
    actor = Actor.system("registry:workflow")
    registry_services.alias_record(
        model_name=request.registered_model.name,
        alias=request.alias,
        version=request.version.version,
        reference=f"promotion:{request.pk}",
        actor=actor_for(request.requested_by, registered_model=request.registered_model),
    )
    approvals = request.approvals.filter(
        decision=Decision.APPROVE, voided_at__isnull=True, model_digest=request.model_digest
    )
    statement = predicates.promotion_statement(
        model_digest=request.model_digest,
        model_version=_version_ref(request),
        alias=request.alias,
        request={
            "id": request.pk,
            "requestedBy": request.requested_by.get_username(),
            "reason": request.reason,
            "riskTier": request.risk_tier,
            "policy": request.policy,
        },
        approvals=[
            {"approver": a.approver_name, "roles": a.roles, "attestation": a.attestation_digest}
            for a in approvals
        ],
        gates=[g.to_dict() for g in gates],
        promoted_at=timezone.now(),
        break_glass=request.break_glass,
    )
    attestation = registry_attestation_issue(statement=statement, actor=actor)
    request.executed_at = timezone.now()
    request.gate_results = [g.to_dict() for g in gates]
    _move(request, S.PROMOTED, fields=["executed_at", "gate_results"])
    log_append(
        _event(request, "promoted", actor, evidence=[f"sha256:{attestation.envelope_digest}"])
    )
    transaction.on_commit(
        lambda: notifications.decision_notify(request_id=request_id, status=S.PROMOTED)
    )
    return request


# --------------------------------------------------------------------------
# Break-glass
# --------------------------------------------------------------------------


def promotion_break_glass(
    *, version: ModelVersion, alias: str, reason: str, user: User, password: str
) -> PromotionRequest:
    """An emergency promotion or rollback by Security Operations, without the quorum.

    Marked as such everywhere, executed at once, and opening a mandatory review incident.
    """
    if not user.check_password(password):
        _log_step_up_failure("break-glass", user)
        raise Forbidden("the password is not correct", code="step_up_failed")
    if BREAK_GLASS_ROLE not in roles_held(user=user, registered_model=version.registered_model):
        raise Forbidden("break-glass is for Security Operations", code="not_security_operations")
    with transaction.atomic():
        actor = actor_for(user, registered_model=version.registered_model)
        _supersede_open(version, alias, actor)
        request = promotion_request_create(
            version=version, alias=alias, reason=reason, requester=user, break_glass=True
        )
        request.decided_at = timezone.now()
        _move(request, S.APPROVED, fields=["decided_at"])
        log_append(_event(request, "break_glass", actor, reason=reason[:1000]))
        from compliance import incidents  # noqa: PLC0415  (incidents import this module)

        incidents.break_glass_review_open(request=request, user=user, reason=reason)
        _execute_after_commit(request.pk)
        return request


def _supersede_open(version: ModelVersion, alias: str, actor: Actor) -> None:
    """An emergency does not wait for open requests on the alias: they are withdrawn."""
    for request_id in PromotionRequest.objects.filter(
        registered_model=version.registered_model, alias=alias, status__in=OPEN_STATUSES
    ).values_list("pk", flat=True):
        request = _locked(request_id)
        if request.status == S.EXECUTING:
            raise Conflict(
                f"request #{request.pk} is being executed in MLflow right now; try again",
                code="promotion_executing",
            )
        request.failure_reason = "superseded by a break-glass promotion"
        _move(request, S.WITHDRAWN, fields=["failure_reason"])
        log_append(_event(request, "superseded", actor, reason=request.failure_reason))


def eligible_approvers(request: PromotionRequest) -> list[User]:
    """People who may decide on ``request``: holding a required role (globally or on the model),
    and neither its requester nor the version's author."""
    roles = _eligible_roles(request.policy)
    holders = RoleAssignment.objects.filter(
        Q(registered_model__isnull=True) | Q(registered_model=request.registered_model),
        role__key__in=roles,
        revoked_at__isnull=True,
        user__is_active=True,
    ).values_list("user_id", flat=True)
    authors = authors_of(request.version)
    return [
        user
        for user in User.objects.filter(pk__in=set(holders)).exclude(pk=request.requested_by_id)
        if user.get_username().lower() not in authors
    ]


def alias_revert(*, model_name: str, alias: str, version: int | None, incident_id: int) -> None:
    """Undo an out-of-band alias move (policy ``revert_out_of_band``), as the registry."""
    reference = f"revert:incident-{incident_id}"
    registry_services.alias_expect(
        model_name=model_name,
        alias=alias,
        version=version,
        reference=reference,
        actor_name="registry (revert)",
    )
    if version is None:
        mlflow_gateway.alias_delete(model_name, alias)
    else:
        mlflow_gateway.alias_set(model_name, alias, version)
    with transaction.atomic():
        registry_services.alias_record(
            model_name=model_name,
            alias=alias,
            version=version,
            reference=reference,
            actor=Actor.system("registry:revert"),
        )
        log_append(
            Event(
                event_type="incident.alias_reverted",
                actor=Actor.system("registry:revert"),
                object_type="incident",
                object_id=str(incident_id),
                after={"alias": f"{model_name}@{alias}", "version": version},
            )
        )


def digest_changed(change: DigestChange) -> None:
    """Registry hook: a version's files now hash differently; approvals bound to it are void."""
    version = ModelVersion.objects.get(pk=change.version_pk)
    approvals_void_for_digest(version=version, digest=change.digest)
