"""Lineage over HTTP: the graph around a node, the path between two, and impact (JSON or CSV).

A node is named as in docs/api.md: ``dataset:sha256:<hex>`` (or ``dataset:<id>``, the
registry's dataset record), ``model_version:<name>/<version>``, ``run:<id>``,
``alias:<name>@<alias>``, ``evaluation:<digest>``, ``base_model:sha256:<hex>``, or a bare
``sha256:<hex>`` for whatever holds that digest. Each walk is one recursive query in the
database; what the caller may not see is cut out of the answer (provenance/selectors/
lineage_visible.py), and a start node they may not see is "not found".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.access import visibility_for
from config.renderers import OrjsonRenderer
from config.schema import ErrorOutput
from provenance import selectors as provenance_selectors
from provenance.selectors.lineage import MAX_DEPTH, EdgeRow, GraphRows, NodeRow
from registry import visible_selectors as selectors
from registry.api.serializers import (
    SENTINEL,
    AttestationRefOutput,
    GraphOutput,
    LinkTemplate,
    NodeOutput,
    link,
)

DIRECTIONS = ["upstream", "downstream", "both"]
NODE_HELP = "a node: `<kind>:<key>` (e.g. `model_version:fraud/3`) or `sha256:<hex>`"
DEPTH_HELP = f"edges to walk, 1 to {MAX_DEPTH}"


class _Body:
    """Builds the JSON of nodes, edges and attestation references by hand, as the serializers
    in registry/api/serializers.py (which document it) would: links from a prefix reversed
    once per request, datetimes as DRF writes them. A few hundred rows cost a few hundred
    microseconds, where the serializers took tens of milliseconds."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self._attestation_url = LinkTemplate(request, "api-attestation-detail", "envelope_digest")
        self._version_url: tuple[str, str, str] | None = None
        self._datetime = serializers.DateTimeField()
        self._times: dict[datetime, str] = {}

    def node(self, node: NodeRow, depth_of: dict[int, int]) -> dict[str, Any]:
        return {
            "ref": f"{node.kind}:{node.key}",
            "kind": node.kind,
            "key": node.key,
            "label": node.label,
            "digest": node.digest,
            "depth": depth_of.get(node.id, 0),
        }

    def edge(self, edge: EdgeRow, refs: dict[int, str]) -> dict[str, Any]:
        return {
            "upstream": refs[edge.upstream_id],
            "downstream": refs[edge.downstream_id],
            "relation": edge.relation,
            "created_at": self.time(edge.created_at),
            "ended_at": self.time(edge.ended_at),
            "attestation": self.attestation(edge),
        }

    def attestation(self, edge: EdgeRow) -> dict[str, Any]:
        digest = edge.envelope_digest
        return {
            "envelope_digest": digest,
            "predicate_type": edge.predicate_type,
            "signer": edge.signer if edge.signer is not None else "registry",
            "verification_status": edge.verification_status,
            "url": self._attestation_url(digest),
        }

    def version_url(self, model: str, number: int) -> str:
        if "/" in model or not model:  # reverse() refuses these: let it say so
            return link(self.request, "api-version-detail", name=model, version=number)
        if self._version_url is None:
            url = link(self.request, "api-version-detail", name=SENTINEL, version=0)
            prefix, _, rest = url.rpartition(SENTINEL)
            middle, _, suffix = rest.rpartition("0")
            self._version_url = (prefix, middle, suffix)
        prefix, middle, suffix = self._version_url
        return f"{prefix}{quote(model, safe=_PATH_SAFE)}{middle}{number}{suffix}"

    def time(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        text = self._times.get(value)
        if text is None:
            text = self._times[value] = self._datetime.to_representation(value)
        return text

    def graph(self, graph: GraphRows) -> dict[str, Any]:
        depth_of = graph.depth_of
        refs = {pk: node.ref for pk, node in graph.known.items()}
        return {
            "start": [self.node(node, depth_of) for node in graph.start],
            "nodes": [self.node(node, depth_of) for node in graph.nodes],
            "edges": [self.edge(edge, refs) for edge in graph.edges],
        }


# The characters reverse() leaves unquoted in a path (django.urls.resolvers: RFC 3986
# sub-delimiters and "/~:@").
_PATH_SAFE = "!$&'()*+,;=/~:@"


class LineageApi(APIView):
    """Everything upstream and/or downstream of a node, to a depth: nodes, and edges each with
    the attestation that proves it and that attestation's verification status."""

    # DRF's renderers, with its JSON written by orjson (the same bytes: config/renderers.py).
    renderer_classes = [OrjsonRenderer, BrowsableAPIRenderer]

    @extend_schema_serializer(component_name="LineageQuery")
    class Input(serializers.Serializer[Any]):
        node = serializers.CharField(max_length=700, help_text=NODE_HELP)
        direction = serializers.ChoiceField(choices=DIRECTIONS, default="both")
        depth = serializers.IntegerField(default=10, help_text=DEPTH_HELP)

    @extend_schema(
        parameters=[Input],
        responses={200: GraphOutput, 404: ErrorOutput},
        operation_id="lineage_graph",
    )
    def get(self, request: Request) -> Response:
        params = self.Input(data=request.query_params)
        params.is_valid(raise_exception=True)
        graph = selectors.lineage_visible(
            ref=params.validated_data["node"],
            direction=params.validated_data["direction"],
            depth=params.validated_data["depth"],
            visibility=visibility_for(request.user),
        )
        return Response(_Body(request).graph(graph))


class LineagePathApi(APIView):
    """The edges on the paths from one node down to another (or back up): how a dataset
    reached a model version, say."""

    renderer_classes = [OrjsonRenderer, BrowsableAPIRenderer]

    @extend_schema_serializer(component_name="LineagePathQuery")
    class Input(serializers.Serializer[Any]):
        to = serializers.CharField(max_length=700, help_text=NODE_HELP)

        def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
            # ``from`` is a Python keyword: it cannot be declared as a class attribute.
            fields = super().get_fields()
            source = serializers.CharField(max_length=700, help_text=NODE_HELP)
            return {"from": source, **fields}

    @extend_schema(
        parameters=[Input],
        responses={200: GraphOutput, 404: ErrorOutput},
        operation_id="lineage_path",
    )
    def get(self, request: Request) -> Response:
        params = self.Input(data=request.query_params)
        params.is_valid(raise_exception=True)
        graph = selectors.lineage_path_visible(
            source=params.validated_data["from"],
            target=params.validated_data["to"],
            visibility=visibility_for(request.user),
        )
        return Response(_Body(request).graph(graph))


# --- impact -----------------------------------------------------------------------------

CSV_COLUMNS = ["model", "version", "digest", "alias", "since", "attestation"]


@extend_schema_serializer(component_name="ImpactedVersion")
class ImpactedVersionOutput(serializers.Serializer[Any]):
    model = serializers.CharField()
    version = serializers.IntegerField()
    ref = serializers.CharField()
    digest = serializers.CharField(allow_null=True)
    depth = serializers.IntegerField(help_text="edges away from the start")
    url = serializers.CharField()
    attestations = AttestationRefOutput(many=True, help_text="proving the edges into it")


@extend_schema_serializer(component_name="ImpactedAlias")
class ImpactedAliasOutput(serializers.Serializer[Any]):
    model = serializers.CharField()
    alias = serializers.CharField()
    version = serializers.IntegerField()
    digest = serializers.CharField(allow_null=True)
    since = serializers.DateTimeField(help_text="when the registry saw it point there")
    attestation = AttestationRefOutput(help_text="what proves it points there")


@extend_schema_serializer(component_name="Impact")
class ImpactOutput(serializers.Serializer[Any]):
    start = NodeOutput(many=True)
    model_versions = ImpactedVersionOutput(many=True)
    aliases = ImpactedAliasOutput(many=True)


class ImpactCsvRenderer(BaseRenderer):
    """The impact as CSV, one row per (version, alias) — a version no alias points at gets
    one row with the alias empty and the attestations proving it reached."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for version in data["model_versions"]:
            aliases = [a for a in data["aliases"] if a["model"] == version["model"]]
            aliases = [a for a in aliases if a["version"] == version["version"]]
            base = [version["model"], version["version"], version["digest"] or ""]
            for alias in aliases:
                proof = alias["attestation"]["envelope_digest"]
                writer.writerow([*base, alias["alias"], alias["since"], proof])
            if not aliases:
                proofs = " ".join(a["envelope_digest"] for a in version["attestations"])
                writer.writerow([*base, "", "", proofs])
        return out.getvalue().encode()


def _version_number(node: NodeRow) -> tuple[str, int]:
    model, _, number = node.key.rpartition("/")
    return model, int(number) if number.isdigit() else 0


def _impact_body(report: provenance_selectors.ImpactReport, request: Request) -> dict[str, Any]:
    body = _Body(request)
    versions = []
    for node in report.versions:
        model, number = _version_number(node)
        proofs = report.proofs.get(node.id, [])
        versions.append(
            {
                "model": model,
                "version": number,
                "ref": node.ref,
                "digest": node.digest,
                "depth": report.depth_of.get(node.id, 0),
                "url": body.version_url(model, number),
                "attestations": [body.attestation(edge) for edge in proofs],
            }
        )
    aliases = []
    for edge, version, alias in report.aliases:
        model, number = _version_number(version)
        aliases.append(
            {
                "model": model,
                "alias": alias.key.rpartition("@")[2],
                "version": number,
                "digest": version.digest,
                "since": body.time(edge.created_at),
                "attestation": body.attestation(edge),
            }
        )
    return {
        "start": [body.node(node, report.depth_of) for node in report.start],
        "model_versions": versions,
        "aliases": aliases,
    }


class LineageImpactApi(APIView):
    """What a node (a dataset found poisoned, say) fed, at any depth: every model version
    downstream, and every alias pointing at one of them now, each with the attestation that
    proves it. JSON, or CSV with ``?format=csv`` or ``Accept: text/csv``."""

    renderer_classes = [OrjsonRenderer, ImpactCsvRenderer]

    @extend_schema_serializer(component_name="LineageImpactQuery")
    class Input(serializers.Serializer[Any]):
        node = serializers.CharField(max_length=700, help_text=NODE_HELP)
        depth = serializers.IntegerField(default=MAX_DEPTH, help_text=DEPTH_HELP)
        format = serializers.ChoiceField(choices=["json", "csv"], required=False)

    @extend_schema(
        parameters=[Input],
        responses={
            (200, "application/json"): ImpactOutput,
            (200, "text/csv"): OpenApiTypes.STR,
            (404, "application/json"): ErrorOutput,
        },
        operation_id="lineage_impact",
    )
    def get(self, request: Request) -> Response:
        params = self.Input(data=request.query_params)
        params.is_valid(raise_exception=True)
        report = selectors.lineage_impact_visible(
            ref=params.validated_data["node"],
            depth=params.validated_data["depth"],
            visibility=visibility_for(request.user),
        )
        return Response(_impact_body(report, request))

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # Errors keep the one error format, in JSON, whatever was asked for.
        if response.status_code >= 400 and isinstance(
            getattr(request, "accepted_renderer", None), ImpactCsvRenderer
        ):
            request.accepted_renderer = OrjsonRenderer()
            request.accepted_media_type = OrjsonRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
