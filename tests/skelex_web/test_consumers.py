"""The project websocket: who may connect, and that members hear their project's events only.

Runs against the in-memory channel layer and the real ASGI application (origin check, session
authentication, URL routing).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from skelex_web import events
from skelex_web.asgi import application

# Transactional: database_sync_to_async closes the connection around each call (CONN_MAX_AGE 0),
# which would end a test wrapped in one transaction on PostgreSQL.
pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://testserver")


def _headers(user: Any | None) -> list[tuple[bytes, bytes]]:
    headers = [ORIGIN]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


async def _connect(project_id: int, headers: list[tuple[bytes, bytes]]) -> tuple[WebsocketCommunicator, bool]:
    comm = WebsocketCommunicator(application, f"/ws/projects/{project_id}/", headers=headers)
    connected, _ = await comm.connect()
    return comm, connected


def _refused(project_id: int, user: Any | None) -> bool:
    headers = _headers(user)

    @async_to_sync
    async def attempt() -> bool:
        comm, connected = await _connect(project_id, headers)
        await comm.disconnect()
        return not connected

    return attempt()


def test_anonymous_users_are_refused(project: Any) -> None:
    assert _refused(project.pk, None)


def test_non_members_are_refused(project: Any, personas: dict[str, Any], other_project: Any) -> None:
    assert _refused(project.pk, personas["outsider"])
    assert _refused(other_project.pk, personas["annotator"])


def test_unknown_project_is_refused_like_a_foreign_one(personas: dict[str, Any]) -> None:
    assert _refused(987654, personas["lead"])


def test_every_role_of_the_project_may_listen(project: Any, personas: dict[str, Any]) -> None:
    for role in ("lead", "reviewer", "annotator", "viewer"):
        assert not _refused(project.pk, personas[role]), role


def test_members_receive_their_projects_events_and_no_others(
    project: Any, other_project: Any, personas: dict[str, Any]
) -> None:
    headers = _headers(personas["viewer"])

    @async_to_sync
    async def scenario() -> tuple[dict[str, Any], bool]:
        comm, connected = await _connect(project.pk, headers)
        assert connected
        await sync_to_async(events.send_now)(other_project.pk, "queue.updated", {"reason": "elsewhere"})
        await sync_to_async(events.send_now)(project.pk, "image.analysed", {"image": 7, "status": "analysed"})
        received = await comm.receive_json_from(timeout=2)
        nothing_else = await comm.receive_nothing(timeout=0.2)
        await comm.disconnect()
        return received, nothing_else

    received, nothing_else = scenario()
    assert received == {"type": "image.analysed", "project": project.pk, "image": 7, "status": "analysed"}
    assert nothing_else


def test_client_messages_change_nothing_but_ping_answers(project: Any, personas: dict[str, Any]) -> None:
    headers = _headers(personas["annotator"])

    @async_to_sync
    async def scenario() -> tuple[bool, dict[str, Any]]:
        comm, _ = await _connect(project.pk, headers)
        await comm.send_json_to({"type": "annotation.saved", "annotation": 1})
        silent = await comm.receive_nothing(timeout=0.2)
        await comm.send_json_to({"type": "ping"})
        pong = await comm.receive_json_from(timeout=2)
        await comm.disconnect()
        return silent, pong

    silent, pong = scenario()
    assert silent and pong == {"type": "pong"}


def test_events_sent_from_a_plain_thread_reach_in_memory_listeners(project: Any, personas: dict[str, Any]) -> None:
    """Embedded mode: the Celery worker thread publishes while the server's loop waits on the socket."""
    headers = _headers(personas["reviewer"])

    @async_to_sync
    async def scenario() -> dict[str, Any]:
        comm, connected = await _connect(project.pk, headers)
        assert connected
        # A bare thread (no asgiref context, nothing that wakes this loop when it ends), like the worker.
        sender = threading.Thread(
            target=events.send_now, args=(project.pk, "job.progress", {"job": "analysis", "done": 1, "total": 2})
        )
        sender.start()
        try:
            return await comm.receive_json_from(timeout=1)
        finally:
            await comm.disconnect()
            sender.join(5)

    assert scenario() == {"type": "job.progress", "project": project.pk, "job": "analysis", "done": 1, "total": 2}
