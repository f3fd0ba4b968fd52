"""DRF authentication by API token: ``Authorization: Bearer smr_…``.

A request without a Bearer header is left to the next authenticator (the browser's session). A
Bearer token that does not authenticate is a 401 with ``WWW-Authenticate: Bearer`` (RFC 6750)
and a code: ``token_invalid``, ``token_revoked``, ``token_expired`` or ``token_owner_inactive``.
The presented token is never logged; only the public prefix of a well-formed one is.

DRF imports this module while ``rest_framework.views`` is itself loading (its defaults name this
class), so nothing that imports ``rest_framework.views`` may be imported here at module level.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from compliance.models import ApiToken

logger = logging.getLogger(__name__)

SCHEME = "Bearer"


def _bearer_credentials(request: Request) -> str | None:
    """The credentials of a ``Bearer`` Authorization header, or None for any other scheme."""
    header = str(request.META.get("HTTP_AUTHORIZATION", ""))
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != SCHEME.lower():
        return None
    return credentials.strip()


class ApiTokenAuthentication(BaseAuthentication):
    """Authenticates a request as the token's owner; ``request.auth`` is the ``ApiToken``."""

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        # config.errors (via compliance.tokens) imports rest_framework.views: see the docstring.
        from compliance import tokens  # noqa: PLC0415

        presented = _bearer_credentials(request)
        if presented is None:
            return None
        try:
            token = tokens.api_token_authenticate(presented=presented)
        except tokens.TokenRefused as refusal:
            prefix = tokens.prefix_of(presented) or "-"
            logger.info("API token refused: %s (prefix %s)", refusal.code, prefix)
            raise AuthenticationFailed(refusal.detail, code=refusal.code) from None
        return token.user, token

    def authenticate_header(self, request: Request) -> str | None:
        # Only a request that tried a token gets a 401 and a challenge; one without credentials
        # keeps DRF's 403 ``not_authenticated``, as the API has always answered browsers.
        if _bearer_credentials(request) is None:
            return None
        return f'{SCHEME} realm="api", error="invalid_token"'
