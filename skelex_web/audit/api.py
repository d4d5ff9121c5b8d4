"""Audit trail, readable by reviewers and leads of the project."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import mixins, serializers, viewsets

from skelex_web.projects.models import Role

from .models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    actor_name = serializers.CharField(source="actor.username", read_only=True, default="")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "project",
            "actor",
            "actor_name",
            "action",
            "target_type",
            "target_id",
            "before",
            "after",
            "created_at",
        ]
        read_only_fields = fields


class AuditEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = AuditEventSerializer
    filterset_fields = ["project", "action", "target_type", "target_id"]

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return AuditEvent.objects.filter(
            project__memberships__user=self.request.user,
            project__memberships__role__in=[Role.REVIEWER, Role.LEAD],
        ).select_related("actor")
