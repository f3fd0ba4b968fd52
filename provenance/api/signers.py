"""Trusted signers over HTTP: whose signatures the registry accepts, for which predicate types.

Open to anyone holding a role (an outsider gets an empty list); the public keys and Sigstore
identities are what a pipeline owner checks before wondering why an upload was refused.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.access import visibility_for
from provenance import selectors


@extend_schema_serializer(component_name="TrustedSigner")
class SignerOutput(serializers.Serializer[Any]):
    name = serializers.CharField()
    kind = serializers.CharField(help_text="`key` or `sigstore`")
    key_id = serializers.CharField()
    public_key = serializers.JSONField(allow_null=True, help_text="securesystemslib key dict")
    identity = serializers.CharField(help_text="Sigstore certificate identity")
    issuer = serializers.CharField(help_text="Sigstore OIDC issuer")
    predicate_types = serializers.ListField(child=serializers.CharField())
    may_register_datasets = serializers.BooleanField()
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class SignerListApi(APIView):
    """The trusted signers, active and retired."""

    @extend_schema(responses=SignerOutput(many=True), operation_id="signers_list")
    def get(self, request: Request) -> Response:
        signers = selectors.trusted_signers(visibility=visibility_for(request.user))
        return Response(SignerOutput(signers, many=True).data)
