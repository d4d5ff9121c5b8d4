"""Embedded mode helpers: orphaned analyses are re-queued at start; the worker refuses a real broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skelex_web import embedded
from skelex_web.studies.models import ImageStatus
from tests.workers.tasks.helpers import stored_image

pytestmark = pytest.mark.django_db


def test_images_left_pending_by_a_previous_run_are_queued_again(
    analysis_project: Any, media_root: Path, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from skelex_web.celery import app

    sent: list[list[int]] = []
    monkeypatch.setattr(app, "send_task", lambda name, args=(), kwargs=None, **kw: sent.append(list(args[0])))
    states = [ImageStatus.QUEUED, ImageStatus.ANALYSING, ImageStatus.INGESTED, ImageStatus.ANALYSED, ImageStatus.FAILED]
    images = {state: stored_image(analysis_project, media_root, i, status=state) for i, state in enumerate(states)}

    with django_capture_on_commit_callbacks(execute=True):
        assert embedded.requeue_orphans() == 3

    pending = {images[s].pk for s in states[:3]}
    assert {pk for batch in sent for pk in batch} == pending
    assert set(analysis_project.images.filter(pk__in=pending).values_list("status", flat=True)) == {ImageStatus.QUEUED}
    assert analysis_project.images.get(pk=images[ImageStatus.ANALYSED].pk).status == ImageStatus.ANALYSED


def test_the_embedded_worker_needs_the_in_memory_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")  # what Celery itself reads first
    with pytest.raises(RuntimeError, match="in-memory broker"):
        embedded.start_worker()


def _broker(monkeypatch: pytest.MonkeyPatch, app: Any) -> list[list[int]]:
    """A stand-in broker that, as Celery's publish does, announces each message it takes
    (``after_task_publish``); the embedded recorder listens as it does in the demo."""
    from celery.signals import after_task_publish

    sent: list[list[int]] = []

    def send_task(name: str, args: Any = (), kwargs: Any = None, **kw: Any) -> None:
        sent.append(list(args[0]))
        after_task_publish.send(sender=name, body=(list(args), kwargs or {}, {}))

    monkeypatch.setattr(app, "send_task", send_task)
    monkeypatch.setattr(embedded, "_sent", {})
    embedded.record_sends()
    return sent


def test_what_this_process_sends_by_any_path_is_not_picked_up(
    analysis_project: Any, media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A large upload in the demo: the ingest sends analyses itself (studies.services.queue_analysis,
    # not learning.services.queue_images); images waiting behind it are in this process's queue.
    from datetime import timedelta

    from django.utils import timezone

    from skelex_web.celery import app
    from skelex_web.studies.models import Image
    from skelex_web.studies.services import queue_analysis

    sent = _broker(monkeypatch, app)
    image = stored_image(analysis_project, media_root, 0, status=ImageStatus.QUEUED)
    Image.objects.filter(pk=image.pk).update(updated_at=timezone.now() - timedelta(minutes=1))
    queue_analysis([image.pk], mark_queued=False)
    assert sent == [[image.pk]]
    assert embedded.pickup_once(older_than=15) == 0
    assert sent == [[image.pk]], "not sent a second time"


def test_images_another_process_queued_are_picked_up_and_ours_are_not_sent_twice(
    analysis_project: Any, media_root: Path, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    # A `manage.py import_images` beside a running demo queued these into its own in-memory queue,
    # which died with it; images this process sent itself are still in its queue.
    from datetime import timedelta

    from django.utils import timezone

    from skelex_web.celery import app
    from skelex_web.studies.models import Image

    sent = _broker(monkeypatch, app)
    theirs, ours, fresh, requeued = (
        stored_image(analysis_project, media_root, i, status=ImageStatus.QUEUED) for i in range(4)
    )
    minute_ago = timezone.now() - timedelta(minutes=1)
    Image.objects.filter(pk__in=[theirs.pk, ours.pk, requeued.pk]).update(updated_at=minute_ago)
    embedded.note_sent([ours.pk, requeued.pk])
    # ...but requeued was queued again by another process after we sent it (register_model).
    Image.objects.filter(pk=requeued.pk).update(updated_at=timezone.now() - timedelta(seconds=30))
    embedded._sent[requeued.pk] = (timezone.now() - timedelta(minutes=1)).timestamp()

    with django_capture_on_commit_callbacks(execute=True):
        assert embedded.pickup_once(older_than=15) == 2
    assert sorted(pk for batch in sent for pk in batch) == sorted([theirs.pk, requeued.pk])
    # Once sent by this process they are in its queue: the next pickup leaves them alone, and a
    # just-queued image (a message possibly on its way) waits for the next round.
    with django_capture_on_commit_callbacks(execute=True):
        assert embedded.pickup_once(older_than=15) == 0
    assert fresh.pk not in {pk for batch in sent for pk in batch}
