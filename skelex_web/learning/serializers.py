"""Model version serializer."""

from __future__ import annotations

from rest_framework import serializers

from .models import ModelVersion


class ModelVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = ["id", "kind", "name", "project", "config", "metrics", "created_at"]
        read_only_fields = fields
