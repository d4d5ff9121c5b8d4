"""Dataset version and export job serializers (read shapes, and the two write inputs)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from skelex_web.projects.fields import FiniteFloatField

from .formats.splits import SPLIT_NAMES
from .models import SPLIT_SEED_MAX, DatasetVersion, ExportFormat, ExportJob, ImageMode, JobState


class DatasetVersionSerializer(serializers.ModelSerializer):
    created_by_name = serializers.CharField(source="created_by.username", default=None, read_only=True)

    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "project",
            "number",
            "name",
            "filters",
            "split_seed",
            "split_ratios",
            "content_hash",
            "image_count",
            "annotation_count",
            "summary",
            "created_by",
            "created_by_name",
            "created_at",
        ]
        read_only_fields = fields


class DatasetVersionCreateSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    filters = serializers.DictField(required=False, default=dict)
    split_seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=SPLIT_SEED_MAX)
    split_ratios = serializers.DictField(child=FiniteFloatField(min_value=0), required=False, default=None)

    def validate_split_ratios(self, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None:
            unknown = sorted(set(value) - set(SPLIT_NAMES))
            if unknown:
                raise serializers.ValidationError(f"unknown splits: {', '.join(unknown)}")
            if sum(value.values()) <= 0:
                raise serializers.ValidationError("at least one split ratio must be positive")
        return value


class ExportStartSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=ExportFormat.choices)
    images = serializers.ChoiceField(choices=ImageMode.choices, default=ImageMode.PNG16)
    embeddings = serializers.BooleanField(
        default=False, help_text="also the backbone's embeddings of the images (embeddings.npz, embeddings.json)"
    )


class ExportJobSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="version.project_id", read_only=True)
    version_number = serializers.IntegerField(source="version.number", read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "project",
            "version",
            "version_number",
            "format",
            "images",
            "embeddings",
            "state",
            "done",
            "total",
            "size",
            "sha256",
            "error",
            "resent_at",
            "created_by",
            "created_at",
            "finished_at",
            "download_url",
        ]
        read_only_fields = fields

    def get_download_url(self, job: ExportJob) -> str | None:
        if job.state != JobState.DONE:
            return None
        url = reverse("export-download", args=[job.pk])
        request: Any = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url
