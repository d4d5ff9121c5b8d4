"""Image, study and upload job serializers. File URLs point at permission-checked API endpoints,
never /media/."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from .models import Image, Study, UploadJob


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


class UploadJobSerializer(serializers.ModelSerializer):
    """A queued upload without its per-file results (lists); ``counts`` are zero until it is done."""

    uploader_name = serializers.CharField(source="uploader.username", default=None, read_only=True)
    counts = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = UploadJob
        fields = [
            "id", "project", "uploader", "uploader_name", "task_id", "state", "files", "counts", "error",
            "created_at", "started_at", "finished_at", "resent_at", "url",
        ]  # fmt: skip
        read_only_fields = fields

    def get_counts(self, obj: UploadJob) -> dict[str, int]:
        return {key: int((obj.counts or {}).get(key, 0)) for key in ("ingested", "duplicate", "rejected")}

    def get_url(self, obj: UploadJob) -> str:
        return reverse("image-upload-job", args=[obj.project_id, obj.pk])


class UploadJobDetailSerializer(UploadJobSerializer):
    """With ``results``: ``[{"index", "entry", "status", "reason", "image_ids"}]``, no file names."""

    class Meta(UploadJobSerializer.Meta):
        fields = [*UploadJobSerializer.Meta.fields, "results"]
        read_only_fields = fields
