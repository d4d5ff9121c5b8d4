"""DRF exception handler: every error body carries a readable ``detail`` plus field errors, and a
refusal that no retry will change (your role, someone else's record) names itself in ``code``, so a
client can take the change back instead of retrying it."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

# PermissionDenied codes that say the refusal is about who you are, not about this request's state.
STANDING_REFUSALS = frozenset({"role_too_low", "not_your_annotation"})


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, PermissionDenied) and isinstance(response.data, dict):
        code = exc.get_codes()
        if isinstance(code, str) and code in STANDING_REFUSALS:
            response.data["code"] = code
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        response.data = {"detail": "Invalid input.", "errors": response.data}
    elif response is not None and isinstance(response.data, list):
        response.data = {"detail": "Invalid input.", "errors": {"non_field_errors": response.data}}
    return response
