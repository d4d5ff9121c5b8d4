"""Routes: /api/model-versions/ and the active-learning endpoints."""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import ModelVersionViewSet
from .api_loop import ClaimView, LearningCurveView, QueueNextView, QueueView, RankingComparisonView, RetrainView

router = SimpleRouter()
router.register("model-versions", ModelVersionViewSet, basename="model-version")
urlpatterns: list[Any] = [
    path("projects/<int:project_id>/retrain/", RetrainView.as_view(), name="project-retrain"),
    path("projects/<int:project_id>/queue/", QueueView.as_view(), name="project-queue"),
    path("projects/<int:project_id>/queue/next/", QueueNextView.as_view(), name="project-queue-next"),
    path("projects/<int:project_id>/learning-curve/", LearningCurveView.as_view(), name="project-learning-curve"),
    path(
        "projects/<int:project_id>/ranking-comparison/",
        RankingComparisonView.as_view(),
        name="project-ranking-comparison",
    ),
    path("images/<int:image_id>/claim/", ClaimView.as_view(), name="image-claim"),
    *router.urls,
]
