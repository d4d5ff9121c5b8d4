"""Request bodies for the API: DRF's JSON parser, refusing bodies nested deeper than Python's JSON
decoder recurses (a ``[[[[...`` of 200 kB raised RecursionError, a 500 from every JSON endpoint),
and the body as an object for views that read it themselves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.request import Request


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None


# What a body that is not a JSON object is, in a refusal's words.
_JSON_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true or false"}


def json_object(request: Request) -> Mapping[str, Any]:
    """The request's body, which must be a JSON object (no body reads as an empty one): a view that
    reads fields from it before its serializer does would otherwise fail on a list, a string or
    null with a 500. Anything else is a 400 saying what came instead."""
    data = request.data
    if isinstance(data, Mapping):
        return data
    got = "null" if data is None else _JSON_KINDS.get(type(data), type(data).__name__)
    raise ValidationError({"non_field_errors": [f"Expected a JSON object, not {got}."]})
