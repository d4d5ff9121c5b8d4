"""Project and membership serializers (thin: shape only; rules live in services)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import serializers

from .models import SAMPLING, Membership, Project, Role, default_settings
from .permissions import role_of
from .schema import head_names, validate_schema

# A training round every this many labels at most: beyond it no round would ever start.
RETRAIN_EVERY_MAX = 1_000_000


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "label_schema",
            "settings",
            "active_backbone",
            "role",
            "created_at",
        ]
        read_only_fields = ["id", "active_backbone", "role", "created_at"]
        # As long as the project page's form takes (a TextField: anything up to the 10 MB body was stored).
        extra_kwargs = {"slug": {"required": False}, "description": {"max_length": 500}}

    def get_role(self, obj: Project) -> str | None:
        request = self.context.get("request")
        return role_of(request.user, obj) if request else None

    def validate_label_schema(self, value: Any) -> Any:
        errors = validate_schema(value)
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate_settings(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be an object")
        # A misspelt key ("retrain_evry") was stored and answered 200, and changed nothing.
        unknown = sorted(set(value) - set(default_settings()))
        if unknown:
            known = ", ".join(default_settings())
            raise serializers.ValidationError(
                f"unknown settings: {', '.join(k[:40] for k in unknown)} (known: {known})"
            )
        retrain = value.get("retrain_every", 20)
        # bool is an int to Python: true would read as a round every label.
        if not isinstance(retrain, int) or isinstance(retrain, bool) or not 1 <= retrain <= RETRAIN_EVERY_MAX:
            raise serializers.ValidationError(
                {"retrain_every": f"must be a whole number of labels from 1 to {RETRAIN_EVERY_MAX:,}"}
            )
        sampling = value.get("sampling", "hybrid")
        if not isinstance(sampling, str) or sampling not in SAMPLING:  # a list or object is unhashable
            raise serializers.ValidationError({"sampling": f"must be one of {', '.join(SAMPLING)}"})
        for flag in ("deidentify", "keep_file_names"):
            if flag in value and not isinstance(value[flag], bool):
                raise serializers.ValidationError({flag: "must be true or false"})
        if not isinstance(value.get("focus", ""), str):
            raise serializers.ValidationError({"focus": "must be a finding's name, or '' for every finding"})
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The focus finding (``settings["focus"]``) must be one of the project's findings."""
        focus = (attrs.get("settings") or {}).get("focus") or ""
        schema = attrs.get("label_schema") or (self.instance.label_schema if self.instance else {}) or {}
        findings = head_names(schema)
        if focus and focus not in findings:
            raise serializers.ValidationError(
                {"settings": {"focus": f"{focus!r} is not a finding of this project ({', '.join(findings)})"}}
            )
        return attrs


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.SlugRelatedField(
        source="user", slug_field="username", queryset=get_user_model().objects.all()
    )

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_role(self, value: str) -> str:
        if value not in Role.values:
            raise serializers.ValidationError(f"must be one of {', '.join(Role.values)}")
        return value
