"""Canonical JSON and hashing: the same labels always serialise to the same bytes.

Re-exporting a dataset version must give byte-identical label files, so every writer formats
numbers and orders keys through these helpers instead of ``json.dumps`` defaults.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

# Box coordinates are kept to a thousandth of a pixel: finer than any annotation tool and stable
# under float round trips through JSON, XML and CSV.
COORD_DECIMALS = 3


def num(value: float, decimals: int = COORD_DECIMALS) -> float | int:
    """A float rounded to ``decimals``, as an int when whole (``12.0`` -> ``12``); rejects NaN/inf."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    rounded = round(float(value), decimals)
    if rounded == int(rounded):
        return int(rounded)
    return rounded


def num_text(value: float, decimals: int = COORD_DECIMALS) -> str:
    """:func:`num` as text (``"12"``, ``"12.5"``)."""
    return repr(num(value, decimals))


def dumps(obj: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, UTF-8 text, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_obj(obj: Any) -> str:
    """The sha256 of an object's canonical JSON."""
    return sha256_text(dumps(obj))
