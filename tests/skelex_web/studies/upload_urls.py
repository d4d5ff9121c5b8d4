"""URLconf for the upload tests: the route the lead wires into skelex_web/studies/urls.py."""

from __future__ import annotations

from django.urls import path

from skelex_web.studies.api_upload import ImageUploadView, UploadJobDetailView, UploadJobListView

urlpatterns = [
    path("api/projects/<int:project_id>/images/upload/", ImageUploadView.as_view(), name="image-upload"),
    path("api/projects/<int:project_id>/images/uploads/", UploadJobListView.as_view(), name="image-upload-jobs"),
    path(
        "api/projects/<int:project_id>/images/uploads/<int:job_id>/",
        UploadJobDetailView.as_view(),
        name="image-upload-job",
    ),
]
