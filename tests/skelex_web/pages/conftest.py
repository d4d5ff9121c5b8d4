"""Page tests: a signed-in browser client per persona; a fast password hasher keeps the many users
quick to create (not a security setting)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def browser_for(personas: dict[str, Any]) -> Any:
    """``browser_for("lead")``: a Django test client signed in (session cookie) as that persona."""

    def make(who: str) -> Client:
        client = Client()
        client.force_login(personas[who])
        return client

    return make
