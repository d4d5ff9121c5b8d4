"""Routes: /api/projects/ and /api/projects/<id>/members/."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import MembershipViewSet, ProjectViewSet

router = SimpleRouter()
router.register("projects", ProjectViewSet, basename="project")

members = MembershipViewSet.as_view({"get": "list", "post": "create"})
member = MembershipViewSet.as_view({"patch": "update", "put": "update", "delete": "destroy"})

urlpatterns = [
    path("projects/<int:project_pk>/members/", members, name="project-members"),
    path("projects/<int:project_pk>/members/<int:pk>/", member, name="project-member"),
    *router.urls,
]
