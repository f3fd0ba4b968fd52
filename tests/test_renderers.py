"""The orjson renderer writes the bytes DRF's JSONRenderer writes (config/renderers.py)."""

from __future__ import annotations

import dataclasses
import decimal
import json
import uuid
from collections import OrderedDict
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from config.renderers import OrjsonRenderer
from provenance.models import NodeKind


@dataclasses.dataclass
class Point:
    x: int


EDGE_VALUES: list[Any] = [
    {},
    [],
    "",
    0,
    -1,
    2**63 - 1,
    True,
    None,
    1.5,
    0.1,
    -0.0,
    "é ✓ 𝄞 中文",
    "".join(chr(c) for c in range(0x20)) + '"\\/\x7f',
    "line\u2028separator\u2029paragraph",
    "\u2028",
    {"nested": [1, {"deeper": ["x", None, False]}], "tuple": (1, 2)},
    OrderedDict([("b", 1), ("a", 2)]),
    datetime(2026, 12, 7, 17, 36, 0, 123456, tzinfo=UTC),
    datetime(2026, 12, 7, 17, 36, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 12, 7, 17, 36),
    date(2026, 12, 7),
    time(17, 36, 1, 5),
    timedelta(days=1, seconds=3),
    decimal.Decimal("1.10"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    gettext_lazy("lazy text"),
    NodeKind.MODEL_VERSION,
    b"bytes",
    {1: "int key", None: "none key"},
    2**64,
    Point(x=1),
    range(3),
]
# Written in another notation, of the same number: see the module docstring.
FLOATS = [1e16, 1e-7, 1.7976931348623157e308, 5e-324, 123456789.123456789]


def both(data: Any, media_type: str = "application/json") -> tuple[Any, Any]:
    outcomes = []
    for renderer in (JSONRenderer(), OrjsonRenderer()):
        try:
            outcomes.append(renderer.render(data, media_type, {}))
        except Exception as exc:  # the exception is what is compared
            outcomes.append(type(exc))
    return outcomes[0], outcomes[1]


@pytest.mark.parametrize("value", EDGE_VALUES, ids=repr)
def test_the_same_bytes_as_drf(value: Any) -> None:
    drf, fast = both({"value": value, "list": [value]})

    assert fast == drf


@pytest.mark.parametrize("value", FLOATS, ids=repr)
def test_floats_have_the_same_value(value: float) -> None:
    drf, fast = both({"value": value})

    assert json.loads(fast) == json.loads(drf) == {"value": value}


def test_the_line_separators_are_escaped_as_drf_does() -> None:
    drf, fast = both("a\u2028b")

    assert fast == drf == b'"a\\u2028b"'


@pytest.mark.parametrize(
    "value",
    [2**70, {(1, 2): "tuple key"}, object(), "\ud800"],
    ids=["big-integer", "tuple-key", "unknown-type", "lone-surrogate"],
)
def test_what_orjson_refuses_is_drfs_to_write_or_refuse(value: Any) -> None:
    drf, fast = both({"value": value})

    assert fast == drf


def test_a_float_that_is_not_finite_is_null_where_drf_raises() -> None:
    drf, fast = both({"value": float("nan")})

    assert drf is ValueError
    assert fast == b'{"value":null}'


def test_an_indented_answer_is_drfs() -> None:
    data = {"a": [1, 2], "b": "c"}

    drf, fast = both(data, "application/json; indent=2")

    assert fast == drf
    assert b"\n" in fast


def test_nothing_is_an_empty_body() -> None:
    assert OrjsonRenderer().render(None) == b""
