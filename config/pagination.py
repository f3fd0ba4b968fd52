"""Cursor pagination for every list of the API.

A cursor stays correct while rows are added (an offset would skip or repeat them), and costs
the same on the thousandth page as on the first. A cursor the client made up is a 400
``invalid_cursor`` in the error format, never a 404 or, worse, a database error: its position
is checked against the ordering column before it reaches SQL.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import connection, models
from rest_framework import exceptions as drf_exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.views import APIView

from config.errors import InvalidInput


class Cursor(CursorPagination):
    """Pages of 50 (``page_size`` up to 500); subclasses set ``ordering``."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(
        self, queryset: Any, request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        try:
            cursor = self.decode_cursor(request)
        except drf_exceptions.NotFound:
            raise _invalid() from None
        if cursor is not None and cursor.position is not None:
            _check_position(queryset.model, self.ordering, str(cursor.position))
        return super().paginate_queryset(queryset, request, view)


def _invalid() -> InvalidInput:
    return InvalidInput("the cursor is not one this list gave out", code="invalid_cursor")


def _check_position(model: type[models.Model], ordering: Any, position: str) -> None:
    first = ordering if isinstance(ordering, str) else ordering[0]
    try:
        field = model._meta.get_field(first.lstrip("-"))
        if not isinstance(field, models.Field):
            raise TypeError(first)
        value = field.to_python(position)
    except (FieldDoesNotExist, ValidationError, ValueError, TypeError):
        raise _invalid() from None
    if isinstance(field, models.IntegerField | models.AutoField):
        low, high = connection.ops.integer_field_range(field.get_internal_type())
        if (low is not None and value < low) or (high is not None and value > high):
            raise _invalid()


def cursor_ordered_by(*ordering: str) -> type[Cursor]:
    """A cursor paginator over ``ordering`` (its first column should be unique or nearly)."""
    name = "CursorBy" + "".join(column.lstrip("-").title() for column in ordering)
    paginator: type[Cursor] = type(name, (Cursor,), {"ordering": ordering})
    return paginator
