"""Active-learning endpoints: retrain on demand, the queue (with claims), the learning curve."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from skelex_web.audit.services import record
from skelex_web.projects.models import Role
from skelex_web.projects.permissions import get_project_for, require_role, visible
from skelex_web.studies.models import Image
from skelex_web.studies.serializers import ImageSerializer

from . import loop
from .plots import learning_curve_svg

# The viewer remembers up to 500 images passed over; more is not a queue request but a payload.
MAX_SKIP = 1000


class RetrainView(APIView):
    """POST: leads start a training round now (train queue). 202; ``queued`` false if one is pending."""

    def post(self, request: Request, project_id: int) -> Response:
        project = get_project_for(request.user, project_id, Role.LEAD)
        queued = loop.request_retrain(project, reason=f"on demand by {request.user.username}")
        record(actor=request.user, action="heads.retrain", target=project, project=project, after={"queued": queued})
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)


class QueueView(APIView):
    """GET: the next unlabelled images in active-learning order, with why each is there."""

    def get(self, request: Request, project_id: int) -> Response:
        project = get_project_for(request.user, project_id)
        try:
            limit = max(1, min(int(request.query_params.get("limit", 20)), 200))
        except ValueError:
            limit = 20
        images = loop.worklist(project, request.user)[:limit]
        return Response(
            [{"image": i.pk, "name": i.name, "al_priority": i.al_priority, "al_reason": i.al_reason} for i in images]
        )


class QueueNextView(APIView):
    """POST: hands you the next image and marks it open in your viewer (never two annotators at once)."""

    def post(self, request: Request, project_id: int) -> Response:
        project = get_project_for(request.user, project_id, Role.ANNOTATOR)
        body = request.data or {}
        skip = body.get("skip", []) if isinstance(body, dict) else None
        if not isinstance(skip, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in skip):
            return Response(
                {"detail": 'Expected {"skip": [image ids]}: a list of whole numbers, possibly empty.'},
                status=status.HTTP_400_BAD_REQUEST,
            )
        image = loop.claim_next(project, request.user, skip=skip[:MAX_SKIP])
        if image is None:
            return Response({"detail": "The queue is empty: every image is labelled or open elsewhere."}, status=204)
        return Response({"image": ImageSerializer(image).data, "reason": image.al_reason})


class ClaimView(APIView):
    """POST: mark an image open in your viewer (``claimed_at`` names the claim); DELETE: release
    yours, or with ``?at=<claimed_at>`` only that claim (what a viewer sends when it leaves the
    image). 409 when someone else holds it."""

    def post(self, request: Request, image_id: int) -> Response:
        image = get_object_or_404(visible(Image.objects.all(), request.user), pk=image_id)
        require_role(request.user, image.project, Role.ANNOTATOR)
        at = loop.claim(image, request.user)
        if at is None:
            image.refresh_from_db()
            holder = image.claimed_by.username if image.claimed_by else ""
            return Response({"detail": f"Open in {holder}'s viewer.", "claimed_by": holder}, status=409)
        return Response({"claimed": True, "claimed_at": at.isoformat()})

    def delete(self, request: Request, image_id: int) -> Response:
        image = get_object_or_404(visible(Image.objects.all(), request.user), pk=image_id)
        raw = request.query_params.get("at")
        at = None
        if raw is not None:
            try:
                at = parse_datetime(raw)
            except ValueError:
                at = None
            if at is None:
                detail = f"'at' must be the claim's time as the claim returned it (ISO 8601), not {raw[:40]!r}."
                return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
        loop.release(image, request.user, at=at)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LearningCurveView(APIView):
    """GET: rounds with labels used and CV metrics per head; ``?plot=svg`` draws the curve."""

    def get(self, request: Request, project_id: int, **kwargs: Any) -> Response | HttpResponse:
        project = get_project_for(request.user, project_id)
        rounds = loop.learning_curve(project)
        if request.query_params.get("plot") == "svg":
            metric = request.query_params.get("metric", "auroc")
            return HttpResponse(learning_curve_svg(rounds, metric), content_type="image/svg+xml")
        return Response({"rounds": rounds, "labels_since_last_round": loop.labels_since_last_round(project)})
