"""API tokens over HTTP, for their owner: list, create, show, revoke.

Every query is narrowed to the caller's own tokens: another person's token is a 404, exactly
like one that does not exist. Creating and revoking need a signed-in person: no token scope
opens them, so a leaked token cannot mint itself a successor with more scopes or a later expiry.
The secret is in the creation response only, which is marked ``Cache-Control: no-store``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import selectors, tokens
from compliance.api import schema  # noqa: F401  (registers the Bearer scheme with drf-spectacular)
from compliance.choices import ApiTokenScope
from compliance.models import ApiToken
from config.errors import NotFound


def _owner(request: Request) -> User:
    """The signed-in caller (IsAuthenticated has already refused anyone else)."""
    assert isinstance(request.user, User)  # noqa: S101  (guaranteed by the permission classes)
    return request.user


def _own_token(request: Request, prefix: str) -> ApiToken:
    token = selectors.api_token_of(user=_owner(request), prefix=prefix)
    if token is None:
        raise NotFound(f"you have no API token {prefix!r}", code="token_not_found")
    return token


@extend_schema_serializer(component_name="ApiToken")
class TokenOutput(serializers.Serializer[ApiToken]):
    prefix = serializers.CharField(help_text="public part of the token; names it")
    name = serializers.CharField()
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiTokenScope.choices))
    status = serializers.CharField(help_text="active, expired or revoked")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True, help_text="to the minute")
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked_by_name = serializers.CharField()


class TokenListApi(APIView):
    """Your API tokens (GET, with a session or a ``read`` token); a new one (POST, signed in)."""

    required_scope = None  # POST: no token may create tokens

    @extend_schema_serializer(component_name="ApiTokenList")
    class ListOutput(serializers.Serializer[Any]):
        tokens = TokenOutput(many=True)

    @extend_schema_serializer(component_name="ApiTokenCreate")
    class CreateInput(serializers.Serializer[Any]):
        name = serializers.CharField(max_length=tokens.NAME_MAX_CHARS)
        scopes = serializers.ListField(
            child=serializers.ChoiceField(choices=ApiTokenScope.choices), allow_empty=False
        )
        expires_in_days = serializers.IntegerField(
            min_value=1, help_text="days until it expires, at most API_TOKEN_MAX_DAYS (90)"
        )

    @extend_schema_serializer(component_name="ApiTokenCreated")
    class CreateOutput(serializers.Serializer[Any]):
        token = TokenOutput()
        secret = serializers.CharField(help_text="the whole token, shown this once only")

    @extend_schema(responses=ListOutput, operation_id="api_tokens_list")
    def get(self, request: Request) -> Response:
        owned = selectors.api_tokens_of(user=_owner(request))
        return Response({"tokens": [TokenOutput(token).data for token in owned]})

    @extend_schema(
        request=CreateInput, responses={201: CreateOutput}, operation_id="api_token_create"
    )
    def post(self, request: Request) -> Response:
        params = self.CreateInput(data=request.data)
        params.is_valid(raise_exception=True)
        owner = _owner(request)
        issued = tokens.api_token_create(
            user=owner,
            name=params.validated_data["name"],
            scopes=params.validated_data["scopes"],
            expires_in_days=params.validated_data["expires_in_days"],
            acting_user=owner,
        )
        body = {"token": TokenOutput(issued.token).data, "secret": issued.secret}
        response = Response(body, status=201)
        add_never_cache_headers(response)
        return response


class TokenDetailApi(APIView):
    """One of your API tokens, by its prefix."""

    @extend_schema(responses=TokenOutput, operation_id="api_token_retrieve")
    def get(self, request: Request, prefix: str) -> Response:
        return Response(TokenOutput(_own_token(request, prefix)).data)


class TokenRevokeApi(APIView):
    """Revoke one of your API tokens at once; it stays listed, as revoked."""

    required_scope = None  # no token may revoke tokens

    @extend_schema_serializer(component_name="ApiTokenRevoke")
    class Input(serializers.Serializer[Any]):
        reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)

    @extend_schema(request=Input, responses=TokenOutput, operation_id="api_token_revoke")
    def post(self, request: Request, prefix: str) -> Response:
        params = self.Input(data=request.data)
        params.is_valid(raise_exception=True)
        token = _own_token(request, prefix)
        revoked = tokens.api_token_revoke(
            token=token, acting_user=_owner(request), reason=params.validated_data["reason"]
        )
        return Response(TokenOutput(revoked).data)
