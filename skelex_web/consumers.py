"""Websocket consumer for ``/ws/projects/<id>/``: pushes a project's live events to its members.

Push only: the server never acts on what the client sends (state changes go through the REST
API, where permissions and audit live). The connection is refused during the handshake for
anonymous users and for users who are not members of the project (the same answer for a project
that does not exist, so ids cannot be probed). Membership is checked once, on connect; a member
removed later keeps the open socket until it reconnects (events carry ids only, no labels or PHI).
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .events import bind_server_loop, group_name
from .projects.models import Membership

# Close codes sent after accept are not used for refusals: closing before accept makes the
# handshake fail (HTTP 403), which browsers and clients report uniformly.


@database_sync_to_async
def _is_member(user_id: int, project_id: int) -> bool:
    return Membership.objects.filter(user_id=user_id, project_id=project_id).exists()


class ProjectEventsConsumer(AsyncJsonWebsocketConsumer):
    """Joins the project's group on connect and forwards every ``project.event`` message as JSON."""

    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        project_id = int(self.scope["url_route"]["kwargs"]["project_id"])
        if user is None or not user.is_authenticated or not await _is_member(user.pk, project_id):
            await self.close()
            return
        bind_server_loop(asyncio.get_running_loop())
        self.group = group_name(project_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Push only: a ``{"type": "ping"}`` gets a pong (keep-alive), anything else is ignored."""
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def project_event(self, message: dict[str, Any]) -> None:
        """Group message from :func:`skelex_web.events.publish`."""
        await self.send_json(message["event"])
