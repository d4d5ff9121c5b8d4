"""Server-rendered pages (sign in, projects, worklist, viewer shell)."""

from __future__ import annotations

from django.urls import path

from . import actions, views

app_name = "pages"

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("projects/new/", actions.create, name="project-create"),
    path("projects/<int:project_id>/", views.project_detail, name="project-detail"),
    path("projects/<int:project_id>/upload/", actions.upload, name="project-upload"),
    path("projects/<int:project_id>/next/", actions.label_next, name="label-next"),
    path("projects/<int:project_id>/retrain/", actions.retrain, name="project-retrain"),
    path("projects/<int:project_id>/ranking/", actions.ranking, name="project-ranking"),
    path("projects/<int:project_id>/reanalyse/", actions.reanalyse, name="project-reanalyse"),
    path("projects/<int:project_id>/compare-rankings/", actions.compare_rankings, name="project-compare-rankings"),
    path("projects/<int:project_id>/compare-rankings.png", views.comparison_plot, name="project-comparison-plot"),
    path("projects/<int:project_id>/export/", actions.export, name="project-export"),
    path("projects/<int:project_id>/members/", actions.members, name="project-members"),
    path("projects/<int:project_id>/delete/", actions.delete, name="project-delete"),
    path("projects/<int:project_id>/worklist/", views.worklist, name="worklist"),
    path("projects/<int:project_id>/images/<int:image_id>/", views.viewer, name="viewer"),
    path("projects/<int:project_id>/images/<int:image_id>/delete/", actions.delete_image, name="image-delete"),
]
