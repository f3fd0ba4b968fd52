"""DRF's JSON parser, with one more malformed body refused as such.

``json.load`` recurses once per level of nesting: a body of a few thousand ``[`` raises
RecursionError, which DRF's parser lets through as a server error. It is malformed input like
any other: a 400 ``parse_error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body nests too deeply") from None
