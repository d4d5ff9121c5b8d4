"""Live project events: ``publish(project_id, type, payload)`` pushes to the project's websocket group.

Every browser viewing a project listens on ``/ws/projects/<id>/`` (see ``skelex_web/consumers.py``);
services and tasks call :func:`publish` after a state change. The message is sent only when the
surrounding transaction commits, so a client never hears about a row it cannot read yet, and a
rolled-back change is never announced. Sending is best effort: a channel layer that is down (Redis
restarting) is logged and never fails the caller; the database stays the source of truth and
clients re-read it on reconnect.

Event types (the ``type`` field of every message)::

    image.ingested     {"image": id, "name": str, "status": str}
    image.analysed     {"image": id, "status": "analysed" | "failed", "image_score": float | None,
                        "suggestions": int, "error": str}
    image.deleted      {"image": id, "by": username} (a lead deleted it; open viewers stop saving)
    suggestions.ready  {"image": id, "count": int, "model_version": id}
    suggestion.resolved {"image": id, "suggestion": id, "state": "rejected" | "pending"}
                       (pending = a rejection undone; accepted/edited come as annotation.saved)
    annotation.saved   {"annotation": id, "image": id, "author": id, "version": int, "deleted": bool}
    queue.updated      {"reason": str}
    job.progress       {"job": str, "done": int, "total": int}
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

EVENT_TYPES = frozenset(
    {
        "image.ingested",
        "image.analysed",
        "image.deleted",
        "suggestions.ready",
        "annotation.saved",
        "suggestion.resolved",
        "queue.updated",
        "job.progress",
    }
)
# The consumer method that receives group messages (Channels maps "project.event" -> project_event).
HANDLER = "project.event"


# The event loop serving websockets in this process (set by the consumer). The in-memory layer's
# queues belong to that loop and are not thread-safe, so in embedded mode a worker thread hands
# its sends to that loop instead of running them on a loop of its own.
_server_loop: asyncio.AbstractEventLoop | None = None
SEND_TIMEOUT_S = 5.0


def bind_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called from the websocket consumer: remember the loop that owns in-memory layer queues."""
    global _server_loop
    _server_loop = loop


_sender_lock = threading.Lock()
_sender_loop: asyncio.AbstractEventLoop | None = None
_sender_pid = 0


def _sender() -> asyncio.AbstractEventLoop:
    """A long-lived loop in a daemon thread for sends from synchronous code (workers, views).

    One loop per process keeps the Redis channel layer's connection pool alive between events
    (a fresh loop per send would connect anew each time). Re-created after a fork.
    """
    global _sender_loop, _sender_pid
    with _sender_lock:
        if _sender_loop is None or _sender_pid != os.getpid() or not _sender_loop.is_running():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="events-sender", daemon=True).start()
            _sender_loop, _sender_pid = loop, os.getpid()
        return _sender_loop


def _group_send(layer: Any, group: str, msgs: list[dict[str, Any]]) -> None:
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    if current is not None:
        raise RuntimeError("events.send_now is synchronous; from async code await the channel layer directly")

    async def send_all() -> None:  # one hand-over to a loop for all messages, in order
        for msg in msgs:
            await layer.group_send(group, msg)

    if isinstance(layer, InMemoryChannelLayer):
        # Its queues belong to the loop serving the websockets; hand the send to that loop.
        loop = _server_loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(send_all(), loop).result(SEND_TIMEOUT_S)
        else:
            async_to_sync(send_all)()
        return
    asyncio.run_coroutine_threadsafe(send_all(), _sender()).result(SEND_TIMEOUT_S)


def group_name(project_id: int) -> str:
    """The Channels group of one project's listeners."""
    return f"project-{int(project_id)}"


def message(project_id: int, type: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON object a websocket client receives: ``{"type", "project", **payload}``."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    return {**(payload or {}), "type": type, "project": int(project_id)}


def send_now(project_id: int, type: str, payload: dict[str, Any] | None = None) -> bool:
    """Sends immediately (no transaction hook). Returns False when the channel layer failed.

    Must be called from synchronous code (a view, a service, a task), never from a running event loop.
    """
    return send_many_now(project_id, type, [payload])


def send_many_now(project_id: int, type: str, payloads: Sequence[dict[str, Any] | None]) -> bool:
    """Sends one message per payload, in order, in one hand-over to the event loop (cheaper than
    :func:`send_now` in a loop for a batch). Returns False when the channel layer failed."""
    events = [message(project_id, type, payload) for payload in payloads]
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        _group_send(layer, group_name(project_id), [{"type": HANDLER, "event": event} for event in events])
    except Exception as exc:  # noqa: BLE001 - best effort: a push failure never breaks the state change
        logger.warning("event %s for project %s not delivered: %s", type, project_id, exc)
        return False
    return True


def publish(project_id: int, type: str, payload: dict[str, Any] | None = None) -> None:
    """Announces an event to the project's listeners once the current transaction commits.

    Outside a transaction (autocommit) the event is sent at once.

    Args:
        project_id: the project whose members should hear it.
        type: one of :data:`EVENT_TYPES`.
        payload: JSON-serialisable fields merged into the message.
    """
    publish_many(project_id, type, [payload])


def publish_many(project_id: int, type: str, payloads: Sequence[dict[str, Any] | None]) -> None:
    """:func:`publish` for several events of one type: one message each, sent in order on commit
    through one hand-over to the event loop (ingest announces a group of images this way)."""
    if not payloads:
        return
    for payload in payloads:
        message(project_id, type, payload)  # validate now, where the caller's stack trace is useful
    transaction.on_commit(lambda: send_many_now(project_id, type, payloads))
