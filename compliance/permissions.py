"""What an API token may do (how often it may call: compliance/throttles.py).

Scopes. A view declares the scope its writes need::

    class AttestationSubmitApi(APIView):
        required_scope = "attest"

Safe methods (GET, HEAD, OPTIONS) need ``read``. An unsafe method on a view that declares no
scope (or ``required_scope = None``) is refused to every token: a new write endpoint is closed to
machines until someone decides which scope opens it. People signed in through the browser are
not limited by scopes; their roles decide. ``HasTokenScope`` is in DRF's default permission
classes; a view that sets its own ``permission_classes`` must list it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from compliance.choices import ApiTokenScope
from compliance.models import ApiToken

if TYPE_CHECKING:
    # DRF imports this module while rest_framework.views is still loading (its defaults name
    # these classes), so the view class is for the type checker only.
    from rest_framework.views import APIView


def scope_needed(view: APIView, method: str) -> str | None:
    """The scope a token needs for ``method`` on ``view``; None means tokens are refused."""
    if method in SAFE_METHODS:
        return ApiTokenScope.READ.value
    declared: str | None = getattr(view, "required_scope", None)
    return declared


class HasTokenScope(BasePermission):
    """Token requests need the view's scope; session requests pass (see the module docstring)."""

    message = "this API token may not do that"
    code = "token_scope_missing"

    def has_permission(self, request: Request, view: APIView) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        needed = scope_needed(view, request.method or "")
        if needed is None:
            self.message = "API tokens cannot be used for this action; sign in to do it"
            self.code = "token_not_accepted"
            return False
        if needed not in token.scopes:
            self.message = f"this API token lacks the {needed!r} scope"
            return False
        return True
