"""Promotion requests over HTTP: list, request, show, approve, reject, withdraw, break-glass.

Thin views over the workflow's services (compliance/promotions.py) and reads
(compliance/promotion_selectors.py), the same the web UI calls: visibility, separation of duties,
the step-up password and every state check are theirs, and the DomainErrors they raise reach the
caller as ``{"code", "detail"}`` through the one exception handler. A request the caller may not
see is a 404 ``promotion_not_found`` on every endpoint, exactly like one that does not exist.

Every write needs the ``approve`` token scope: the scope catalogue has nothing narrower for the
workflow, so creating, withdrawing and break-glass share it with deciding. Each still needs the
owner's roles; a decision and a break-glass also need the owner's password, entered again.
"""

from __future__ import annotations

from typing import Any, ClassVar

import django_filters
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    extend_schema_view,
)
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from compliance import promotion_selectors as selectors
from compliance import promotions
from compliance.choices import ApiTokenScope, Decision, PromotionStatus
from compliance.models import Approval, PromotionRequest
from config.access import visibility_for
from config.errors import NotFound
from config.pagination import cursor_ordered_by
from config.schema import ErrorOutput
from registry import visible_selectors
from registry.models import ModelVersion

SCOPE = ApiTokenScope.APPROVE.value
PASSWORD_MAX_CHARS = 4096  # far above any real password; a megabyte never reaches the hasher


def _caller(request: Request) -> User:
    assert isinstance(request.user, User)  # noqa: S101  (IsAuthenticated has refused anyone else)
    return request.user


def _link(request: Request | None, route: str, /, **kwargs: Any) -> str:
    return str(reverse(route, kwargs=kwargs, request=request))


def _visible(
    user: User, promotion_id: int, held: selectors.HeldRoles | None = None
) -> PromotionRequest:
    promotion = selectors.promotion_for(user=user, request_id=promotion_id, held=held)
    if promotion is None:
        raise NotFound(f"no promotion request #{promotion_id}", code="promotion_not_found")
    return promotion


def _version(request: Request, name: str, version: int) -> ModelVersion:
    """The version to promote; one the caller may not see is "not found"."""
    return visible_selectors.version_visible_get(
        visibility=visibility_for(request.user), name=name, version=version
    )


# --- what the endpoints answer ----------------------------------------------------------


class _Sha256Field(serializers.CharField):
    """A sha256 hex column shown as ``sha256:<hex>``."""

    def to_representation(self, value: Any) -> str:
        return f"sha256:{value}"


@extend_schema_serializer(component_name="PromotionProgress")
class ProgressOutput(serializers.Serializer[Any]):
    counted = serializers.IntegerField(help_text="approvals that count toward the policy")
    # ``required`` shadows Field.required for the type checker only: the metaclass takes it.
    required = serializers.IntegerField(  # type: ignore[assignment]
        help_text="approvals the policy asks for"
    )
    missing = serializers.ListField(
        child=serializers.CharField(), help_text='what is still missing, e.g. "1 more risk_owner"'
    )
    summary = serializers.CharField(source="progress", help_text='e.g. "1 of 2 approvals"')


@extend_schema_serializer(component_name="PromotionRequest")
class PromotionOutput(serializers.Serializer[PromotionRequest]):
    id = serializers.IntegerField()
    status = serializers.CharField(
        help_text="draft, pending, approved, executing, promoted, rejected, withdrawn, expired "
        "or failed"
    )
    model = serializers.CharField(source="registered_model.name")
    version = serializers.IntegerField(source="version.version")
    alias = serializers.CharField()
    digest = _Sha256Field(
        source="model_digest", help_text="the model digest the request and its approvals are for"
    )
    risk_tier = serializers.CharField()
    break_glass = serializers.BooleanField(help_text="an emergency promotion without approvals")
    requested_by = serializers.CharField(source="requested_by.username")
    requested_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    executed_at = serializers.DateTimeField(allow_null=True)
    progress = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    @extend_schema_field(ProgressOutput)
    def get_progress(self, promotion: PromotionRequest) -> dict[str, Any]:
        return dict(ProgressOutput(selectors.promotion_summary(promotion)).data)

    def get_url(self, promotion: PromotionRequest) -> str:
        return _link(self.context.get("request"), "api-promotion-detail", promotion_id=promotion.pk)


@extend_schema_serializer(component_name="PromotionRequirement")
class RequirementOutput(serializers.Serializer[Any]):
    roles = serializers.ListField(child=serializers.CharField(), help_text="role keys, any of")
    count = serializers.IntegerField(help_text="distinct people holding one of the roles")


@extend_schema_serializer(component_name="PromotionPolicySnapshot")
class PolicyOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField(help_text="the policy the snapshot was taken from")
    alias = serializers.CharField()
    risk_tier = serializers.CharField()
    approvals = RequirementOutput(many=True)
    gates = serializers.DictField(help_text="docs/approvals.md, Gates")
    request_ttl_hours = serializers.IntegerField()
    approval_ttl_hours = serializers.IntegerField()


@extend_schema_serializer(component_name="PromotionApproval")
class ApprovalOutput(serializers.Serializer[Any]):  # Approval, listed with many=True
    approver = serializers.CharField(source="approver_name")
    decision = serializers.CharField(help_text="approve or reject")
    roles = serializers.ListField(
        child=serializers.CharField(),
        help_text="the roles the policy names that the approver held when deciding",
    )
    counts_toward = serializers.SerializerMethodField(
        help_text="the index in policy.approvals this approval fills; null if it does not count"
    )
    comment = serializers.CharField()
    digest = _Sha256Field(source="model_digest", help_text="the model digest that was approved")
    decided_at = serializers.DateTimeField()
    voided_at = serializers.DateTimeField(allow_null=True)
    void_reason = serializers.CharField()
    attestation_url = serializers.SerializerMethodField(help_text="the signed decision")

    def get_counts_toward(self, approval: Approval) -> int | None:
        if approval.voided_at is not None:
            return None
        counted: dict[int, int] = self.context["quorum"].counted
        return counted.get(approval.approver_id)

    def get_attestation_url(self, approval: Approval) -> str | None:
        if not approval.attestation_digest:
            return None
        return _link(
            self.context.get("request"),
            "api-attestation-detail",
            envelope_digest=approval.attestation_digest,
        )


@extend_schema_serializer(component_name="PromotionGate")
class GateOutput(serializers.Serializer[Any]):
    gate = serializers.CharField()
    passed = serializers.BooleanField()
    detail = serializers.CharField()


@extend_schema_serializer(component_name="PromotionEvent")
class TimelineOutput(serializers.Serializer[Any]):
    index = serializers.IntegerField(help_text="its index in the governance log")
    event_type = serializers.CharField(help_text="e.g. promotion.approved")
    occurred_at = serializers.DateTimeField()
    actor = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    reason = serializers.CharField()
    evidence = serializers.ListField(child=serializers.CharField(), help_text="sha256 digests")


@extend_schema_serializer(component_name="PromotionActions")
class ActionsOutput(serializers.Serializer[Any]):
    decide = serializers.BooleanField(help_text="you may approve or reject it now")
    withdraw = serializers.BooleanField(help_text="you may withdraw it now")


@extend_schema_serializer(component_name="PromotionRequestDetail")
class PromotionDetailOutput(PromotionOutput):
    """A promotion request with its policy snapshot, decisions, gates and logged history."""

    # The view puts the log's ``timeline`` and what the caller ``may`` do in the context.

    reason = serializers.CharField()
    previous_version = serializers.IntegerField(
        source="previous_version.version",
        allow_null=True,
        help_text="where the alias pointed when the request was made",
    )
    failure_reason = serializers.CharField()
    updated_at = serializers.DateTimeField()
    policy = PolicyOutput(help_text="the policy as it was when the request was made")
    approvals = serializers.SerializerMethodField()
    gates = GateOutput(
        many=True, source="gate_results", help_text="as last evaluated: at request or execution"
    )
    timeline = serializers.SerializerMethodField()
    you_may = serializers.SerializerMethodField()
    web_url = serializers.SerializerMethodField()
    version_url = serializers.SerializerMethodField()
    approve_url = serializers.SerializerMethodField()
    reject_url = serializers.SerializerMethodField()
    withdraw_url = serializers.SerializerMethodField()

    @extend_schema_field(ApprovalOutput(many=True))
    def get_approvals(self, promotion: PromotionRequest) -> list[Any]:
        context = {**self.context, "quorum": selectors.quorum_prefetched(promotion)}
        return list(ApprovalOutput(promotion.approvals.all(), many=True, context=context).data)

    @extend_schema_field(TimelineOutput(many=True))
    def get_timeline(self, promotion: PromotionRequest) -> list[Any]:
        return list(TimelineOutput(self.context["timeline"], many=True).data)

    @extend_schema_field(ActionsOutput)
    def get_you_may(self, promotion: PromotionRequest) -> dict[str, Any]:
        return dict(ActionsOutput(self.context["may"]).data)

    def get_web_url(self, promotion: PromotionRequest) -> str:
        return self._url("compliance:promotion-detail", request_id=promotion.pk)

    def get_version_url(self, promotion: PromotionRequest) -> str:
        name, number = promotion.registered_model.name, promotion.version.version
        return self._url("api-version-detail", name=name, version=number)

    def get_approve_url(self, promotion: PromotionRequest) -> str:
        return self._url("api-promotion-approve", promotion_id=promotion.pk)

    def get_reject_url(self, promotion: PromotionRequest) -> str:
        return self._url("api-promotion-reject", promotion_id=promotion.pk)

    def get_withdraw_url(self, promotion: PromotionRequest) -> str:
        return self._url("api-promotion-withdraw", promotion_id=promotion.pk)

    def _url(self, route: str, **kwargs: Any) -> str:
        return _link(self.context.get("request"), route, **kwargs)


def _detail(request: Request, promotion_id: int, *, status: int = 200) -> Response:
    """The request as ``PromotionDetailOutput`` says, read again (after a write, too)."""
    user = _caller(request)
    held = selectors.held_roles(user=user)
    promotion = _visible(user, promotion_id, held)
    context = {
        "request": request,
        "timeline": selectors.promotion_timeline(request=promotion),
        "may": {
            "decide": selectors.can_decide(user=user, request=promotion, held=held),
            "withdraw": selectors.can_withdraw(user=user, request=promotion),
        },
    }
    return Response(PromotionDetailOutput(promotion, context=context).data, status=status)


# --- the endpoints ----------------------------------------------------------------------


class PromotionFilter(django_filters.FilterSet):  # type: ignore[misc]  # untyped library
    status = django_filters.ChoiceFilter(choices=PromotionStatus.choices)
    model = django_filters.CharFilter(field_name="registered_model__name", help_text="its name")
    alias = django_filters.CharFilter()
    break_glass = django_filters.BooleanFilter()

    class Meta:
        model = PromotionRequest
        fields = ["status", "model", "alias", "break_glass"]


@extend_schema_view(get=extend_schema(operation_id="promotions_list"))
class PromotionListApi(generics.ListAPIView):  # type: ignore[type-arg]  # PromotionRequest
    """GET: the promotion requests one may see, newest first, with their quorum progress.
    POST: ask for an alias to point at a version (scope ``approve``); the people who can
    approve are notified."""

    required_scope = SCOPE  # POST only: GET needs ``read`` like every safe method
    queryset = PromotionRequest.objects.none()  # for the schema; get_queryset narrows
    serializer_class = PromotionOutput
    filter_backends = [DjangoFilterBackend]
    filterset_class = PromotionFilter
    pagination_class = cursor_ordered_by("-id")

    def get_queryset(self) -> QuerySet[PromotionRequest]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular building the schema
            return PromotionRequest.objects.none()
        return selectors.promotions_visible(user=_caller(self.request))

    @extend_schema_serializer(component_name="PromotionCreate")
    class CreateInput(serializers.Serializer[Any]):
        model = serializers.CharField(max_length=256, help_text="the registered model's name")
        version = serializers.IntegerField()
        alias = serializers.CharField(max_length=256, help_text="e.g. staging, production")
        reason = serializers.CharField(
            max_length=5000,
            required=False,
            default="",
            allow_blank=True,
            help_text="why; required (`reason_required`)",
        )

    @extend_schema(
        request=CreateInput,
        responses={201: PromotionDetailOutput, 404: ErrorOutput, 409: ErrorOutput},
        operation_id="promotion_create",
    )
    def post(self, request: Request) -> Response:
        params = self.CreateInput(data=request.data)
        params.is_valid(raise_exception=True)
        version = _version(
            request, params.validated_data["model"], params.validated_data["version"]
        )
        created = promotions.promotion_request_create(
            version=version,
            alias=params.validated_data["alias"],
            reason=params.validated_data["reason"],
            requester=_caller(request),
        )
        return _detail(request, created.pk, status=201)


class PromotionDetailApi(APIView):
    """One request: policy snapshot, approvals, what is missing, gates, its logged history."""

    @extend_schema(responses=PromotionDetailOutput, operation_id="promotion_retrieve")
    def get(self, request: Request, promotion_id: int) -> Response:
        return _detail(request, promotion_id)


@extend_schema_serializer(component_name="PromotionDecision")
class DecisionInput(serializers.Serializer[Any]):
    comment = serializers.CharField(
        max_length=5000,
        required=False,
        default="",
        allow_blank=True,
        help_text="why; required (`comment_required`)",
    )
    password = serializers.CharField(
        max_length=PASSWORD_MAX_CHARS,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="your password, entered again (step-up), also with an API token",
    )


class _DecisionApi(APIView):
    """Approve or reject, as the UI's decision form: signed, logged, bound to the digest."""

    required_scope = SCOPE
    decision: ClassVar[str]

    def post(self, request: Request, promotion_id: int) -> Response:
        user = _caller(request)
        promotion = _visible(user, promotion_id)
        params = DecisionInput(data=request.data)
        params.is_valid(raise_exception=True)
        promotions.promotion_request_decide(
            request_id=promotion.pk,
            approver=user,
            decision=self.decision,
            comment=params.validated_data["comment"],
            password=params.validated_data["password"],
        )
        return _detail(request, promotion.pk)


def _decision_schema(operation_id: str) -> Any:
    return extend_schema(
        request=DecisionInput,
        responses={200: PromotionDetailOutput, 409: ErrorOutput},
        operation_id=operation_id,
    )


@extend_schema_view(post=_decision_schema("promotion_approve"))
class PromotionApproveApi(_DecisionApi):
    """Approve; the approval that completes the quorum queues the execution."""

    decision = Decision.APPROVE


@extend_schema_view(post=_decision_schema("promotion_reject"))
class PromotionRejectApi(_DecisionApi):
    """Reject; one rejection ends the request."""

    decision = Decision.REJECT


class PromotionWithdrawApi(APIView):
    """The requester takes the request back, until it executes."""

    required_scope = SCOPE

    @extend_schema_serializer(component_name="PromotionWithdraw")
    class Input(serializers.Serializer[Any]):
        reason = serializers.CharField(
            max_length=1000, required=False, default="", allow_blank=True
        )

    @extend_schema(
        request=Input,
        responses={200: PromotionDetailOutput, 409: ErrorOutput},
        operation_id="promotion_withdraw",
    )
    def post(self, request: Request, promotion_id: int) -> Response:
        user = _caller(request)
        promotion = _visible(user, promotion_id)
        params = self.Input(data=request.data)
        params.is_valid(raise_exception=True)
        promotions.promotion_request_withdraw(
            request_id=promotion.pk, user=user, reason=params.validated_data["reason"]
        )
        return _detail(request, promotion.pk)


class PromotionBreakGlassApi(APIView):
    """An emergency promotion or rollback by Security Operations, without approvals: executed
    at once, marked as break-glass everywhere, and opening an incident to review."""

    required_scope = SCOPE

    @extend_schema_serializer(component_name="PromotionBreakGlass")
    class Input(PromotionListApi.CreateInput):
        password = serializers.CharField(
            max_length=PASSWORD_MAX_CHARS,
            trim_whitespace=False,
            style={"input_type": "password"},
            help_text="your password, entered again (step-up)",
        )

    @extend_schema(
        request=Input,
        responses={201: PromotionDetailOutput, 404: ErrorOutput, 409: ErrorOutput},
        operation_id="promotion_break_glass",
    )
    def post(self, request: Request) -> Response:
        params = self.Input(data=request.data)
        params.is_valid(raise_exception=True)
        version = _version(
            request, params.validated_data["model"], params.validated_data["version"]
        )
        created = promotions.promotion_break_glass(
            version=version,
            alias=params.validated_data["alias"],
            reason=params.validated_data["reason"],
            user=_caller(request),
            password=params.validated_data["password"],
        )
        return _detail(request, created.pk, status=201)
