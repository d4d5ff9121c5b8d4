"""POST /api/projects/<project_id>/images/upload/: several files or zips per request, one result each;
GET .../images/uploads/[<job_id>/]: what became of each file of a queued upload.

Annotators and above may upload (non-members get 404, viewers 403). Requests whose declared
length exceeds ``settings.MAX_UPLOAD_BYTES`` are refused with 413 before the body is read, so
nothing is written; chunked bodies are measured after parsing and refused the same way.

Small uploads (up to :data:`INLINE_MAX_FILES` files and :data:`INLINE_MAX_BYTES`) are ingested
inline and answered ``200`` with per-file results. Larger ones are staged under
``MEDIA_ROOT/staging/`` and handed to the ``workers.ingest.import_files`` task on the ingest
queue (:mod:`skelex_web.studies.uploads`); the answer is ``202`` with the upload job's id and URL.
The job holds each file's result by position in the request (no names); the uploader and the
project's leads may read it, other members get 404 as for anything hidden from them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from skelex_web.projects.models import Role
from skelex_web.projects.permissions import get_project_for

from .models import UploadJob
from .selectors import upload_jobs_for
from .serializers import UploadJobDetailSerializer, UploadJobSerializer
from .services import summarise
from .uploads import QueueUnavailable, receive_uploads


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


def _too_large(size: int) -> PayloadTooLarge:
    limit = settings.MAX_UPLOAD_BYTES
    return PayloadTooLarge(
        f"Upload of {size:,} bytes exceeds the limit of {limit:,} bytes; split it or use import_images."
    )


class ImageUploadView(APIView):
    """Multipart upload of images and zip archives (any field name; ``files`` by convention)."""

    parser_classes = [MultiPartParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Before authentication: session auth's CSRF check may read (and spool) the whole body.
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise ParseError("The Content-Length header is not a number.") from None
        if declared > settings.MAX_UPLOAD_BYTES:
            raise _too_large(declared)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer(
                "ImageUpload", {"files": serializers.ListField(child=serializers.FileField())}
            )
        },
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="Small upload: per-file results and a summary."),
            202: inline_serializer(
                "UploadQueued",
                {
                    "queued": serializers.BooleanField(),
                    "task_id": serializers.CharField(),
                    "files": serializers.IntegerField(),
                    "job_id": serializers.IntegerField(),
                    "job_url": serializers.CharField(),
                },
            ),
            413: OpenApiResponse(description="Over MAX_UPLOAD_BYTES."),
            503: OpenApiResponse(description="The ingest queue is unavailable."),
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = get_project_for(request.user, project_id, Role.ANNOTATOR)
        uploads: list[UploadedFile] = [f for key in request.FILES for f in request.FILES.getlist(key)]
        if not uploads:
            return Response({"detail": "No files in the request (multipart field 'files')."}, status=400)
        total = sum(f.size or 0 for f in uploads)
        if total > settings.MAX_UPLOAD_BYTES:
            raise _too_large(total)
        try:
            received = receive_uploads(project, request.user, uploads)
        except QueueUnavailable:
            return Response({"detail": "The ingest queue is unavailable; try again later."}, status=503)
        if received.results is not None:
            results = received.results
            return Response({"results": [r.as_dict() for r in results], "summary": summarise(results)})
        job = received.job
        assert job is not None
        return Response(
            {
                "queued": True,
                "task_id": job.task_id,
                "files": job.files,
                "job_id": job.pk,
                "job_url": reverse("image-upload-job", args=[project.pk, job.pk]),
            },
            status=status.HTTP_202_ACCEPTED,
        )


class UploadJobListView(generics.ListAPIView):
    """The caller's queued uploads in the project, newest first (a lead's: everyone's); no results."""

    serializer_class = UploadJobSerializer
    filter_backends: list[Any] = []  # newest first, always

    def get_queryset(self) -> QuerySet[UploadJob]:
        project = get_project_for(self.request.user, self.kwargs["project_id"])
        return upload_jobs_for(self.request.user, project).defer("results")


class UploadJobDetailView(generics.RetrieveAPIView):
    """One queued upload with its per-file results; 404 unless you uploaded it or lead the project."""

    serializer_class = UploadJobDetailSerializer

    def get_object(self) -> UploadJob:
        project = get_project_for(self.request.user, self.kwargs["project_id"])
        return get_object_or_404(upload_jobs_for(self.request.user, project), pk=self.kwargs["job_id"])
