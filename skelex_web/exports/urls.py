"""Routes: /api/dataset-versions/ (+ /{id}/export/) and /api/exports/ (+ /{id}/download/)."""

from __future__ import annotations

from typing import Any

from rest_framework.routers import SimpleRouter

from .api import DatasetVersionViewSet, ExportJobViewSet

router = SimpleRouter()
router.register("dataset-versions", DatasetVersionViewSet, basename="dataset-version")
router.register("exports", ExportJobViewSet, basename="export")
urlpatterns: list[Any] = [*router.urls]
