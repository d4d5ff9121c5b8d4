"""Routes: /api/images/, /api/studies/ and the upload endpoint."""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import ImageViewSet, StudyViewSet
from .api_upload import ImageUploadView

router = SimpleRouter()
router.register("images", ImageViewSet, basename="image")
router.register("studies", StudyViewSet, basename="study")
urlpatterns: list[Any] = [
    path("projects/<int:project_id>/images/upload/", ImageUploadView.as_view(), name="image-upload"),
    *router.urls,
]
