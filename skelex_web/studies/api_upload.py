"""POST /api/projects/<project_id>/images/upload/: several files or zips per request, one result each.

Annotators and above may upload (non-members get 404, viewers 403). Requests whose declared
length exceeds ``settings.MAX_UPLOAD_BYTES`` are refused with 413 before the body is read, so
nothing is written; chunked bodies are measured after parsing and refused the same way.

Small uploads (up to :data:`INLINE_MAX_FILES` files and :data:`INLINE_MAX_BYTES`) are ingested
inline and answered ``200`` with per-file results. Larger ones are staged under
``MEDIA_ROOT/staging/`` and handed to the ``workers.ingest.import_files`` task on the ingest
queue (its body is :func:`skelex_web.studies.services.import_staged`); the answer is ``202``
with the task id, and results arrive as ``image.ingested`` events.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from skelex_web.projects.models import Role
from skelex_web.projects.permissions import get_project_for

from .services import ingest_many, summarise

INLINE_MAX_FILES = 20
INLINE_MAX_BYTES = 64 * 1024 * 1024


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
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.MAX_UPLOAD_BYTES:
            raise _too_large(declared)
        super().initial(request, *args, **kwargs)

    def post(self, request: Request, project_id: int) -> Response:
        project = get_project_for(request.user, project_id, Role.ANNOTATOR)
        uploads: list[UploadedFile] = [f for key in request.FILES for f in request.FILES.getlist(key)]
        if not uploads:
            return Response({"detail": "No files in the request (multipart field 'files')."}, status=400)
        total = sum(f.size or 0 for f in uploads)
        if total > settings.MAX_UPLOAD_BYTES:
            raise _too_large(total)
        if len(uploads) > INLINE_MAX_FILES or total > INLINE_MAX_BYTES:
            return self._queue(project.pk, uploads, request.user.pk)
        items = [(f.name or f"file-{i}", _source(f)) for i, f in enumerate(uploads, 1)]
        results = ingest_many(project, items, actor=request.user)
        return Response({"results": [r.as_dict() for r in results], "summary": summarise(results)})

    def _queue(self, project_id: int, uploads: list[UploadedFile], user_id: int) -> Response:
        from skelex_web.celery import app

        folder = Path(settings.MEDIA_ROOT) / "staging" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        staged = []
        for i, upload in enumerate(uploads):
            path = folder / f"{i:05d}"  # never the uploaded name (may hold PHI)
            with path.open("wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
            staged.append(f"{upload.name or f'file-{i + 1}'}\t{path}")
        try:
            result = app.send_task("workers.ingest.import_files", args=[project_id, staged, user_id], queue="ingest")
        except Exception:  # noqa: BLE001 - broker down: clean up and tell the client to retry
            shutil.rmtree(folder, ignore_errors=True)
            return Response({"detail": "The ingest queue is unavailable; try again later."}, status=503)
        return Response(
            {"queued": True, "task_id": getattr(result, "id", None), "files": len(staged)},
            status=status.HTTP_202_ACCEPTED,
        )


def _source(upload: UploadedFile) -> bytes | Path:
    """Spooled uploads are read from their temporary file; small ones from memory."""
    if isinstance(upload, TemporaryUploadedFile):
        return Path(upload.temporary_file_path())
    upload.seek(0)
    return upload.read()
