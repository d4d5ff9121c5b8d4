"""Routes: /api/images/, /api/studies/ and the upload endpoint."""

from __future__ import annotations

from typing import Any

from rest_framework.routers import SimpleRouter

from .api import ImageViewSet, StudyViewSet

router = SimpleRouter()
router.register("images", ImageViewSet, basename="image")
router.register("studies", StudyViewSet, basename="study")
urlpatterns: list[Any] = [*router.urls]
