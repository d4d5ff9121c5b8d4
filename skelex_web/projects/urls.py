"""URL routes of the projects app (API under /api/)."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
