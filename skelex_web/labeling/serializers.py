"""Annotation and suggestion serializers."""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework import serializers

from skelex_web.projects.fields import FiniteFloatField
from skelex_web.projects.permissions import visible

from .models import Annotation, Suggestion


class VisibleSuggestion(serializers.PrimaryKeyRelatedField):
    """A suggestion id, looked up among the caller's projects only: another project's reads as one
    that does not exist, so the answer does not tell which ids exist there."""

    def get_queryset(self) -> Any:
        request = self.context.get("request")
        return visible(Suggestion.objects.all(), getattr(request, "user", None))


class AnnotationSerializer(serializers.ModelSerializer):
    author_name = serializers.CharField(source="author.username", read_only=True, default="")
    value = serializers.JSONField(required=False, allow_null=True)
    suggestion = VisibleSuggestion(required=False, allow_null=True)
    # The box corners (the model's float fields) as finite numbers.
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.FloatField: FiniteFloatField,
    }

    class Meta:
        model = Annotation
        fields = [
            "id", "project", "image", "kind", "label", "x0", "y0", "x1", "y1", "head", "value",
            "author", "author_name", "origin", "suggestion", "model_version", "version", "reviewed",
            "is_deleted", "time_spent_ms", "client_uid", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "id", "project", "author", "author_name", "origin", "model_version", "version", "reviewed",
            "is_deleted", "created_at", "updated_at",
        ]  # fmt: skip
        # The one-answer-per-head and one-row-per-client_uid rules are enforced by the service
        # (409 with the current answer; the existing row for a repeated key).
        validators: list[object] = []


# Declared by hand below, so the model's bounds are repeated there: a 100 kB label on a head
# answer (never checked against the box labels) was stored, and a 2**70 time_spent_ms a 500.
_LABEL_MAX = Annotation._meta.get_field("label").max_length
_HEAD_MAX = Annotation._meta.get_field("head").max_length
_INT_MAX = 2**31 - 1  # what a PositiveIntegerField holds on PostgreSQL (Django checks it for SQLite too)


class AnnotationUpdateSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    label = serializers.CharField(required=False, allow_blank=True, max_length=_LABEL_MAX)
    head = serializers.CharField(required=False, allow_blank=True, max_length=_HEAD_MAX)
    value = serializers.JSONField(required=False, allow_null=True)
    x0 = FiniteFloatField(required=False)
    y0 = FiniteFloatField(required=False)
    x1 = FiniteFloatField(required=False)
    y1 = FiniteFloatField(required=False)
    time_spent_ms = serializers.IntegerField(required=False, min_value=0, max_value=_INT_MAX)
    reviewed = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Refuses fields that cannot be changed (or do not exist), and an update that changes
        nothing: either would otherwise answer 200 and bump the version, sending every other
        client holding the record into a needless conflict."""
        given = set(self.initial_data) if isinstance(self.initial_data, dict) else set()
        fixed = sorted(given - set(self.fields))
        if fixed:
            raise serializers.ValidationError({k: ["cannot be changed"] for k in fixed})
        changing = set(attrs) - {"version", "time_spent_ms"}
        if not changing:
            editable = ", ".join(k for k in self.fields if k not in ("version", "time_spent_ms"))
            raise serializers.ValidationError({"version": [f"nothing to change: send at least one of {editable}"]})
        return attrs


class SuggestionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Suggestion
        fields = [
            "id", "project", "image", "kind", "label", "head", "value", "x0", "y0", "x1", "y1", "score",
            "source", "model_version", "rank", "state", "resolved_by", "resolved_at", "created_at",
        ]  # fmt: skip
        read_only_fields = fields
