"""Export progress reaches the project's websocket group as ``job.progress`` events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from skelex_web.events import group_name
from skelex_web.exports import services
from skelex_web.exports.models import ExportJob

pytestmark = pytest.mark.django_db


async def _drain(layer: Any, channel: str) -> list[dict[str, Any]]:
    events = []
    while True:
        try:
            message = await asyncio.wait_for(layer.receive(channel), timeout=0.2)
        except TimeoutError:
            return events
        events.append(message["event"])


def test_export_announces_progress_and_completion(
    project: Any, labelled: Any, django_capture_on_commit_callbacks: Any
) -> None:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group_name(project.pk), channel)
    version = services.create_version(project=project)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.export_now(version=version, fmt="csv", images="png8")
    events = [e for e in async_to_sync(_drain)(layer, channel) if e["type"] == "job.progress"]
    assert events, "no job.progress event"
    assert all(e["job"] == f"export:{job.pk}" and e["project"] == project.pk for e in events)
    assert events[-1]["state"] == "done" and events[-1]["done"] == events[-1]["total"] == 12
    assert ExportJob.objects.get(pk=job.pk).done == 12
