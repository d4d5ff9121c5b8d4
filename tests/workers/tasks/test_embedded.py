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
