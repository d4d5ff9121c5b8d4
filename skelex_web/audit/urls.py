"""Routes: /api/audit-events/."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from .api import AuditEventViewSet

router = SimpleRouter()
router.register("audit-events", AuditEventViewSet, basename="audit-event")
urlpatterns = router.urls
