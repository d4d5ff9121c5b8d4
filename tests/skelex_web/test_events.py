"""``skelex_web.events.publish``: sent on commit, never for rolled-back changes, never fatal."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from skelex_web import events
from tests.factories import ImageFactory


def _listen(project_id: int) -> tuple[Any, str]:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(events.group_name(project_id), channel)
    return layer, channel


def _next(layer: Any, channel: str, timeout: float = 0.3) -> dict[str, Any] | None:
    async def receive() -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(layer.receive(channel), timeout)
        except TimeoutError:
            return None

    return async_to_sync(receive)()


def test_publish_waits_for_commit(db: Any, django_capture_on_commit_callbacks: Any) -> None:
    layer, channel = _listen(5)
    with django_capture_on_commit_callbacks(execute=True):
        events.publish(5, "job.progress", {"job": "analysis", "done": 1, "total": 4})
        assert _next(layer, channel, 0.1) is None  # not before the commit
    message = _next(layer, channel)
    assert message is not None
    assert message["event"] == {"type": "job.progress", "project": 5, "job": "analysis", "done": 1, "total": 4}


def test_rolled_back_changes_are_never_announced(db: Any, django_capture_on_commit_callbacks: Any) -> None:
    layer, channel = _listen(6)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            events.publish(6, "image.ingested", {"image": 1})
            raise RuntimeError("boom")
    assert _next(layer, channel) is None


def test_unknown_event_types_are_refused(db: Any) -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        events.publish(1, "image.exploded", {})


def test_an_unreachable_channel_layer_does_not_break_the_caller(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    assert events.send_now(1, "queue.updated", {"reason": "test"}) is False


def test_publish_many_sends_one_message_per_payload_in_order_on_commit(
    db: Any, django_capture_on_commit_callbacks: Any
) -> None:
    layer, channel = _listen(7)
    with django_capture_on_commit_callbacks(execute=True):
        events.publish_many(
            7, "image.ingested", [{"image": i, "name": f"{i}.png", "status": "queued"} for i in (3, 1, 2)]
        )
        assert _next(layer, channel, 0.1) is None  # not before the commit
    received = [_next(layer, channel) for _ in range(3)]
    assert [m["event"]["image"] for m in received if m] == [3, 1, 2]
    assert _next(layer, channel, 0.1) is None


def test_deleting_an_image_tells_its_open_viewers_who_deleted_it(
    project: Any, personas: Any, client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    image = ImageFactory(project=project)
    layer, channel = _listen(project.pk)

    with django_capture_on_commit_callbacks(execute=True):
        assert client_for("lead").delete(f"/api/images/{image.pk}/").status_code == 204

    message = _next(layer, channel)
    assert message is not None
    assert message["event"] == {"type": "image.deleted", "project": project.pk, "image": image.pk, "by": "lena"}
