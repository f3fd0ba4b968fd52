"""The OpenAPI schema's account of errors, in one place rather than on every view.

Every API error has the one format of config/errors.py. Which statuses an operation can answer
with follows from how the API is wired, so a postprocessing hook of drf-spectacular documents
them for every ``/api/v1/`` operation: 401 (a Bearer token that does not authenticate), 403
(no credentials, or a token without the scope; not on public endpoints), 429 (throttled), 400
when there is input to refuse (query parameters or a body), and 404 when the path names
something. Views declare the rest themselves (a 409, a 404 from a query parameter) with
:class:`ErrorOutput`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

METHODS = {"get", "put", "patch", "post", "delete", "head", "options"}
REASONS = {
    "400": "Invalid input (the code says which).",
    "401": "The API token was refused: malformed, unknown, expired, revoked.",
    "403": "Not signed in, or the API token lacks the scope.",
    "404": "Not found, or not visible to you: the two are not told apart.",
    "429": "Throttled; Retry-After says when to try again.",
}


@extend_schema_serializer(component_name="Error")
class ErrorOutput(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="stable and machine-readable")
    detail = serializers.CharField(help_text="for people")
    # ``errors`` shadows Serializer.errors for the type checker only: the metaclass takes it.
    errors = serializers.JSONField(  # type: ignore[assignment]
        required=False, help_text="per field, for invalid input"
    )


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "stable and machine-readable"},
        "detail": {"type": "string", "description": "for people"},
        "errors": {"description": "per field, for invalid input"},
    },
    "required": ["code", "detail"],
}


def error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            if method in METHODS:
                _document_errors(path, operation)
    return result


def _document_errors(path: str, operation: dict[str, Any]) -> None:
    codes = {"401", "429"}
    if {} not in operation.get("security", []):  # a public endpoint refuses no one
        codes.add("403")
    parameters = operation.get("parameters", [])
    if "requestBody" in operation or any(p.get("in") == "query" for p in parameters):
        codes.add("400")
    if "{" in path:
        codes.add("404")
    responses = operation.setdefault("responses", {})
    for code in sorted(codes):
        responses.setdefault(
            code,
            {
                "description": REASONS[code],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        )
