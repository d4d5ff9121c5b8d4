"""URL routes of the labeling app (API under /api/)."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
