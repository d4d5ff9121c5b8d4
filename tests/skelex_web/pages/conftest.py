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


def messages_at(html: str) -> dict[str, list[str]]:
    """The flash messages a page shows, by where: ``""`` = the top of the page, ``"learning"`` =
    inside the project page's Active learning section, and so on."""
    import re
    from html import unescape

    out: dict[str, list[str]] = {}
    for attrs, items in re.findall(r'<ul class="messages"([^>]*)>(.*?)</ul>', html, flags=re.S):
        where = re.search(r'data-testid="messages-([\w-]+)"', attrs)
        texts = [unescape(t) for t in re.findall(r'<li class="message[^"]*">(.*?)</li>', items, re.S)]
        out.setdefault(where.group(1) if where else "", []).extend(texts)
    return out


def index_plan(query: Any) -> str:
    """The database's plan for ``query``, asserting it reads the rows in order from an index: on the
    few rows of a test a scan and a sort cost nothing, so PostgreSQL is told not to use them, to see
    whether an index gives the order at all. Returns the plan, for the index's name."""
    from django.db import connection, transaction

    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_seqscan = off")
                cursor.execute("SET LOCAL enable_sort = off")
        plan = str(query.explain())
    assert "TEMP B-TREE" not in plan.upper() and "Sort" not in plan, plan
    return plan
