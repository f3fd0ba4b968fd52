"""One error format for the whole service.

Services raise :class:`DomainError` subclasses; the DRF exception handler and the plain-Django
helper below turn them, and DRF's own exceptions, into ``{"code": ..., "detail": ...}`` with the
right status. ``code`` is stable and machine-readable; ``detail`` is for people.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_default_handler

from config.middleware import current_request_id


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "invalid"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code


class InvalidInput(DomainError):
    status = 400
    default_code = "invalid"


class Unauthenticated(DomainError):
    status = 401
    default_code = "unauthenticated"


class Forbidden(DomainError):
    status = 403
    default_code = "forbidden"


class NotFound(DomainError):
    status = 404
    default_code = "not_found"


class Conflict(DomainError):
    status = 409
    default_code = "conflict"


class Unavailable(DomainError):
    status = 503
    default_code = "unavailable"


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"code": code, "detail": detail}


def error_json(exc: DomainError) -> JsonResponse:
    """The plain-Django twin of the DRF handler, for views outside DRF (webhooks, health)."""
    return JsonResponse(error_body(exc.code, exc.detail), status=exc.status)


@csrf_exempt  # it changes nothing; a POST there deserves the same JSON 404 as a GET
def api_not_found(request: HttpRequest, unmatched: str = "") -> JsonResponse:
    """A path under ``/api/`` that no endpoint serves (``/api/v1/datasets/abc``, say): the API's
    own 404, in its format, rather than Django's HTML page."""
    return error_json(NotFound("there is nothing at this address", code="not_found"))


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 page, but for a path under ``/api/`` the API's format: a client reading
    JSON gets JSON, with the request id that ties it to the server's log."""
    if not request.path.startswith("/api/"):
        return defaults.server_error(request)
    return JsonResponse(
        error_body(
            "server_error",
            f"the server failed to answer (request {current_request_id()}); the error is logged",
        ),
        status=500,
    )


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.detail), status=exc.status)
    # Django's own (from get_object_or_404, or DRF's renderer choice for ``?format=``) get the
    # format too: DRF's handler would answer them with a bare ``{"detail"}``.
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return Response(error_body("request_too_large", str(exc)), status=413)
    elif isinstance(exc, SuspiciousOperation | BadRequest):
        # Django's refusals of a request's shape (too many fields or files, say): the
        # client's error, in the API's format rather than Django's HTML page.
        return Response(error_body("bad_request", str(exc) or "bad request"), status=400)
    response = drf_default_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        response.data = {"code": "invalid", "detail": "Invalid input.", "errors": exc.detail}
    elif isinstance(exc, drf_exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = error_body(str(code), str(exc.detail))
    return response
