"""What exists, over HTTP: registered models, versions, aliases, runs, datasets.

Every view asks ``config.access`` what the caller may see and hands that to one selector of
registry/visible_selectors.py, which narrows the query: what one may not see is a 404, in lists
and details alike. Lists are cursor-paginated and filtered with django-filter.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_serializer, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.access import visibility_for
from config.pagination import cursor_ordered_by
from config.schema import ErrorOutput
from provenance.visibility import Visibility
from registry import visible_selectors as selectors
from registry.api import filters
from registry.api.serializers import (
    AliasHistoryOutput,
    AliasOutput,
    DatasetDetailOutput,
    DatasetOutput,
    ModelOutput,
    RunOutput,
    VersionDetailOutput,
    VersionOutput,
    link,
)
from registry.models import AliasHistory, Dataset, ModelVersion, RegisteredModel, Run
from registry.services.reverify import model_version_reverify_request


def _visibility(request: Request) -> Visibility:
    return visibility_for(request.user)


class _VisibleList(generics.ListAPIView):  # type: ignore[type-arg]  # each subclass sets its model
    """A cursor-paginated, filtered list; ``select`` narrows it to what the caller may see."""

    filter_backends = [DjangoFilterBackend]

    def select(self, visibility: Visibility) -> QuerySet[Any]:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular building the schema
            return super().get_queryset()
        return self.select(_visibility(self.request))


def _none(model: type[Model]) -> QuerySet[Any]:
    """The class-level queryset, read by the schema generator only."""
    return model._default_manager.none()


# --- models -----------------------------------------------------------------------------


@extend_schema_view(get=extend_schema(operation_id="models_list"))
class ModelListApi(_VisibleList):
    """The registered models one may see, with their live version count and aliases."""

    queryset = _none(RegisteredModel)
    serializer_class = ModelOutput
    filterset_class = filters.ModelFilter
    pagination_class = cursor_ordered_by("name")

    def select(self, visibility: Visibility) -> QuerySet[RegisteredModel]:
        return selectors.models_visible(visibility=visibility)


class ModelDetailApi(APIView):
    """One registered model."""

    @extend_schema(responses=ModelOutput, operation_id="model_retrieve")
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_visible_get(visibility=_visibility(request), name=name)
        return Response(ModelOutput(model, context={"request": request}).data)


# --- versions ---------------------------------------------------------------------------


@extend_schema_view(get=extend_schema(operation_id="versions_list"))
class VersionListApi(_VisibleList):
    """The versions of a model, newest first: digest, hash status, aliases, run, links."""

    queryset = _none(ModelVersion)
    serializer_class = VersionOutput
    filterset_class = filters.VersionFilter
    pagination_class = cursor_ordered_by("-version")

    def select(self, visibility: Visibility) -> QuerySet[ModelVersion]:
        return selectors.versions_visible(visibility=visibility, name=self.kwargs["name"])


class VersionDetailApi(APIView):
    """One version, with the datasets its run used."""

    @extend_schema(responses=VersionDetailOutput, operation_id="version_retrieve")
    def get(self, request: Request, name: str, version: int) -> Response:
        found = selectors.version_visible_get(
            visibility=_visibility(request), name=name, version=version
        )
        return Response(VersionDetailOutput(found, context={"request": request}).data)


class VersionReverifyApi(APIView):
    """Queue a re-hash of the version's files and a re-verification of every attestation it
    depends on; the outcome is a registry-signed attestation (see the version's attestations)."""

    required_scope = "attest"

    @extend_schema_serializer(component_name="ReverifyQueued")
    class Output(serializers.Serializer[Any]):
        status = serializers.CharField(help_text="`queued`")
        version_url = serializers.CharField()
        attestations_url = serializers.CharField(help_text="where the outcome will appear")

    @extend_schema(
        request=None,
        responses={202: Output, 409: ErrorOutput},
        operation_id="version_reverify",
    )
    def post(self, request: Request, name: str, version: int) -> Response:
        found = selectors.version_visible_get(
            visibility=_visibility(request), name=name, version=version
        )
        model_version_reverify_request(version=found, requested_by=request.user.pk)
        body = {
            "status": "queued",
            "version_url": link(request, "api-version-detail", name=name, version=version),
            "attestations_url": link(request, "api-attestation-list")
            + f"?subject=sha256:{found.model_artifact.digest if found.model_artifact else ''}",
        }
        return Response(body, status=202)


# --- aliases ----------------------------------------------------------------------------


class AliasListApi(APIView):
    """Where each alias of a model points now."""

    @extend_schema(responses=AliasOutput(many=True), operation_id="aliases_list")
    def get(self, request: Request, name: str) -> Response:
        aliases = selectors.aliases_visible(visibility=_visibility(request), name=name)
        return Response(AliasOutput(aliases, many=True).data)


@extend_schema_view(get=extend_schema(operation_id="alias_history_list"))
class AliasHistoryApi(_VisibleList):
    """Every move of a model's aliases, newest first (who moved it, when the registry knows)."""

    queryset = _none(AliasHistory)
    serializer_class = AliasHistoryOutput
    filterset_class = filters.AliasHistoryFilter
    pagination_class = cursor_ordered_by("-changed_at", "-id")

    def select(self, visibility: Visibility) -> QuerySet[AliasHistory]:
        return selectors.alias_history_visible(visibility=visibility, name=self.kwargs["name"])


# --- runs and datasets ------------------------------------------------------------------


@extend_schema_view(get=extend_schema(operation_id="runs_list"))
class RunListApi(_VisibleList):
    """MLflow runs that produced a version one may see, newest first."""

    queryset = _none(Run)
    serializer_class = RunOutput
    filterset_class = filters.RunFilter
    pagination_class = cursor_ordered_by("-id")

    def select(self, visibility: Visibility) -> QuerySet[Run]:
        return selectors.runs_visible(visibility=visibility)


class RunDetailApi(APIView):
    """One run: parameters, metrics, the versions it produced and the datasets it used."""

    @extend_schema(responses=RunOutput, operation_id="run_retrieve")
    def get(self, request: Request, run_id: str) -> Response:
        run = selectors.run_visible_get(visibility=_visibility(request), run_id=run_id)
        return Response(RunOutput(run, context={"request": request}).data)


@extend_schema_view(get=extend_schema(operation_id="datasets_list"))
class DatasetListApi(_VisibleList):
    """MLflow dataset records used by runs one may see, with their sha256 once attested."""

    queryset = _none(Dataset)
    serializer_class = DatasetOutput
    filterset_class = filters.DatasetFilter
    pagination_class = cursor_ordered_by("name", "id")

    def select(self, visibility: Visibility) -> QuerySet[Dataset]:
        return selectors.datasets_visible(visibility=visibility)


class DatasetDetailApi(APIView):
    """One dataset record and the runs (one may see) that used it."""

    @extend_schema(responses=DatasetDetailOutput, operation_id="dataset_retrieve")
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = selectors.dataset_visible_get(
            visibility=_visibility(request), dataset_id=dataset_id
        )
        return Response(DatasetDetailOutput(dataset, context={"request": request}).data)
