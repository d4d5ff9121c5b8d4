"""Reads shared by the API, the command and the task."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from skelex_web.projects.permissions import visible

from .models import DatasetVersion, ExportJob


def versions_for(user: Any) -> QuerySet[DatasetVersion]:
    """Dataset versions of the user's projects, newest first."""
    return visible(DatasetVersion.objects.select_related("project", "created_by"), user).order_by("-created_at", "-id")


def exports_for(user: Any) -> QuerySet[ExportJob]:
    """Export jobs of the user's projects, newest first."""
    return visible(ExportJob.objects.select_related("version__project", "created_by"), user, "version__project")


def version_by_number(project_id: int, number: int) -> DatasetVersion | None:
    return DatasetVersion.objects.filter(project_id=project_id, number=number).first()
