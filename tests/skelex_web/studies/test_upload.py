"""Upload endpoint: per-file results, roles, size limit, large uploads queued to the ingest task."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from skelex_web.studies import uploads
from skelex_web.studies.models import Image, UploadJob
from tests.workers.imaging.samples import dicom_bytes
from workers.tasks.ingest import import_files

from .ingest_helpers import SentTasks, media_files, png, zip_of

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.skelex_web.studies.upload_urls")]


@pytest.fixture(autouse=True)
def sent(monkeypatch: pytest.MonkeyPatch) -> SentTasks:
    from skelex_web.celery import app

    recorder = SentTasks()
    monkeypatch.setattr(app, "send_task", recorder)
    return recorder


def url(project: Any) -> str:
    return f"/api/projects/{project.pk}/images/upload/"


def files(*items: tuple[str, bytes]) -> dict[str, list[SimpleUploadedFile]]:
    return {"files": [SimpleUploadedFile(name, data) for name, data in items]}


def test_annotator_uploads_files_and_zip_with_per_file_results(project: Any, client_for: Callable[[str], Any]) -> None:
    body = files(
        ("ct.dcm", dicom_bytes("CT_small.dcm")),
        ("fake.dcm", b"no image here" * 30),
        ("batch.zip", zip_of([("a.png", png(1)), ("../x.png", png(2))])),
    )
    response = client_for("annotator").post(url(project), body, format="multipart")
    assert response.status_code == 200, response.content
    results = {r["name"]: r for r in response.json()["results"]}
    assert results["ct.dcm"]["status"] == "ingested" and results["ct.dcm"]["image_id"]
    assert (
        results["fake.dcm"]["status"] == "rejected"
        and "fake.dcm: not a recognised image file" in results["fake.dcm"]["reason"]
    )
    assert results["batch.zip/a.png"]["status"] == "ingested"
    assert "unsafe path" in results["batch.zip/../x.png"]["reason"]
    assert response.json()["summary"] == {"ingested": 2, "duplicate": 0, "rejected": 2}
    assert Image.objects.filter(project=project).count() == 2


def test_duplicate_upload_reported(project: Any, client_for: Callable[[str], Any]) -> None:
    client = client_for("lead")
    client.post(url(project), files(("a.png", png(5))), format="multipart")
    response = client.post(url(project), files(("again.png", png(5))), format="multipart")
    assert response.json()["results"][0]["status"] == "duplicate"


@pytest.mark.parametrize("who,code", [("viewer", 403), ("outsider", 404)])
def test_viewers_and_outsiders_refused(project: Any, client_for: Callable[[str], Any], who: str, code: int) -> None:
    response = client_for(who).post(url(project), files(("a.png", png(6))), format="multipart")
    assert response.status_code == code
    assert Image.objects.count() == 0


def test_anonymous_refused(project: Any) -> None:
    from rest_framework.test import APIClient

    assert APIClient().post(url(project), files(("a.png", png(6))), format="multipart").status_code in (401, 403)


def test_over_size_limit_is_413_and_writes_nothing(
    project: Any, client_for: Callable[[str], Any], settings: Any
) -> None:
    settings.MAX_UPLOAD_BYTES = 2000
    response = client_for("annotator").post(url(project), files(("big.png", png(7, (200, 200)))), format="multipart")
    assert response.status_code == 413 and "exceeds the limit of 2,000 bytes" in response.json()["detail"]
    assert Image.objects.count() == 0 and media_files(settings.MEDIA_ROOT) == []


def test_no_files_is_400(project: Any, client_for: Callable[[str], Any]) -> None:
    assert client_for("annotator").post(url(project), {}, format="multipart").status_code == 400


def test_large_upload_is_staged_and_queued(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks, monkeypatch: pytest.MonkeyPatch, personas: Any
) -> None:
    monkeypatch.setattr(uploads, "INLINE_MAX_FILES", 1)
    response = client_for("annotator").post(
        url(project), files(("a.png", png(8)), ("b.png", png(9))), format="multipart"
    )
    assert response.status_code == 202 and response.json()["files"] == 2
    body = response.json()
    job = UploadJob.objects.get(pk=body["job_id"])
    assert body["job_url"] == f"/api/projects/{project.pk}/images/uploads/{job.pk}/"
    assert (job.state, job.files, job.uploader, job.task_id) == ("queued", 2, personas["annotator"], body["task_id"])
    (name, args, queue) = sent.calls[0]
    assert (name, queue) == ("workers.ingest.import_files", "ingest")
    assert args[0] == project.pk and args[2] == personas["annotator"].pk and args[3] == job.pk
    # The message carries staged paths only; the names wait in the folder's sidecar.
    staged = [Path(p) for p in args[1]]
    assert all(p.is_file() and "\t" not in str(p) for p in staged) and "a.png" not in repr(args)
    sidecar = staged[0].parent / "names.json"
    assert json.loads(sidecar.read_text()) == {staged[0].name: "a.png", staged[1].name: "b.png"}
    # What the worker runs: the registered task, through Celery's tracer.
    out = import_files.apply(args=args).get()
    assert {k: out[k] for k in ("ingested", "duplicate", "rejected")} == {"ingested": 2, "duplicate": 0, "rejected": 0}
    assert not staged[0].parent.exists()  # files, sidecar and folder gone
    job_body = client_for("annotator").get(body["job_url"]).json()
    assert job_body["state"] == "done" and job_body["counts"] == {"ingested": 2, "duplicate": 0, "rejected": 0}
    assert [(r["index"], r["status"]) for r in job_body["results"]] == [(1, "ingested"), (2, "ingested")]
    assert sorted(i for r in job_body["results"] for i in r["image_ids"]) == sorted(out["image_ids"])


def test_the_queued_ingest_task_returns_counts_without_file_names(project: Any, tmp_path: Path) -> None:
    # The worker logs each task's return value at INFO and the result backend keeps it. The
    # "name\tpath" arguments are what messages queued before the names moved to a sidecar carry.
    paths = []
    for i, (name, data) in enumerate(
        [("DOE_JOHN_1960-01-02.png", png(8)), ("DOE_JOHN_copy.png", png(8)), ("DOE_JOHN.dcm", b"not dicom")]
    ):
        staged = tmp_path / f"upload-{i}"
        staged.write_bytes(data)
        paths.append(f"{name}\t{staged}")
    out = import_files(project.pk, paths)
    assert {k: out[k] for k in ("ingested", "duplicate", "rejected")} == {"ingested": 1, "duplicate": 1, "rejected": 1}
    assert out["image_ids"] == list(Image.objects.filter(project=project).values_list("pk", flat=True))
    assert "DOE" not in repr(out) and "_1960" not in repr(out)  # a bare "1960" could be an image id
