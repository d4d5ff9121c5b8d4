"""Active-learning endpoints: retrain on demand, the queue (with claims), the learning curve."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from skelex_web.projects.models import Role
from skelex_web.projects.permissions import get_project_for, require_role, visible
from skelex_web.studies.models import Image
from skelex_web.studies.serializers import ImageSerializer

from . import loop
from .plots import learning_curve_svg
from .services import compare_on_demand, comparison_pending, latest_comparison

# The viewer remembers up to 500 images passed over; more is not a queue request but a payload.
MAX_SKIP = 1000
QUEUE_LIMIT_MAX = 500


def _is_id(value: Any) -> bool:
    """Whether ``value`` can be a row id: a whole number a 64-bit key holds (a larger one made the
    database driver raise OverflowError in the query, a 500)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


_DETAIL = inline_serializer("Detail", {"detail": serializers.CharField()})


class RetrainView(APIView):
    """POST: leads start a training round now (train queue). 202; ``queued`` false if one is pending."""

    @extend_schema(
        request=None,
        responses={202: inline_serializer("RetrainQueued", {"queued": serializers.BooleanField()})},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = get_project_for(request.user, project_id, Role.LEAD)
        queued = loop.retrain_on_demand(project, request.user)
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)


class QueueView(APIView):
    """GET: the next unlabelled images in active-learning order, with why each is there."""

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description=f"how many (1-{QUEUE_LIMIT_MAX}, default 20)")],
        responses={
            200: inline_serializer(
                "QueueEntry",
                {
                    "image": serializers.IntegerField(),
                    "name": serializers.CharField(),
                    "al_priority": serializers.FloatField(allow_null=True),
                    "al_reason": serializers.CharField(),
                },
                many=True,
            ),
            400: _DETAIL,
        },
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = get_project_for(request.user, project_id)
        raw = request.query_params.get("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= QUEUE_LIMIT_MAX:
            detail = f"limit must be a whole number from 1 to {QUEUE_LIMIT_MAX}, not {raw[:20]!r}."
            return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
        limit = int(raw)
        images = loop.worklist(project, request.user)[:limit]
        return Response(
            [{"image": i.pk, "name": i.name, "al_priority": i.al_priority, "al_reason": i.al_reason} for i in images]
        )


class QueueNextView(APIView):
    """POST: hands you the next image and marks it open in your viewer (never two annotators at once)."""

    @extend_schema(
        request=inline_serializer("QueueNext", {"skip": serializers.ListField(child=serializers.IntegerField())}),
        responses={
            200: inline_serializer("QueueNextImage", {"image": ImageSerializer(), "reason": serializers.CharField()}),
            204: OpenApiResponse(description="Nothing in the queue for you (your open image stays yours)."),
            400: _DETAIL,
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = get_project_for(request.user, project_id, Role.ANNOTATOR)
        body = request.data  # no body is an empty object; a list or null is no object
        skip = body.get("skip", []) if isinstance(body, Mapping) else None
        if not isinstance(skip, list) or not all(_is_id(x) for x in skip):
            return Response(
                {"detail": 'Expected {"skip": [image ids]}: a list of positive whole numbers, possibly empty.'},
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

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "Claimed", {"claimed": serializers.BooleanField(), "claimed_at": serializers.DateTimeField()}
            ),
            409: inline_serializer(
                "ClaimedElsewhere", {"detail": serializers.CharField(), "claimed_by": serializers.CharField()}
            ),
        },
    )
    def post(self, request: Request, image_id: int) -> Response:
        image = get_object_or_404(visible(Image.objects.all(), request.user), pk=image_id)
        require_role(request.user, image.project, Role.ANNOTATOR)
        at = loop.claim(image, request.user)
        if at is None:
            image.refresh_from_db()
            holder = image.claimed_by.username if image.claimed_by else ""
            return Response({"detail": f"Open in {holder}'s viewer.", "claimed_by": holder}, status=409)
        return Response({"claimed": True, "claimed_at": at.isoformat()})

    @extend_schema(
        parameters=[OpenApiParameter("at", OpenApiTypes.DATETIME, description="end only the claim made at this time")],
        responses={204: None, 400: _DETAIL},
    )
    def delete(self, request: Request, image_id: int) -> Response:
        image = get_object_or_404(visible(Image.objects.all(), request.user), pk=image_id)
        raw = request.query_params.get("at")
        at = None
        if raw is not None:
            try:
                at = parse_datetime(raw)
                if at is not None and at.tzinfo is not None:
                    # Here, not in the query (a 500): an offset can move a time past year 9999 or before 1.
                    at = at.astimezone(UTC)
            except (ValueError, OverflowError):
                at = None
            if at is None:
                detail = f"'at' must be the claim's time as the claim returned it (ISO 8601), not {raw[:40]!r}."
                return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
        loop.release(image, request.user, at=at)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RankingComparisonView(APIView):
    """Which ranking would have saved labels on the project's own labels (``docs/active-learning.md``).

    GET (members): ``{"pending": bool, "latest": summary or null}``, the latest comparison's
    recommendation and each ranking's gain over random order per finding. POST (leads): queue one
    on the train queue; 202 with ``queued`` false when one is already queued or running.
    """

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, project_id: int) -> Response:
        project = get_project_for(request.user, project_id)
        return Response({"pending": comparison_pending(project), "latest": latest_comparison(project)})

    @extend_schema(
        request=None,
        responses={202: inline_serializer("ComparisonQueued", {"queued": serializers.BooleanField()})},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = get_project_for(request.user, project_id, Role.LEAD)
        queued = compare_on_demand(project, request.user)
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)


class LearningCurveView(APIView):
    """GET: rounds with labels used and CV metrics per head; ``?plot=svg`` draws the curve."""

    @extend_schema(
        parameters=[
            OpenApiParameter("plot", str, enum=["svg"], description="the curve as an SVG image instead of JSON"),
            OpenApiParameter("metric", str, description="with plot=svg: auroc (default), auprc, balanced_accuracy"),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: _DETAIL},
    )
    def get(self, request: Request, project_id: int, **kwargs: Any) -> Response | HttpResponse:
        project = get_project_for(request.user, project_id)
        rounds = loop.learning_curve(project)
        plot = request.query_params.get("plot")
        if plot not in (None, "", "svg"):
            return Response({"detail": f"plot must be svg, not {plot[:20]!r}."}, status=status.HTTP_400_BAD_REQUEST)
        if plot == "svg":
            metric = request.query_params.get("metric", "auroc")
            return HttpResponse(learning_curve_svg(rounds, metric), content_type="image/svg+xml")
        return Response({"rounds": rounds, "labels_since_last_round": loop.labels_since_last_round(project)})
