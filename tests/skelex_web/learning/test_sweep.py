"""Stuck-image sweep (``manage.py requeue_stuck``): images whose analysis message was lost are
queued again; images still waiting their turn, recently queued or finished are left alone."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from skelex_web.learning.services import ANALYSIS_TASK, parse_duration, requeue_stuck
from skelex_web.studies.models import Image
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


def waiting_since(project: Any, status: str, minutes_ago: float) -> Image:
    """An image whose status was set ``minutes_ago`` (``update()`` keeps auto_now away)."""
    image = ImageFactory(project=project, status=status)
    Image.objects.filter(pk=image.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes_ago))
    image.refresh_from_db()
    return image


@pytest.fixture
def production(settings: Any) -> None:
    """Workers in their own processes (REDIS_URL set), where the command may send."""
    settings.CELERY_EMBEDDED_WORKER = False


def sweep(*args: str, capture: Any) -> str:
    out = StringIO()
    with capture(execute=True):
        call_command("requeue_stuck", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("status", ["queued", "analysing", "ingested"])
def test_an_image_waiting_long_with_no_message_is_queued_again(
    project: Any, production: None, sent_tasks: list, django_capture_on_commit_callbacks: Any, status: str
) -> None:
    lost = waiting_since(project, status, minutes_ago=45)

    out = sweep("--older-than", "30m", capture=django_capture_on_commit_callbacks)

    assert sent_tasks == [(ANALYSIS_TASK, [[lost.pk]])]
    lost.refresh_from_db()
    assert lost.status == "queued" and timezone.now() - lost.updated_at < timedelta(minutes=1)
    assert "1 image(s) ingested, queued or analysing for more than 30m" in out
    assert f"re-queued 1 image(s): {lost.pk}" in out


def test_a_second_sweep_right_after_sends_nothing_more(
    project: Any, production: None, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    lost = waiting_since(project, "queued", minutes_ago=120)
    sweep("--older-than", "30m", capture=django_capture_on_commit_callbacks)

    out = sweep("--older-than", "30m", capture=django_capture_on_commit_callbacks)

    assert sent_tasks == [(ANALYSIS_TASK, [[lost.pk]])]
    assert "re-queued 0 image(s)" in out


def test_a_recently_queued_image_is_left_to_the_queue(
    project: Any, production: None, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    recent = waiting_since(project, "queued", minutes_ago=5)

    out = sweep("--older-than", "30m", capture=django_capture_on_commit_callbacks)

    assert sent_tasks == []
    recent.refresh_from_db()
    assert timezone.now() - recent.updated_at > timedelta(minutes=4)
    assert "0 image(s) ingested, queued or analysing" in out


@pytest.mark.parametrize("status", ["analysed", "failed"])
def test_a_finished_image_is_never_queued_again(
    project: Any, production: None, sent_tasks: list, django_capture_on_commit_callbacks: Any, status: str
) -> None:
    done = waiting_since(project, status, minutes_ago=60 * 24 * 30)

    sweep("--older-than", "0s", capture=django_capture_on_commit_callbacks)

    assert sent_tasks == []
    done.refresh_from_db()
    assert done.status == status


def test_many_lost_images_go_out_in_analysis_batches(
    project: Any, production: None, sent_tasks: list, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.ANALYSIS_BATCH_SIZE = 2
    lost = [waiting_since(project, "queued", minutes_ago=61).pk for _ in range(5)]

    sweep("--older-than", "1h", capture=django_capture_on_commit_callbacks)

    assert [ids for _, (ids,) in sent_tasks] == [lost[0:2], lost[2:4], lost[4:5]]


def test_dry_run_reports_and_changes_nothing(
    project: Any, production: None, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    lost = waiting_since(project, "queued", minutes_ago=90)

    out = sweep("--older-than", "30m", "--dry-run", capture=django_capture_on_commit_callbacks)

    assert sent_tasks == []
    assert Image.objects.get(pk=lost.pk).updated_at == lost.updated_at
    assert "dry run" in out and f"would re-queue 1 image(s): {lost.pk}" in out


def test_embedded_mode_refuses_to_send_from_another_process(project: Any, settings: Any, sent_tasks: list) -> None:
    settings.CELERY_EMBEDDED_WORKER = True
    waiting_since(project, "queued", minutes_ago=90)

    with pytest.raises(CommandError, match="embedded mode"):
        call_command("requeue_stuck", "--older-than", "30m", stdout=StringIO())
    assert sent_tasks == []


def test_a_bad_duration_is_refused(production: None) -> None:
    with pytest.raises(CommandError, match="not a duration"):
        call_command("requeue_stuck", "--older-than", "soon", stdout=StringIO())


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1800", 1800), ("1.5h", 5400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


# --- the broker's side: a real Redis, as Celery's Redis transport lays messages out ---


@pytest.mark.integration
def test_images_whose_message_waits_or_is_at_a_worker_are_left_alone(
    project: Any, redis_broker: str, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    from celery import Celery
    from django.conf import settings
    from kombu import Connection

    at_worker, waiting, lost = (waiting_since(project, "queued", minutes_ago=120) for _ in range(3))
    web = Celery("web-elsewhere", broker=redis_broker)  # another process's app: not the patched one
    web.conf.task_routes = settings.CELERY_TASK_ROUTES
    web.send_task(ANALYSIS_TASK, args=[[at_worker.pk]], kwargs={"model_version_id": None})
    with Connection(redis_broker) as worker_conn:
        delivered = worker_conn.SimpleQueue("gpu").get(timeout=5)  # delivered, not acknowledged
        web.send_task(ANALYSIS_TASK, args=[[waiting.pk]], kwargs={"model_version_id": None})

        with django_capture_on_commit_callbacks(execute=True):
            result = requeue_stuck(timedelta(minutes=30), broker_url=redis_broker)

        delivered.ack()
    assert result.broker_checked
    assert sorted(result.in_broker) == sorted([at_worker.pk, waiting.pk])
    assert result.requeued == [lost.pk]
    assert sent_tasks == [(ANALYSIS_TASK, [[lost.pk]])]


@pytest.mark.integration
def test_the_command_also_settles_uploads_and_exports_whose_message_was_lost(
    project: Any, production: None, redis_broker: str, sent_tasks: list, monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    from skelex_web.exports.models import DatasetVersion, ExportJob
    from skelex_web.studies.models import UploadJob

    monkeypatch.setenv("CELERY_BROKER_URL", redis_broker)  # what Celery reads first
    long_ago = timezone.now() - timedelta(hours=2)
    upload = UploadJob.objects.create(project=project, files=3, state="running")  # its files are gone
    version = DatasetVersion.objects.create(project=project, number=1, manifest="m.json", content_hash="0" * 64)
    export = ExportJob.objects.create(version=version, format="coco", state="queued")
    UploadJob.objects.filter(pk=upload.pk).update(created_at=long_ago)
    ExportJob.objects.filter(pk=export.pk).update(created_at=long_ago)

    out = sweep("--older-than", "30m", capture=django_capture_on_commit_callbacks)

    assert "1 upload job(s) queued or running with no recent change" in out
    assert f"mark failed 1: {upload.pk}" in out and f"send again 1: {export.pk}" in out
    assert UploadJob.objects.get(pk=upload.pk).state == "failed"
    assert sent_tasks == [("workers.export.build", [export.pk])]
