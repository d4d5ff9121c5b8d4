"""Per-project roles, enforced on every read and write.

Rules: a user sees only projects they are a member of (others answer 404, never 403, so project
existence does not leak); viewers read; annotators create and edit their own annotations and resolve
suggestions; reviewers edit anyone's annotations; leads manage the project, members, schema, exports.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from rest_framework.exceptions import PermissionDenied

from .models import ROLE_RANK, Membership, Project, Role


def role_of(user: Any, project: Project | int) -> str | None:
    """The user's role in the project, or None for non-members and anonymous users."""
    if not getattr(user, "is_authenticated", False):
        return None
    project_id = project if isinstance(project, int) else project.pk
    cache = getattr(user, "_skelex_roles", None)
    if cache is None:
        cache = {}
        user._skelex_roles = cache
    if project_id not in cache:
        cache[project_id] = (
            Membership.objects.filter(user=user, project_id=project_id).values_list("role", flat=True).first()
        )
    return cache[project_id]


def has_role(user: Any, project: Project | int, minimum: str) -> bool:
    role = role_of(user, project)
    return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role(minimum)]


def require_role(user: Any, project: Project | int, minimum: str) -> str:
    """Raises 404 for non-members and 403 for members below ``minimum``; returns the role."""
    role = role_of(user, project)
    if role is None:
        raise Http404("No such project.")
    if ROLE_RANK[Role(role)] < ROLE_RANK[Role(minimum)]:
        raise PermissionDenied(f"This needs the {minimum} role in the project; you are {role}.", code="role_too_low")
    return role


def member_projects(user: Any) -> QuerySet[Project]:
    if not getattr(user, "is_authenticated", False):
        return Project.objects.none()
    return Project.objects.filter(memberships__user=user)


def visible(qs: QuerySet[Any], user: Any, project_field: str = "project") -> QuerySet[Any]:
    """Restricts any queryset with a project FK to the user's projects."""
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    return qs.filter(**{f"{project_field}__memberships__user": user})


def get_project_for(user: Any, project_id: int, minimum: str = Role.VIEWER) -> Project:
    """The project if the user has at least ``minimum`` there (404 for non-members, 403 below)."""
    try:
        project = Project.objects.get(pk=project_id)
    except (Project.DoesNotExist, ValueError, TypeError):
        raise Http404("No such project.") from None
    require_role(user, project, minimum)
    return project
