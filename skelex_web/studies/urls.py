"""Routes: /api/images/, /api/studies/, the upload endpoint and the queued uploads' jobs."""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import ImageViewSet, StudyViewSet
from .api_upload import ImageUploadView, UploadJobDetailView, UploadJobListView

router = SimpleRouter()
router.register("images", ImageViewSet, basename="image")
router.register("studies", StudyViewSet, basename="study")
urlpatterns: list[Any] = [
    path("projects/<int:project_id>/images/upload/", ImageUploadView.as_view(), name="image-upload"),
    path("projects/<int:project_id>/images/uploads/", UploadJobListView.as_view(), name="image-upload-jobs"),
    path(
        "projects/<int:project_id>/images/uploads/<int:job_id>/",
        UploadJobDetailView.as_view(),
        name="image-upload-job",
    ),
    *router.urls,
]
