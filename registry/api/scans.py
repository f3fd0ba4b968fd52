"""A version's latest scan for embedded code (docs/scanning.md), and asking for a new one."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.access import visibility_for
from config.errors import NotFound
from config.schema import ErrorOutput
from registry import selectors as registry_selectors
from registry import visible_selectors as selectors
from registry.api.serializers import link
from registry.services import model_version_scan_request


@extend_schema_serializer(component_name="ScanOutput")
class ScanOutput(serializers.Serializer[Any]):
    verdict = serializers.ChoiceField(choices=["clean", "warning", "unknown", "unsafe"])
    policy = serializers.CharField()
    scanned_at = serializers.DateTimeField()
    scanners = serializers.ListField(child=serializers.DictField())
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="files per verdict")
    model_digest = serializers.CharField()
    attestation = serializers.CharField(help_text="URL of the registry-signed test-result")
    files = serializers.ListField(
        child=serializers.DictField(),
        help_text="per file: path, format, verdict, findings, skipped, errors",
    )


class VersionScanApi(APIView):
    """GET: the latest scan of the files the version has now. POST: scan them again."""

    required_scope = "attest"

    @extend_schema(responses={200: ScanOutput, 404: ErrorOutput}, operation_id="version_scan")
    def get(self, request: Request, name: str, version: int) -> Response:
        found = selectors.version_visible_get(
            visibility=visibility_for(request.user), name=name, version=version
        )
        scan = registry_selectors.version_scan(version=found)
        if scan is None:
            raise NotFound(
                f"{name}/{version} has not been scanned yet ({found.get_scan_status_display()})",
                code="not_scanned",
            )
        digest = scan.attestation.envelope_digest
        return Response(
            {
                "verdict": scan.verdict,
                "policy": scan.policy,
                "scanned_at": scan.scanned_at,
                "scanners": scan.scanners,
                "counts": scan.counts,
                "model_digest": f"sha256:{found.model_artifact.digest}"
                if found.model_artifact
                else "",
                "attestation": link(request, "api-attestation-detail", envelope_digest=digest),
                "files": scan.report.get("files", []),
            }
        )

    @extend_schema_serializer(component_name="ScanQueued")
    class Queued(serializers.Serializer[Any]):
        status = serializers.CharField(help_text="`queued`")
        scan_url = serializers.CharField()

    @extend_schema(
        request=None, responses={202: Queued, 409: ErrorOutput}, operation_id="version_rescan"
    )
    def post(self, request: Request, name: str, version: int) -> Response:
        found = selectors.version_visible_get(
            visibility=visibility_for(request.user), name=name, version=version
        )
        model_version_scan_request(version=found)
        url = link(request, "api-version-scan", name=name, version=version)
        return Response({"status": "queued", "scan_url": url}, status=202)
