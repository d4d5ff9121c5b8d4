"""Websocket routes (consumers push events only)."""

from __future__ import annotations

from typing import Any

from django.urls import re_path

from .consumers import ProjectEventsConsumer

websocket_urlpatterns: list[Any] = [
    re_path(r"^ws/projects/(?P<project_id>\d+)/$", ProjectEventsConsumer.as_asgi()),
]
