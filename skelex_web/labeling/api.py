"""Annotation and suggestion endpoints. Stale edits answer 409 with the current state."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from skelex_web.projects.filters import FilterSet
from skelex_web.projects.parsers import json_object
from skelex_web.projects.permissions import visible
from skelex_web.studies.models import Image

from . import services
from .models import Annotation, Suggestion
from .serializers import AnnotationSerializer, AnnotationUpdateSerializer, SuggestionSerializer


def conflict(exc: services.StaleVersion, request: Request, *, creating: bool = False) -> Response:
    current = AnnotationSerializer(exc.current, context={"request": request}).data
    if creating:  # a second answer to a head: the first is yours to update
        detail = (
            f"You have answered {exc.current.head!r} on this image already (annotation {exc.current.pk}, "
            f"version {exc.current.version}): update that answer instead."
        )
    else:
        detail = (
            f"This annotation changed since you loaded it (now version {exc.current.version}"
            f"{', deleted' if exc.current.is_deleted else ''}). Reload it or overwrite with the current version."
        )
    return Response(
        {"detail": detail, "current": current},
        status=status.HTTP_409_CONFLICT,
    )


class AnnotationFilter(FilterSet):
    class Meta:
        model = Annotation
        fields = ["project", "image", "kind", "label", "head", "origin", "author", "reviewed"]


class AnnotationViewSet(viewsets.ModelViewSet):
    """Labels on images. Deleted annotations are hidden unless ``include_deleted=1``."""

    serializer_class = AnnotationSerializer
    filterset_class = AnnotationFilter
    ordering_fields = ["id", "created_at", "updated_at"]
    ordering = ["id"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Annotation]:
        qs = visible(Annotation.objects.select_related("author"), self.request.user)
        if self.request.query_params.get("include_deleted") != "1" and self.action == "list":
            qs = qs.filter(is_deleted=False)
        return qs

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Creates an annotation (201). Idempotent with ``client_uid``: sending the same key again
        answers 200 with the row the first send made; another user's key on the image is a 409."""
        # An image of a project you are not in answers 404, exactly as if it did not exist.
        raw = json_object(request).get("image")
        # A whole number or its digits (int() alone read 1.5 and true as image 1); 19 digits at most.
        whole = isinstance(raw, int) and not isinstance(raw, bool)
        if not (whole or (isinstance(raw, str) and raw.isdecimal() and len(raw) < 20)):
            raise ValidationError({"image": ["an image id is required"]})
        image_id = int(raw)
        get_object_or_404(visible(Image.objects.all(), request.user), pk=image_id)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        image = data.pop("image")
        if data.get("suggestion") is not None:
            data["suggestion"] = data["suggestion"].pk
        try:
            annotation, created = services.create_annotation(actor=request.user, image=image, data=data)
        except services.StaleVersion as exc:
            return conflict(exc, request, creating=True)
        return Response(
            self.get_serializer(annotation).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        annotation = self.get_object()
        parsed = AnnotationUpdateSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        changes = dict(parsed.validated_data)
        version = changes.pop("version")
        try:
            annotation = services.update_annotation(
                actor=request.user, annotation_id=annotation.pk, version=version, changes=changes
            )
        except services.StaleVersion as exc:
            return conflict(exc, request)
        return Response(self.get_serializer(annotation).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        annotation = self.get_object()
        raw = request.query_params.get("version") or json_object(request).get("version")
        try:
            version = int(raw)
        except (TypeError, ValueError):
            raise ValidationError({"version": ["the version you are deleting is required (?version=N)"]}) from None
        try:
            services.delete_annotation(actor=request.user, annotation_id=annotation.pk, version=version)
        except services.StaleVersion as exc:
            return conflict(exc, request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SuggestionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Model suggestions; annotators accept or reject them."""

    serializer_class = SuggestionSerializer
    filterset_fields = ["project", "image", "state", "kind", "label", "source"]
    ordering_fields = ["id", "score", "rank"]
    ordering = ["image_id", "rank", "id"]

    def get_queryset(self) -> QuerySet[Suggestion]:
        return visible(Suggestion.objects.all(), self.request.user)

    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        suggestion = self.get_object()
        annotation = services.accept_suggestion(actor=request.user, suggestion=suggestion)
        suggestion.refresh_from_db()
        return Response(
            {
                "suggestion": SuggestionSerializer(suggestion).data,
                "annotation": AnnotationSerializer(annotation, context={"request": request}).data,
            },
            status=status.HTTP_201_CREATED,
        )

    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        suggestion = services.reject_suggestion(actor=request.user, suggestion=self.get_object())
        return Response(SuggestionSerializer(suggestion).data)

    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk: str | None = None) -> Response:
        """Undo a rejection (the suggestion is pending again)."""
        suggestion = services.reopen_suggestion(actor=request.user, suggestion=self.get_object())
        return Response(SuggestionSerializer(suggestion).data)
