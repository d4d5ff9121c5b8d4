"""Serializer fields shared by the apps' APIs."""

from __future__ import annotations

import math
from typing import Any

from rest_framework import serializers


class FiniteFloatField(serializers.FloatField):
    """A float that is a number. DRF's FloatField takes "NaN" and "Infinity" (sent as strings):
    a box corner of NaN was stored, and then neither that answer nor any later read of the row
    could be written as JSON (500s); a split ratio of NaN came back as "no ratio is positive"."""

    default_error_messages = {"not_finite": "A finite number is required."}

    def to_internal_value(self, data: Any) -> float:
        value: float = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("not_finite")
        return value
