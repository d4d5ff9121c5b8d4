"""Routes: /api/annotations/ and /api/suggestions/."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from .api import AnnotationViewSet, SuggestionViewSet

router = SimpleRouter()
router.register("annotations", AnnotationViewSet, basename="annotation")
router.register("suggestions", SuggestionViewSet, basename="suggestion")
urlpatterns = router.urls
