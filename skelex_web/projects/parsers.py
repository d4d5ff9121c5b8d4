"""Request bodies for the API: DRF's JSON parser, refusing bodies nested deeper than Python's JSON
decoder recurses (a ``[[[[...`` of 200 kB raised RecursionError, a 500 from every JSON endpoint)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
