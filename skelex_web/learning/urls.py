"""Routes: /api/model-versions/."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from .api import ModelVersionViewSet

router = SimpleRouter()
router.register("model-versions", ModelVersionViewSet, basename="model-version")
urlpatterns = router.urls
