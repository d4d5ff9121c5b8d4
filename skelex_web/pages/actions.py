"""Lead actions on the project page: start a training round, export a dataset version.

Plain HTML form posts (CSRF-protected) that call the same services as the API, then redirect
back to the project page with a message.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied

from skelex_web.exports import services as exports
from skelex_web.exports.models import ExportFormat, ImageMode
from skelex_web.learning import loop
from skelex_web.projects.models import Project, Role
from skelex_web.projects.permissions import get_project_for


def _lead_project(request: HttpRequest, project_id: int) -> Project:
    """The project if you lead it; 404 for non-members, 403 (Django's page) for other roles."""
    try:
        return get_project_for(request.user, project_id, Role.LEAD)
    except ApiPermissionDenied as exc:
        raise PermissionDenied(str(exc.detail)) from None


@login_required
@require_POST
def retrain(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _lead_project(request, project_id)
    if loop.request_retrain(project, reason=f"on demand by {request.user.get_username()}"):
        messages.success(request, "Training round queued: the worklist reorders when it finishes.")
    else:
        messages.info(request, "A training round is already queued or running.")
    return redirect("pages:project-detail", project.pk)


@login_required
@require_POST
def export(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _lead_project(request, project_id)
    fmt = request.POST.get("format", ExportFormat.COCO)
    images = request.POST.get("images", ImageMode.PNG16)
    reviewed_only = request.POST.get("reviewed_only") == "on"
    try:
        version = exports.create_version(
            project=project,
            actor=request.user,
            name=request.POST.get("name", "")[:200],
            filters={"reviewed_only": True} if reviewed_only else {},
            split_seed=int(request.POST.get("split_seed") or 0),
        )
        job = exports.start_export(version=version, actor=request.user, fmt=fmt, images=images)
    except (exports.InvalidFilters, ValueError) as exc:
        messages.error(request, f"Export not started: {exc}")
    else:
        messages.success(request, f"Export {job.pk} of dataset version {version.number} queued ({fmt}).")
    return redirect("pages:project-detail", project.pk)
