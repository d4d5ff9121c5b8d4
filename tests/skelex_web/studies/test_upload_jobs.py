"""Queued uploads report each file's fate on a job: by position, never by name; readable by the
uploader and the project's leads only; failed with a reason when the task gives up.

The upload goes through the view; the message it sends (recorded at the broker, the edge of the
web process) is run by the registered ``workers.ingest.import_files`` task through Celery's
tracer (``apply``), retries and failure handler included.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection
from django.utils import timezone

from skelex_web.studies import uploads
from skelex_web.studies.models import Image, UploadJob
from skelex_web.studies.services import ingest_many
from tests.factories import MembershipFactory, UserFactory
from tests.workers.imaging.samples import film, jpeg_with_metadata
from workers.tasks.ingest import import_files

from .ingest_helpers import SentTasks, png, zip_of

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.skelex_web.studies.upload_urls")]

PHI = "DOE_JOHN_1960.jpg"  # nothing stored, sent or logged may contain it
TASK = "workers.ingest.import_files"


@pytest.fixture(autouse=True)
def sent(monkeypatch: pytest.MonkeyPatch) -> SentTasks:
    from skelex_web.celery import app

    recorder = SentTasks()
    monkeypatch.setattr(app, "send_task", recorder)
    monkeypatch.setattr(uploads, "INLINE_MAX_FILES", 1)  # every upload of 2+ files is queued
    return recorder


@pytest.fixture
def colleague(project: Any, personas: Any) -> Any:
    """A second annotator of the project (Anders)."""
    user = UserFactory(username="anders")
    MembershipFactory(user=user, project=project, role="annotator")
    return user


def upload(client: Any, project: Any, *items: tuple[str, bytes]) -> dict[str, Any]:
    body = {"files": [SimpleUploadedFile(name, data) for name, data in items]}
    response = client.post(f"/api/projects/{project.pk}/images/upload/", body, format="multipart")
    assert response.status_code == 202, response.content
    return dict(response.json())


def message(sent: SentTasks) -> list[Any]:
    return [args for name, args, _ in sent.calls if name == TASK][-1]


def deliver(sent: SentTasks) -> Any:
    """Runs the last queued ingest message as a worker would; returns Celery's result."""
    return import_files.apply(args=message(sent))


def truncated_jpeg() -> bytes:
    good = jpeg_with_metadata(film())
    return good[: len(good) // 2]


def staging(settings: Any) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "staging"
    return sorted(root.rglob("*")) if root.exists() else []


def test_queued_upload_reports_each_file_by_position_without_names(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # what a worker logs
    archive = zip_of(
        [
            ("JOHN_DOE/ok.png", png(22)),
            ("../DOE_JOHN_1960.png", png(23)),
            ("JOHN_DOE/DOE_JOHN_1960.txt", b"ward notes, not an image"),
        ]
    )
    body = upload(
        client_for("annotator"),
        project,
        ("good-1.png", png(20)),
        (PHI, truncated_jpeg()),
        ("good-2.png", png(21)),
        ("DOE_JOHN_1960.zip", archive),
        ("good-1-again.png", png(20)),
    )
    out = deliver(sent)
    assert out.state == "SUCCESS"

    job = client_for("annotator").get(body["job_url"])
    assert job.status_code == 200
    data = job.json()
    assert data["state"] == "done" and data["files"] == 5 and data["error"] == ""
    assert data["counts"] == {"ingested": 3, "duplicate": 1, "rejected": 3}
    rows = [(r["index"], r["entry"], r["status"], r["reason"]) for r in data["results"]]
    assert rows == [
        (1, None, "ingested", ""),
        (2, None, "rejected", "truncated or corrupt image data: the file ends early or its pixel data is damaged"),
        (3, None, "ingested", ""),
        (4, 1, "ingested", ""),
        (4, 2, "rejected", "unsafe path in zip (absolute or '..'); skipped"),
        (4, 3, "rejected", "not a recognised image file (not DICOM, PNG, JPEG or TIFF)"),
        (5, None, "duplicate", "already in the project"),
    ]
    first = data["results"][0]["image_ids"]
    assert first and data["results"][6]["image_ids"] == first
    assert Image.objects.filter(project=project).count() == 3
    # The name is nowhere: not in the job (row and API), the broker message, the task's return
    # value or anything logged; and the staging folder, sidecar included, is gone.
    stored = UploadJob.objects.values("results", "counts", "error", "task_id").get(pk=body["job_id"])
    for text in (json.dumps(stored), job.content.decode(), json.dumps(body), repr(message(sent)), repr(out.result)):
        # The year with its underscore: a bare "1960" also turns up in timestamps and row ids.
        for part in ("DOE", "JOHN", "_1960"):
            assert part not in text
    assert caplog.records and not any(part in caplog.text for part in ("DOE_JOHN", "JOHN_DOE", "_1960"))
    assert staging(settings) == []


def test_an_empty_or_unreadable_zip_still_answers_its_index(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks
) -> None:
    body = upload(
        client_for("annotator"),
        project,
        ("empty.zip", zip_of([])),
        ("DOE_JOHN_broken.zip", b"PK\x03\x04" + b"\0" * 64),
        ("ok.png", png(30)),
    )
    deliver(sent)
    results = UploadJob.objects.get(pk=body["job_id"]).results
    assert [(r["index"], r["status"], r["reason"]) for r in results] == [
        (1, "rejected", "zip archive with no files"),
        (2, "rejected", "not a readable zip archive (BadZipFile)"),
        (3, "ingested", ""),
    ]


def test_two_zips_of_the_same_name_keep_their_own_indexes(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks
) -> None:
    # Two folders' "films.zip" in one request: each file's results stay with its own position.
    body = upload(
        client_for("annotator"),
        project,
        ("films.zip", zip_of([("a.png", png(50)), ("b.png", png(51))])),
        ("films.zip", zip_of([("c.png", png(52))])),
        ("films.zip", zip_of([])),
    )
    deliver(sent)
    results = UploadJob.objects.get(pk=body["job_id"]).results
    assert [(r["index"], r["entry"], r["status"]) for r in results] == [
        (1, 1, "ingested"),
        (1, 2, "ingested"),
        (2, 1, "ingested"),
        (3, None, "rejected"),
    ]


@pytest.mark.parametrize("keep,expected", [(True, "scan-0042.png"), (False, None)])
def test_queued_upload_names_images_as_before(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks, keep: bool, expected: str | None
) -> None:
    # The names left the message for the sidecar; a project that keeps file names still gets them.
    project.settings = {**project.settings, "keep_file_names": keep}
    project.save()
    upload(client_for("annotator"), project, ("scan-0042.png", png(40)), ("scan-0043.png", png(41)))
    deliver(sent)
    names = list(Image.objects.filter(project=project).order_by("id").values_list("name", "sha256"))
    assert len(names) == 2
    name, sha = names[0]
    assert name == (expected or f"png-{sha[:12]}.png")


@pytest.mark.parametrize(
    "who,code",
    [("annotator", 200), ("lead", 200), ("colleague", 404), ("reviewer", 404), ("viewer", 404), ("outsider", 404)],
)
def test_only_the_uploader_and_leads_read_a_job(
    project: Any, client_for: Callable[[str], Any], colleague: Any, who: str, code: int
) -> None:
    from rest_framework.test import APIClient

    body = upload(client_for("annotator"), project, ("a.png", png(50)), ("b.png", png(51)))
    if who == "colleague":
        client = APIClient()
        client.force_authenticate(colleague)
    else:
        client = client_for(who)
    response = client.get(body["job_url"])
    assert response.status_code == code, response.content
    if code == 200:
        assert response.json()["id"] == body["job_id"] and response.json()["uploader_name"] == "ana"


def test_a_job_is_not_reachable_through_another_project(
    project: Any, other_project: Any, client_for: Callable[[str], Any]
) -> None:
    body = upload(client_for("annotator"), project, ("a.png", png(52)), ("b.png", png(53)))
    olga = other_project.memberships.get().user
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(olga)
    assert client.get(f"/api/projects/{other_project.pk}/images/uploads/{body['job_id']}/").status_code == 404


def test_job_lists_show_your_own_and_a_lead_all(
    project: Any, client_for: Callable[[str], Any], colleague: Any, personas: Any
) -> None:
    from rest_framework.test import APIClient

    mine = upload(client_for("annotator"), project, ("a.png", png(60)), ("b.png", png(61)))
    anders = APIClient()
    anders.force_authenticate(colleague)
    theirs = upload(anders, project, ("c.png", png(62)), ("d.png", png(63)))
    listing = f"/api/projects/{project.pk}/images/uploads/"

    def ids(client: Any) -> list[int]:
        response = client.get(listing)
        assert response.status_code == 200, response.content
        rows = response.json()["results"]
        assert all("results" not in row for row in rows)  # the per-file results are on the job
        return [row["id"] for row in rows]

    assert ids(client_for("annotator")) == [mine["job_id"]]
    assert ids(anders) == [theirs["job_id"]]
    assert ids(client_for("lead")) == [theirs["job_id"], mine["job_id"]]  # newest first
    assert ids(client_for("viewer")) == []
    assert client_for("outsider").get(listing).status_code == 404


def test_broker_down_leaves_no_job_and_nothing_staged(
    project: Any, client_for: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    from skelex_web.celery import app

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(app, "send_task", refuse)
    response = client_for("annotator").post(
        f"/api/projects/{project.pk}/images/upload/",
        {"files": [SimpleUploadedFile("a.png", png(70)), SimpleUploadedFile("b.png", png(71))]},
        format="multipart",
    )
    assert response.status_code == 503
    assert UploadJob.objects.count() == 0 and staging(settings) == []


def test_the_job_fails_with_a_reason_when_the_task_raises(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    def disk_full(self: Any, name: str, content: Any) -> str:
        raise OSError(28, "No space left on device", PHI)

    body = upload(client_for("annotator"), project, (PHI, jpeg_with_metadata(film())), ("b.png", png(80)))
    monkeypatch.setattr(FileSystemStorage, "_save", disk_full)
    out = deliver(sent)
    assert out.state == "FAILURE"  # not retried: only database errors are
    job = client_for("annotator").get(body["job_url"]).json()
    assert job["state"] == "failed" and job["finished_at"] and job["results"] == []
    assert job["error"].startswith("The import stopped with an error: OSError ([Errno 28] No space left on device")
    assert "uploading again reports them as duplicates" in job["error"]
    assert "DOE" not in job["error"] and "(file)" in job["error"]
    assert Image.objects.count() == 0 and staging(settings) == []


@pytest.fixture
def insert_failures() -> Iterator[Callable[[int], None]]:
    """The database refusing the next ``n`` image INSERTs (a connection lost mid-ingest)."""
    left = {"n": 0}

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if 'INSERT INTO "studies_image"' in sql and left["n"] > 0:
            left["n"] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    def arm(n: int) -> None:
        left["n"] = n

    with connection.execute_wrapper(wrapper):
        yield arm


def test_a_retried_database_error_still_finds_the_staged_files(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks, insert_failures: Any, settings: Any
) -> None:
    body = upload(client_for("annotator"), project, ("a.png", png(90)), ("b.png", png(91)))
    insert_failures(1)
    out = deliver(sent)
    assert out.state == "SUCCESS" and out.result["ingested"] == 2
    job = UploadJob.objects.get(pk=body["job_id"])
    assert job.state == "done" and [r["status"] for r in job.results] == ["ingested", "ingested"]
    assert staging(settings) == []


def test_the_job_fails_once_the_retries_are_spent(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks, insert_failures: Any, settings: Any
) -> None:
    body = upload(client_for("annotator"), project, ("a.png", png(92)), ("b.png", png(93)))
    insert_failures(100)
    assert deliver(sent).state == "FAILURE"
    job = UploadJob.objects.get(pk=body["job_id"])
    assert job.state == "failed"
    assert job.error.startswith("The import stopped with an error after 5 retries: OperationalError (server closed")
    assert Image.objects.count() == 0 and staging(settings) == []


def test_a_message_delivered_again_after_the_job_is_done_changes_nothing(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks
) -> None:
    body = upload(client_for("annotator"), project, ("a.png", png(94)), ("b.png", png(95)))
    deliver(sent)
    before = UploadJob.objects.values("state", "results", "counts", "finished_at").get(pk=body["job_id"])
    again = deliver(sent)  # a worker died after the job was written, before it acknowledged
    assert again.result["ingested"] == 0 and again.result["image_ids"] == []
    assert UploadJob.objects.values("state", "results", "counts", "finished_at").get(pk=body["job_id"]) == before


# --- an upload whose message was lost (skelex_web/recovery.py) -----------------------------------


def age(job_id: int, hours: float) -> None:
    """The job (and its staging folder) as if created ``hours`` ago."""
    when = timezone.now() - timedelta(hours=hours)
    UploadJob.objects.filter(pk=job_id).update(created_at=when)
    folder = UploadJob.objects.get(pk=job_id).staging
    if folder:
        stamp = when.timestamp()
        os.utime(uploads.staging_root() / folder, (stamp, stamp))


def recover(capture: Any, **kwargs: Any) -> Any:
    with capture(execute=True):
        return uploads.recover_uploads(timedelta(minutes=30), **kwargs)


def test_an_upload_lost_with_the_app_is_sent_again_and_finishes(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks, django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:  # fmt: skip
    body = upload(client_for("annotator"), project, ("a.png", png(100)), ("b.png", png(101)))
    lost = message(sent)
    # The first attempt stored a.png, then the process died: the job says "running" and nothing
    # will ever finish it (the in-memory queue died with the process).
    ingest_many(project, uploads.staged_items(lost[1][:1]))
    UploadJob.objects.filter(pk=body["job_id"]).update(state="running")

    result = recover(django_capture_on_commit_callbacks, orphaned=True)

    assert result.resent == [body["job_id"]] and result.failed == []
    assert message(sent) == lost and len([c for c in sent.calls if c[0] == TASK]) == 2  # the same files, again
    job = client_for("annotator").get(body["job_url"]).json()
    assert job["state"] == "queued" and job["resent_at"] and job["error"] == ""
    assert deliver(sent).state == "SUCCESS"
    job = client_for("annotator").get(body["job_url"]).json()
    assert job["state"] == "done" and job["counts"] == {"ingested": 1, "duplicate": 1, "rejected": 0}
    assert Image.objects.filter(project=project).count() == 2 and staging(settings) == []
    assert uploads.recover_uploads(timedelta(minutes=30), orphaned=True).stuck == []  # nothing left to do


def test_a_lost_upload_whose_files_are_gone_fails_with_the_reason(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks, django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:  # fmt: skip
    body = upload(client_for("annotator"), project, ("a.png", png(102)), ("b.png", png(103)))
    UploadJob.objects.filter(pk=body["job_id"]).update(state="running")
    # The task gave up while the database was down: it removed the staged files but could not
    # write the failure.
    uploads.discard_staged(message(sent)[1])
    before = len(sent.calls)

    result = recover(django_capture_on_commit_callbacks, orphaned=True)

    assert result.failed == [body["job_id"]] and result.resent == [] and len(sent.calls) == before
    job = client_for("annotator").get(body["job_url"]).json()
    assert job["state"] == "failed" and job["finished_at"]
    assert job["error"].startswith("The import was interrupted and its staged files are gone")
    assert job["error"].endswith("uploading again reports them as duplicates.")


def test_an_upload_lost_twice_is_not_sent_a_third_time(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks, django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:  # fmt: skip
    body = upload(client_for("annotator"), project, ("a.png", png(104)), ("b.png", png(105)))
    assert recover(django_capture_on_commit_callbacks, orphaned=True).resent == [body["job_id"]]
    before = len(sent.calls)

    result = recover(django_capture_on_commit_callbacks, orphaned=True)  # lost again (its files kill the worker?)

    assert result.failed == [body["job_id"]] and len(sent.calls) == before
    job = UploadJob.objects.get(pk=body["job_id"])
    assert job.state == "failed" and job.error.startswith("The import was interrupted twice")
    assert staging(settings) == [] and Image.objects.count() == 0


def test_a_dry_run_reports_and_changes_nothing(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks, django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:  # fmt: skip
    body = upload(client_for("annotator"), project, ("a.png", png(106)), ("b.png", png(107)))
    age(body["job_id"], hours=2)
    before, files = len(sent.calls), staging(settings)

    result = recover(django_capture_on_commit_callbacks, orphaned=True, dry_run=True)

    assert result.resent == [body["job_id"]] and "would send again 1" in result.summary()
    assert len(sent.calls) == before and staging(settings) == files
    assert UploadJob.objects.get(pk=body["job_id"]).state == "queued"


def test_abandoned_staging_folders_go_and_those_in_use_or_recent_stay(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks, django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:  # fmt: skip
    body = upload(client_for("annotator"), project, ("a.png", png(108)), ("b.png", png(109)))
    age(body["job_id"], hours=2)  # its job still waits (and is sent again): its folder stays
    old_orphan = uploads.stage_files([("DOE_JOHN_1960.png", [png(110)])])[0].parent  # a request that died
    stamp = (timezone.now() - timedelta(hours=2)).timestamp()
    os.utime(old_orphan, (stamp, stamp))
    new_orphan = uploads.stage_files([("c.png", [png(111)])])[0].parent  # being written right now

    result = recover(django_capture_on_commit_callbacks, orphaned=True)

    assert result.folders_removed == [old_orphan.name]
    assert not old_orphan.exists() and new_orphan.exists()
    assert uploads.staged_folder_paths(UploadJob.objects.get(pk=body["job_id"]).staging)


def test_the_sweep_cannot_tell_lost_from_waiting_without_a_readable_broker(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks, django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    body = upload(client_for("annotator"), project, ("a.png", png(112)), ("b.png", png(113)))
    age(body["job_id"], hours=2)
    before = len(sent.calls)

    result = recover(django_capture_on_commit_callbacks, broker_url="memory://localhost//")

    assert not result.broker_checked and result.resent == result.failed == [] and len(sent.calls) == before
    assert "none changed" in result.summary()
    assert UploadJob.objects.get(pk=body["job_id"]).state == "queued"


@pytest.mark.integration
def test_the_sweep_leaves_uploads_the_broker_holds_or_that_are_recent(
    project: Any, client_for: Callable[[str], Any], sent: SentTasks, redis_broker: str,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    from celery import Celery
    from django.conf import settings
    from kombu import Connection

    client = client_for("annotator")
    jobs = [upload(client, project, (f"{i}a.png", png(120 + 2 * i)), (f"{i}b.png", png(121 + 2 * i))) for i in range(4)]
    at_worker, waiting, lost, recent = (j["job_id"] for j in jobs)
    for job_id in (at_worker, waiting, lost):
        age(job_id, hours=2)
    web = Celery("web-elsewhere", broker=redis_broker)  # another process's app: not the patched one
    web.conf.task_routes = settings.CELERY_TASK_ROUTES
    messages = {j["job_id"]: args for (name, args, _), j in zip([c for c in sent.calls if c[0] == TASK], jobs)}
    web.send_task(TASK, args=messages[at_worker], queue="ingest")
    with Connection(redis_broker) as worker_conn:
        delivered = worker_conn.SimpleQueue("ingest").get(timeout=5)  # delivered, not acknowledged
        web.send_task(TASK, args=messages[waiting], queue="ingest")
        before = len(sent.calls)

        result = recover(django_capture_on_commit_callbacks, broker_url=redis_broker)

        delivered.ack()
    assert result.broker_checked
    assert result.stuck == [at_worker, waiting, lost] and result.in_broker == [at_worker, waiting]
    assert result.resent == [lost] and sent.calls[before:] == [(TASK, messages[lost], "ingest")]
    assert UploadJob.objects.get(pk=recent).resent_at is None
