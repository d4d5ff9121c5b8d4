"""Project and membership endpoints: parse → permission → service → serialize."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from . import services
from .models import Membership, Project, Role
from .permissions import get_project_for, member_projects, require_role
from .serializers import MembershipSerializer, ProjectSerializer


class ProjectViewSet(viewsets.ModelViewSet):
    """Projects you are a member of. Anyone signed in may create one (and becomes its lead)."""

    serializer_class = ProjectSerializer
    ordering_fields = ["name", "created_at", "id"]
    filterset_fields = ["slug"]

    def get_queryset(self) -> QuerySet[Project]:
        return member_projects(self.request.user).order_by("name", "id")

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        serializer.instance = services.create_project(
            actor=self.request.user,
            name=data["name"],
            slug=data.get("slug", ""),
            description=data.get("description", ""),
            label_schema=data.get("label_schema"),
        )

    def perform_update(self, serializer: Any) -> None:
        require_role(self.request.user, serializer.instance, Role.LEAD)
        serializer.instance = services.update_project(
            actor=self.request.user, project=serializer.instance, changes=dict(serializer.validated_data)
        )

    def perform_destroy(self, instance: Project) -> None:
        require_role(self.request.user, instance, Role.LEAD)
        services.delete_project(actor=self.request.user, project=instance)


class MembershipViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Members of one project: members read, leads add, change roles and remove."""

    serializer_class = MembershipSerializer
    pagination_class = None

    def project(self) -> Project:
        return get_project_for(self.request.user, int(self.kwargs["project_pk"]))

    def get_queryset(self) -> QuerySet[Membership]:
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema's dry run has no project
            return Membership.objects.none()
        return self.project().memberships.select_related("user").order_by("id")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        project = self.project()
        require_role(request.user, project, Role.LEAD)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.set_membership(
            actor=request.user,
            project=project,
            user=serializer.validated_data["user"],
            role=serializer.validated_data["role"],
        )
        return Response(self.get_serializer(membership).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        project = self.project()
        require_role(request.user, project, Role.LEAD)
        membership = get_object_or_404(project.memberships, pk=kwargs["pk"])
        serializer = self.get_serializer(membership, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        if serializer.validated_data.get("user", membership.user) != membership.user:  # was ignored, 200
            raise ValidationError({"username": ["a member stays who they are: add the other person as a member"]})
        membership = services.set_membership(
            actor=request.user,
            project=project,
            user=membership.user,
            role=serializer.validated_data.get("role", membership.role),
        )
        return Response(self.get_serializer(membership).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        project = self.project()
        require_role(request.user, project, Role.LEAD)
        membership = get_object_or_404(project.memberships, pk=kwargs["pk"])
        services.remove_membership(actor=request.user, membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)
