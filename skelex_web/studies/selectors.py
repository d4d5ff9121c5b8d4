"""Reads shared by the API: which upload jobs a user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from skelex_web.projects.models import Project, Role
from skelex_web.projects.permissions import has_role

from .models import UploadJob


def upload_jobs_for(user: Any, project: Project) -> QuerySet[UploadJob]:
    """The project's upload jobs the user may read, newest first: a lead's all, anyone else's own.

    Per-file results say which of someone's files were refused and why; other members have no
    need of them, and a job they may not read answers 404 like anything else hidden.
    """
    jobs = UploadJob.objects.filter(project=project).select_related("uploader").order_by("-created_at", "-id")
    return jobs if has_role(user, project, Role.LEAD) else jobs.filter(uploader=user)
