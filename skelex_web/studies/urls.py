"""URL routes of the studies app (API under /api/)."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
