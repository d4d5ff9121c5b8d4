"""Audit trail, readable by reviewers and leads of the project; events outside any project (a
deleted project, a registered backbone) by staff."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from rest_framework import mixins, serializers, viewsets

from skelex_web.projects.models import Membership, Role

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
    queryset = AuditEvent.objects.none()  # the model, for the OpenAPI schema; get_queryset says whose
    serializer_class = AuditEventSerializer
    filterset_fields = ["project", "action", "target_type", "target_id"]

    def get_queryset(self) -> QuerySet[AuditEvent]:
        user = self.request.user
        readable = Q(
            project__in=Membership.objects.filter(user=user, role__in=[Role.REVIEWER, Role.LEAD]).values("project")
        )
        if user.is_staff:
            readable |= Q(project__isnull=True)
        return AuditEvent.objects.filter(readable).select_related("actor")
