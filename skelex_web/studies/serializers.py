"""Image and study serializers. File URLs point at permission-checked API endpoints, never /media/."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from .models import Image, Study


class StudySerializer(serializers.ModelSerializer):
    class Meta:
        model = Study
        fields = ["id", "project", "study_instance_uid", "patient_pseudo_id", "study_date", "description", "created_at"]
        read_only_fields = fields


class ImageSerializer(serializers.ModelSerializer):
    display_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    errormap_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id", "project", "study", "name", "file_format", "rows", "cols", "bits", "photometric_interpretation",
            "pixel_spacing_row", "pixel_spacing_col", "pixel_spacing_source", "window_center", "window_width",
            "modality", "body_part", "view", "laterality", "status", "error_message", "al_priority", "al_reason",
            "burned_in_annotation", "notes", "sha256", "display_url", "thumbnail_url", "errormap_url", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_display_url(self, obj: Image) -> str | None:
        return reverse("image-display", args=[obj.pk]) if obj.display else None

    def get_thumbnail_url(self, obj: Image) -> str | None:
        return reverse("image-thumbnail", args=[obj.pk]) if obj.thumbnail else None

    def get_errormap_url(self, obj: Image) -> str | None:
        has_map = getattr(obj, "has_errormap", None)
        if has_map is None:
            has_map = obj.error_maps.exists()
        return reverse("image-errormap", args=[obj.pk]) if has_map else None
