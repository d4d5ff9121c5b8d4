"""Image endpoints: list with filters, detail, and permission-checked file downloads."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Exists, F, OuterRef, QuerySet
from django.http import FileResponse, Http404
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from skelex_web.labeling.models import Annotation
from skelex_web.learning.models import ErrorMap
from skelex_web.projects.filters import FilterSet
from skelex_web.projects.models import Role
from skelex_web.projects.permissions import require_role, visible

from . import services
from .models import Image, Study
from .serializers import ImageSerializer, StudySerializer


class ImageFilter(FilterSet):
    label = django_filters.CharFilter(method="filter_label", help_text="images with a live box of this label")
    suggestion_state = django_filters.CharFilter(field_name="suggestions__state", distinct=True)
    labelled = django_filters.BooleanFilter(method="filter_labelled")

    class Meta:
        model = Image
        fields = ["project", "study", "status", "body_part", "view", "laterality", "file_format"]

    def filter_label(self, qs: QuerySet[Image], name: str, value: str) -> QuerySet[Image]:
        return qs.filter(Exists(Annotation.objects.filter(image=OuterRef("pk"), label=value, is_deleted=False)))

    def filter_labelled(self, qs: QuerySet[Image], name: str, value: bool) -> QuerySet[Image]:
        has = Exists(Annotation.objects.filter(image=OuterRef("pk"), is_deleted=False))
        return qs.filter(has) if value else qs.exclude(has)


class ImageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Images of your projects. ``ordering=-al_priority`` follows the active-learning queue."""

    serializer_class = ImageSerializer
    filterset_class = ImageFilter
    ordering_fields = ["id", "created_at", "al_priority", "status", "name"]
    ordering = ["id"]

    def get_queryset(self) -> QuerySet[Image]:
        qs = visible(Image.objects.all(), self.request.user).annotate(
            has_errormap=Exists(ErrorMap.objects.filter(image=OuterRef("pk")))
        )
        if self.request.query_params.get("ordering", "").lstrip("-") == "al_priority":
            # Unscored images go last whatever the direction.
            desc = self.request.query_params["ordering"].startswith("-")
            key = F("al_priority").desc(nulls_last=True) if desc else F("al_priority").asc(nulls_last=True)
            qs = qs.order_by(key, "id")
        return qs

    def filter_queryset(self, queryset: QuerySet[Image]) -> QuerySet[Image]:
        if self.request.query_params.get("ordering", "").lstrip("-") == "al_priority":
            # Ordering already applied with NULLS LAST; only apply the field filters.
            return self.filterset_class(self.request.query_params, queryset=queryset, request=self.request).qs
        return super().filter_queryset(queryset)

    def perform_destroy(self, instance: Image) -> None:
        require_role(self.request.user, instance.project, Role.LEAD)
        services.delete_image(actor=self.request.user, image=instance)

    def _file(self, field: Any, content_type: str) -> FileResponse:
        if not field:
            raise Http404("This image has no such file yet.")
        try:
            handle = field.open("rb")
        except FileNotFoundError:
            raise Http404("The stored file is missing.") from None
        response = FileResponse(handle, content_type=content_type)
        response["Cache-Control"] = "private, max-age=3600"
        return response

    @action(detail=True, methods=["get"], url_path="display", url_name="display")
    def display(self, request: Request, pk: str | None = None) -> FileResponse:
        """The lossless 16-bit grayscale PNG for the viewer."""
        return self._file(self.get_object().display, "image/png")

    @action(detail=True, methods=["get"], url_path="thumbnail", url_name="thumbnail")
    def thumbnail(self, request: Request, pk: str | None = None) -> FileResponse:
        return self._file(self.get_object().thumbnail, "image/png")

    @action(detail=True, methods=["get"], url_path="errormap", url_name="errormap")
    def errormap(self, request: Request, pk: str | None = None) -> FileResponse:
        """The newest error-map heat map (8-bit PNG on the image grid)."""
        image = self.get_object()
        emap = image.error_maps.order_by("-created_at", "-id").first()
        if emap is None:
            raise Http404("No error map for this image yet.")
        return self._file(emap.file, "image/png")

    @action(detail=True, methods=["post"], url_path="accept-all", url_name="accept-all")
    def accept_all(self, request: Request, pk: str | None = None) -> Response:
        from skelex_web.labeling import services
        from skelex_web.labeling.serializers import AnnotationSerializer

        annotations = services.accept_all(actor=request.user, image=self.get_object())
        return Response(AnnotationSerializer(annotations, many=True, context={"request": request}).data)


class StudyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = StudySerializer
    filterset_fields = ["project", "patient_pseudo_id"]

    def get_queryset(self) -> QuerySet[Study]:
        return visible(Study.objects.all(), self.request.user).order_by("id")
