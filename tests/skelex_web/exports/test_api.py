"""Export API: members list, only leads create versions, export and download; outsiders get 404."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from skelex_web.exports.models import ExportJob
from workers.tasks.export import build

pytestmark = pytest.mark.django_db


def _create(client: Any, project: Any, **extra: Any) -> Any:
    return client.post("/api/dataset-versions/", {"project": project.pk, "split_seed": 3, **extra}, format="json")


@pytest.mark.parametrize(
    ("who", "status"), [("lead", 201), ("reviewer", 403), ("annotator", 403), ("viewer", 403), ("outsider", 404)]
)
def test_only_leads_create_versions(client_for: Any, project: Any, labelled: Any, who: str, status: int) -> None:
    response = _create(client_for(who), project)
    assert response.status_code == status, response.content
    if status == 201:
        body = response.json()
        assert body["number"] == 1 and body["image_count"] == 12 and len(body["content_hash"]) == 64
        assert body["summary"]["suggestions"]["acceptance_rate"] == 0.5


def test_members_list_versions_and_outsiders_see_none(client_for: Any, project: Any, labelled: Any) -> None:
    _create(client_for("lead"), project)
    listed = client_for("viewer").get(f"/api/dataset-versions/?project={project.pk}").json()
    assert listed["count"] == 1 and listed["results"][0]["split_seed"] == 3
    assert client_for("outsider").get("/api/dataset-versions/").json()["count"] == 0
    version_id = listed["results"][0]["id"]
    assert client_for("outsider").get(f"/api/dataset-versions/{version_id}/").status_code == 404


def test_bad_filters_answer_400_with_field_errors(client_for: Any, project: Any, labelled: Any) -> None:
    response = _create(client_for("lead"), project, filters={"labels": ["nope"]}, split_ratios={"holdout": 1})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"split_ratios"}
    response = _create(client_for("lead"), project, filters={"labels": ["nope"]})
    assert response.status_code == 400 and "filters.labels" in response.json()["errors"]
    response = _create(client_for("lead"), project, filters={"colour": "red"})
    assert response.json()["errors"] == {"filters": ["unknown filters: colour"]}


def test_an_empty_dataset_version_is_refused_with_the_reason(
    client_for: Any, project: Any, personas: Any, settings: Any
) -> None:
    from skelex_web.exports.models import DatasetVersion

    response = _create(client_for("lead"), project)
    assert response.status_code == 400
    assert response.json() == {"detail": "Nothing to export: the project has no images yet."}
    assert not DatasetVersion.objects.exists()
    assert not [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()], "no manifest left behind"


def test_filters_that_leave_nothing_say_so(client_for: Any, project: Any, labelled: Any) -> None:
    response = _create(client_for("lead"), project, filters={"body_parts": ["hip"]})
    assert response.status_code == 400
    assert response.json() == {"detail": "Nothing to export: no image matches these filters."}


def test_export_enqueues_the_task_and_the_lead_downloads_the_zip(
    client_for: Any, project: Any, labelled: Any, django_capture_on_commit_callbacks: Any
) -> None:
    version_id = _create(client_for("lead"), project).json()["id"]
    url = f"/api/dataset-versions/{version_id}/export/"
    assert client_for("annotator").post(url, {"format": "coco"}, format="json").status_code == 403
    assert client_for("outsider").post(url, {"format": "coco"}, format="json").status_code == 404
    with mock.patch("skelex_web.celery.app.send_task") as send, django_capture_on_commit_callbacks(execute=True):
        response = client_for("lead").post(url, {"format": "yolo", "images": "png8"}, format="json")
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["state"] == "queued" and job["download_url"] is None
    send.assert_called_once_with("workers.export.build", args=[job["id"]])
    download = f"/api/exports/{job['id']}/download/"
    assert client_for("lead").get(download).status_code == 409

    result = build(job["id"])  # what the export worker runs for that message
    assert result["state"] == "done"
    assert client_for("viewer").get(f"/api/exports/{job['id']}/").json()["state"] == "done"
    assert client_for("viewer").get(download).status_code == 403
    assert client_for("outsider").get(download).status_code == 404
    response = client_for("lead").get(download)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    body = b"".join(response.streaming_content)
    assert ExportJob.objects.get(pk=job["id"]).size == len(body)
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert "data.yaml" in names and sum(n.startswith("labels/") for n in names) == 12


def test_export_list_is_filtered_by_project(client_for: Any, project: Any, other_project: Any, labelled: Any) -> None:
    version_id = _create(client_for("lead"), project).json()["id"]
    with mock.patch("skelex_web.celery.app.send_task"):
        client_for("lead").post(f"/api/dataset-versions/{version_id}/export/", {"format": "csv"}, format="json")
    assert client_for("viewer").get(f"/api/exports/?project={project.pk}").json()["count"] == 1
    assert client_for("viewer").get(f"/api/exports/?project={other_project.pk}").json()["count"] == 0


def test_an_export_lost_with_the_app_is_built_again_once_then_failed(
    client_for: Any, project: Any, labelled: Any, sent_tasks: list, django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:  # fmt: skip
    from skelex_web.exports.services import recover_exports

    version_id = _create(client_for("lead"), project).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        job = client_for("lead").post(f"/api/dataset-versions/{version_id}/export/", {"format": "coco"}, format="json")
    job_id = job.json()["id"]
    # The worker died halfway through the zip: the job says "running", a partial file is on disk,
    # and the message died with the in-memory queue.
    ExportJob.objects.filter(pk=job_id).update(state="running", done=5)
    part = Path(settings.MEDIA_ROOT, "exports", str(project.pk), f"{project.slug}-v1-coco-png16-{job_id}.zip.part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"PK half a zip")
    sent_tasks.clear()

    with django_capture_on_commit_callbacks(execute=True):
        first = recover_exports(timedelta(minutes=30), orphaned=True)

    assert first.resent == [job_id] and sent_tasks == [("workers.export.build", [job_id])]
    shown = client_for("viewer").get(f"/api/exports/{job_id}/").json()
    assert shown["state"] == "queued" and shown["done"] == 0 and shown["resent_at"]

    with django_capture_on_commit_callbacks(execute=True):
        second = recover_exports(timedelta(minutes=30), orphaned=True)  # lost again before it ran

    assert second.failed == [job_id] and len(sent_tasks) == 1
    shown = client_for("viewer").get(f"/api/exports/{job_id}/").json()
    assert shown["state"] == "failed" and shown["error"].startswith("The export was interrupted twice")
    assert "Start a new export of this version" in shown["error"] and not part.exists()


def test_a_resent_export_builds_the_zip(
    client_for: Any, project: Any, labelled: Any, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    from skelex_web.exports.services import recover_exports

    version_id = _create(client_for("lead"), project).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        job_id = (
            client_for("lead")
            .post(f"/api/dataset-versions/{version_id}/export/", {"format": "csv"}, format="json")
            .json()["id"]
        )
    ExportJob.objects.filter(pk=job_id).update(state="running")
    with django_capture_on_commit_callbacks(execute=True):
        recover_exports(timedelta(minutes=30), orphaned=True)

    assert build(sent_tasks[-1][1][0])["state"] == "done"  # what the worker runs for the new message
    response = client_for("lead").get(f"/api/exports/{job_id}/download/")
    assert response.status_code == 200 and b"".join(response.streaming_content)[:2] == b"PK"


def test_a_version_whose_images_were_deleted_exports_its_labels_but_not_their_files(
    client_for: Any, project: Any, labelled: Any, django_capture_on_commit_callbacks: Any
) -> None:
    version_id = _create(client_for("lead"), project).json()["id"]
    for image in labelled["images"][:2]:  # e.g. films with a name burned into their pixels
        with django_capture_on_commit_callbacks(execute=True):
            assert client_for("lead").delete(f"/api/images/{image.pk}/").status_code == 204
    url = f"/api/dataset-versions/{version_id}/export/"

    with mock.patch("skelex_web.celery.app.send_task") as send:
        refused = client_for("lead").post(url, {"format": "coco", "images": "png16"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["detail"] == (
        "Export not started: 2 images of dataset version 1 were deleted after it was made, with their files: "
        "export its labels without image files, or make a new version of the labels as they are now."
    )
    assert not send.called and not ExportJob.objects.exists()  # nothing queued, nothing half-made

    with mock.patch("skelex_web.celery.app.send_task"), django_capture_on_commit_callbacks(execute=True):
        labels_only = client_for("lead").post(url, {"format": "coco", "images": "none"}, format="json")
    assert labels_only.status_code == 202
    assert build(labels_only.json()["id"])["state"] == "done"  # the version's labels, all 12 images
