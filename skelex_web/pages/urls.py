"""Server-rendered pages (sign in, projects, worklist, viewer shell)."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
