"""Model versions: shared backbones plus the heads of your projects, with their metrics."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from rest_framework import mixins, viewsets

from .models import ModelVersion
from .serializers import ModelVersionSerializer


class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = ModelVersion.objects.none()  # the model, for the OpenAPI schema; get_queryset says whose
    serializer_class = ModelVersionSerializer
    filterset_fields = ["kind", "project"]
    ordering_fields = ["created_at", "id"]

    def get_queryset(self) -> QuerySet[ModelVersion]:
        user = self.request.user
        return ModelVersion.objects.filter(Q(project__isnull=True) | Q(project__memberships__user=user)).distinct()
