"""Dataset version and export endpoints.

Permissions: every member may list and read versions and export jobs (names, filters, summaries:
no pixels, no labels); only leads create versions, start exports and download zips (403 for other
roles, 404 for non-members, as everywhere in the API).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from skelex_web.projects.models import Role
from skelex_web.projects.permissions import get_project_for, require_role

from . import selectors, services
from .models import DatasetVersion, ExportJob, JobState
from .serializers import (
    DatasetVersionCreateSerializer,
    DatasetVersionSerializer,
    ExportJobSerializer,
    ExportStartSerializer,
)


class DatasetVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """``/api/dataset-versions/`` (``?project=ID``): immutable label snapshots of a project."""

    serializer_class = DatasetVersionSerializer
    filterset_fields = ["project"]
    ordering_fields = ["id", "number", "created_at"]

    def get_queryset(self) -> QuerySet[DatasetVersion]:
        return selectors.versions_for(self.request.user)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        parsed = DatasetVersionCreateSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        data = parsed.validated_data
        project = get_project_for(request.user, data["project"], Role.LEAD)
        try:
            version = services.create_version(
                project=project,
                actor=request.user,
                name=data.get("name", ""),
                filters=data.get("filters") or {},
                split_seed=data.get("split_seed", 0),
                split_ratios=data.get("split_ratios"),
            )
        except services.InvalidFilters as exc:
            # Unknown keys are reported under "filters" itself, not "filters.filters".
            raise ValidationError({k if k == "filters" else f"filters.{k}": v for k, v in exc.errors.items()}) from None
        except services.EmptyVersion as exc:
            return Response({"detail": f"{str(exc)[0].upper()}{str(exc)[1:]}."}, status=status.HTTP_400_BAD_REQUEST)
        except ValueError as exc:
            raise ValidationError({"split_ratios": [str(exc)]}) from None
        return Response(self.get_serializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ExportStartSerializer, responses={202: ExportJobSerializer})
    @action(detail=True, methods=["post"], url_path="export")
    def export(self, request: Request, pk: str | None = None) -> Response:
        """Starts rendering this version in a format; 202 with the job to poll (or follow by events)."""
        version = self.get_object()
        require_role(request.user, version.project_id, Role.LEAD)
        parsed = ExportStartSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        try:
            job = services.start_export(
                version=version,
                actor=request.user,
                fmt=parsed.validated_data["format"],
                images=parsed.validated_data["images"],
                embeddings=parsed.validated_data["embeddings"],
            )
        except services.ImagesGone as exc:
            return Response({"detail": f"Export not started: {exc}."}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ExportJobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class ExportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """``/api/exports/`` (``?project=ID&version=ID``): export runs, their progress and their zips."""

    serializer_class = ExportJobSerializer
    filterset_fields = {"version": ["exact"], "version__project": ["exact"], "state": ["exact"]}
    ordering_fields = ["id", "created_at"]

    def get_queryset(self) -> QuerySet[ExportJob]:
        qs = selectors.exports_for(self.request.user)
        project = self.request.query_params.get("project")
        if project is not None and self.action == "list":
            if not project.isdigit():
                raise ValidationError({"project": ["must be a project id"]})
            qs = qs.filter(version__project_id=int(project))
        return qs

    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> Any:
        """The zip, streamed from disk; 409 while the export is not done."""
        job = self.get_object()
        require_role(request.user, job.version.project_id, Role.LEAD)
        path = Path(settings.MEDIA_ROOT, job.file.name) if job.file else None
        if job.state != JobState.DONE or path is None or not path.exists():
            return Response(
                {"detail": f"This export is {job.state}; download it once it is done."},
                status=status.HTTP_409_CONFLICT,
            )
        return FileResponse(open(path, "rb"), as_attachment=True, filename=path.name, content_type="application/zip")
