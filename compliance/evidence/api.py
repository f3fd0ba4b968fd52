"""Evidence bundles over HTTP: ask for one, follow its progress, download it.

Lists and details are narrowed to the bundles the caller may see (compliance/evidence/
selectors.py): another model's bundle is a 404. Asking for a bundle with a token needs the
``evidence`` scope; downloading needs ``read``; every download is a governance-log event.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.api import schema  # noqa: F401  (registers the Bearer scheme with drf-spectacular)
from compliance.choices import EvidenceScope, EvidenceStatus
from compliance.evidence import build, selectors, services
from compliance.evidence.downloads import evidence_file_response
from compliance.models import EvidenceBundle
from config.errors import NotFound
from config.pagination import Cursor


def _caller(request: Request) -> User:
    assert isinstance(request.user, User)  # noqa: S101  (IsAuthenticated ran first)
    return request.user


class ProgressOutput(serializers.Serializer[Any]):
    step = serializers.CharField(help_text="queued, attestations, log, facts, report, ready")
    done = serializers.IntegerField()
    total = serializers.IntegerField()


@extend_schema_serializer(component_name="EvidenceBundle")
class BundleOutput(serializers.Serializer[EvidenceBundle]):
    id = serializers.IntegerField()
    scope = serializers.ChoiceField(choices=EvidenceScope.choices)
    title = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    status = serializers.ChoiceField(choices=EvidenceStatus.choices)
    progress = serializers.SerializerMethodField()
    requested_by = serializers.CharField(source="requested_by_name")
    requested_at = serializers.DateTimeField()
    generated_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    tree_size = serializers.SerializerMethodField(help_text="log checkpoint the proofs are against")
    sha256 = serializers.CharField(help_text="of the zip; empty until ready")
    size = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    download_url = serializers.SerializerMethodField()

    def get_title(self, bundle: EvidenceBundle) -> str:
        return build.title_of(bundle)

    def get_model(self, bundle: EvidenceBundle) -> str | None:
        model = bundle.registered_model or (
            bundle.version.registered_model if bundle.version else None
        )
        return model.name if model else None

    def get_version(self, bundle: EvidenceBundle) -> int | None:
        return bundle.version.version if bundle.version else None

    @extend_schema_field(ProgressOutput)
    def get_progress(self, bundle: EvidenceBundle) -> dict[str, Any]:
        progress = bundle.progress or {}
        return {
            "step": str(progress.get("step", "")),
            "done": int(progress.get("done", 0)),
            "total": int(progress.get("total", 1)),
        }

    def get_tree_size(self, bundle: EvidenceBundle) -> int | None:
        return bundle.checkpoint.tree_size if bundle.checkpoint else None

    def get_download_url(self, bundle: EvidenceBundle) -> str | None:
        if bundle.status != EvidenceStatus.READY:
            return None
        return reverse("api-evidence-download", args=[bundle.pk])


class BundleInput(serializers.Serializer[Any]):
    scope = serializers.ChoiceField(choices=EvidenceScope.choices)
    model = serializers.CharField(required=False, max_length=256)
    version = serializers.IntegerField(required=False, min_value=1)
    period_start = serializers.DateTimeField(required=False)
    period_end = serializers.DateTimeField(required=False)


class BundleCursor(Cursor):
    ordering = "-id"


class EvidenceListApi(generics.ListAPIView):  # type: ignore[type-arg]  # EvidenceBundle
    """Bundles you may see, newest first (GET); ask for a new one (POST, ``evidence`` scope)."""

    required_scope = "evidence"
    queryset = EvidenceBundle.objects.none()  # for the schema; get_queryset narrows
    serializer_class = BundleOutput
    pagination_class = BundleCursor

    def get_queryset(self) -> QuerySet[EvidenceBundle]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular building the schema
            return EvidenceBundle.objects.none()
        return selectors.bundles_visible(user=self.request.user)

    @extend_schema(operation_id="evidence_list")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=BundleInput,
        responses={202: BundleOutput},
        operation_id="evidence_create",
        description="Queues the build; follow `progress` on the bundle, then download it.",
    )
    def post(self, request: Request) -> Response:
        data = BundleInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        bundle = services.evidence_request(
            user=_caller(request),
            scope=values["scope"],
            model=values.get("model"),
            version=values.get("version"),
            period_start=values.get("period_start"),
            period_end=values.get("period_end"),
        )
        fresh = selectors.bundle_get(user=request.user, bundle_id=bundle.pk)
        return Response(BundleOutput(fresh).data, status=202)


def _visible(request: Request, bundle_id: int) -> EvidenceBundle:
    bundle = selectors.bundle_get(user=request.user, bundle_id=bundle_id)
    if bundle is None:
        raise NotFound("no such evidence bundle", code="evidence_not_found")
    return bundle


class EvidenceDetailApi(APIView):
    """One bundle: its status and build progress, and where to download it once ready."""

    @extend_schema(responses=BundleOutput, operation_id="evidence_retrieve")
    def get(self, request: Request, bundle_id: int) -> Response:
        bundle = _visible(request, bundle_id)
        services.evidence_viewed(bundle=bundle, user=_caller(request))
        return Response(BundleOutput(bundle).data)


class EvidenceDownloadApi(APIView):
    """The bundle's zip (``application/zip``); logged as ``evidence.downloaded``."""

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY),
            409: OpenApiResponse(description="the bundle is not ready"),
        },
        operation_id="evidence_download",
    )
    def get(self, request: Request, bundle_id: int) -> FileResponse:
        bundle, handle = services.evidence_open(bundle_id=bundle_id, user=_caller(request))
        return evidence_file_response(bundle, handle)
