"""Shared fixtures: named personas (healthchecks-style) and API clients.

lead (Lena), reviewer (Rui), annotator (Ana), viewer (Vic) in ``project``; outsider (Otto) in none;
``other_project`` belongs to a different lead, so cross-project access can be checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.services import REDIS_URL, require_redis

ROLES = ("lead", "reviewer", "annotator", "viewer")


@pytest.fixture(autouse=True)
def _test_settings(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Media in a temporary folder per test, never var/; a fast password hasher (tests only)."""
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def project(db: Any) -> Any:
    return ProjectFactory(name="Wrist fractures", slug="wrist")


@pytest.fixture
def other_project(db: Any) -> Any:
    other = ProjectFactory(name="Someone else's", slug="elsewhere")
    MembershipFactory(user=UserFactory(username="olga"), project=other, role="lead")
    return other


@pytest.fixture
def personas(project: Any) -> dict[str, Any]:
    people = {
        "lead": UserFactory(username="lena"),
        "reviewer": UserFactory(username="rui"),
        "annotator": UserFactory(username="ana"),
        "viewer": UserFactory(username="vic"),
        "outsider": UserFactory(username="otto"),
    }
    for role in ROLES:
        MembershipFactory(user=people[role], project=project, role=role)
    return people


@pytest.fixture
def client_for(personas: dict[str, Any]) -> Callable[[str], APIClient]:
    def make(who: str) -> APIClient:
        client = APIClient()
        client.force_authenticate(personas[who])
        return client

    return make


@pytest.fixture
def sent_tasks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Records ``(task name, args)`` sent to the broker, the edge of the web process; clears the
    cache so no retrain looks pending from an earlier test."""
    from django.core.cache import cache

    from skelex_web.celery import app

    sent: list[tuple[str, Any]] = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, **kw: sent.append((name, args)))
    cache.clear()
    return sent


@pytest.fixture
def redis_broker() -> Iterator[str]:
    """A real Redis database of its own (db 9), empty before and after: the broker as another
    process's worker sees it (the stuck-work sweeps read its queues and unacknowledged messages)."""
    import redis

    require_redis()
    url = REDIS_URL.rsplit("/", 1)[0] + "/9"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
