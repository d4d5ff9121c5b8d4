"""The periodic sweep as celery beat sends it: the scheduled entry, run by name, re-queues a lost image."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from skelex_web.celery import app
from skelex_web.learning.services import ANALYSIS_TASK
from skelex_web.studies.models import Image
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


def test_the_scheduled_sweep_requeues_a_lost_image_and_leaves_a_recent_one(
    project: Any, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    import workers.tasks.sweep  # noqa: F401 - registers the task, as a worker does at start

    entry = settings.CELERY_BEAT_SCHEDULE["requeue-stuck-images"]
    lost = ImageFactory(project=project, status="queued")
    ImageFactory(project=project, status="queued")  # queued just now: not stuck
    long_ago = timezone.now() - timedelta(seconds=entry["kwargs"]["older_than_s"] + 60)
    Image.objects.filter(pk=lost.pk).update(updated_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        counts = app.tasks[entry["task"]].apply(kwargs=entry["kwargs"]).get()

    jobs = {"stuck": 0, "in_broker": 0, "resent": 0, "failed": 0}  # none here (tests/skelex_web/learning/test_sweep.py)
    assert counts == {
        "stuck": 1, "in_broker": 0, "requeued": 1, "broker_checked": False, "uploads": jobs, "exports": jobs
    }  # fmt: skip
    assert sent_tasks == [(ANALYSIS_TASK, [[lost.pk]])]
    assert app.amqp.router.route({}, entry["task"])["queue"].name == settings.CELERY_TASK_DEFAULT_QUEUE
