"""The ASGI app's own static files: bodies and types, ETag revalidation, versioned URLs cached for
good and the rest revalidated, a changed file served anew, nothing outside the static folders."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles import finders

from skelex_web.staticserve import StaticFiles, versioned_url
from tests.paths import REPO_ROOT

MAIN_JS = REPO_ROOT / "frontend" / "src" / "viewer" / "main.js"


def passthrough_app(calls: list[str]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"from the app"})

    return app


def request(
    app: Any, path: str, method: str = "GET", query: str = "", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return (
        start["status"],
        {k.decode(): v.decode() for k, v in start["headers"]},
        b"".join(m.get("body", b"") for m in sent[1:]),
    )


@pytest.fixture
def app() -> StaticFiles:
    return StaticFiles(passthrough_app([]), "/static/", "no-cache")


def test_serves_a_viewer_module_with_its_type_and_an_etag(app: StaticFiles) -> None:
    status, headers, body = request(app, "/static/frontend/viewer/main.js")
    assert status == 200
    assert body == MAIN_JS.read_bytes()
    assert headers["content-type"] in ("text/javascript", "application/javascript")
    assert headers["content-length"] == str(len(body))
    assert headers["cache-control"] == "no-cache"
    assert headers["etag"].startswith('"')
    assert headers["x-content-type-options"] == "nosniff"


def test_revalidation_with_the_etag_is_a_304_without_a_body(app: StaticFiles) -> None:
    _, first, _ = request(app, "/static/frontend/viewer/main.js")
    status, headers, body = request(app, "/static/frontend/viewer/main.js", headers={"If-None-Match": first["etag"]})
    assert (status, body) == (304, b"")
    assert headers["etag"] == first["etag"]
    assert "content-length" not in headers
    status, _, body = request(app, "/static/frontend/viewer/main.js", headers={"If-None-Match": '"something-else"'})
    assert status == 200 and body


def test_a_current_version_in_the_url_is_cached_for_good_a_stale_one_is_not(app: StaticFiles) -> None:
    url = versioned_url("frontend/viewer/main.js")
    path, _, query = url.partition("?")
    assert path == "/static/frontend/viewer/main.js" and query.startswith("v=")
    _, headers, body = request(app, path, query=query)
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert body == MAIN_JS.read_bytes()
    _, headers, _ = request(app, path, query="v=0123456789abcdef")
    assert headers["cache-control"] == "no-cache"


def test_head_has_the_headers_and_no_body_other_methods_are_refused(app: StaticFiles) -> None:
    status, headers, body = request(app, "/static/frontend/viewer/main.js", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str(MAIN_JS.stat().st_size)
    status, headers, _ = request(app, "/static/frontend/viewer/main.js", method="POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "path",
    [
        "/static/frontend/viewer/nope.js",
        "/static/../manage.py",
        "/static/frontend/../../manage.py",
        "/static/%2e%2e/manage.py",
        "/static//etc/passwd",
        "/static/frontend/viewer/main.js%00.png",
        "/static/",
    ],
)
def test_nothing_outside_the_static_files(app: StaticFiles, path: str) -> None:
    status, _, body = request(app, path)
    assert status == 404
    assert b"django" not in body.lower()


def test_other_paths_go_to_the_app() -> None:
    calls: list[str] = []
    app = StaticFiles(passthrough_app(calls), "/static/", "no-cache")
    status, _, body = request(app, "/api/images/1/display/")
    assert (status, body, calls) == (200, b"from the app", ["/api/images/1/display/"])


@pytest.fixture
def scratch_static(tmp_path: Path, settings: Any) -> Iterator[Path]:
    """A folder served under /static/scratch/ (finders re-read the setting)."""
    settings.STATICFILES_DIRS = [*settings.STATICFILES_DIRS, ("scratch", tmp_path)]
    finders.get_finder.cache_clear()
    yield tmp_path
    finders.get_finder.cache_clear()


def test_a_changed_file_is_served_anew_with_a_new_version(app: StaticFiles, scratch_static: Path) -> None:
    f = scratch_static / "tool.js"
    f.write_text("export const v = 1;\n")
    _, first, body = request(app, "/static/scratch/tool.js")
    url1 = versioned_url("scratch/tool.js")
    assert body == b"export const v = 1;\n"
    f.write_text("export const v = 22;\n")
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a later mtime, whatever the clock's grain
    status, second, body = request(app, "/static/scratch/tool.js", headers={"If-None-Match": first["etag"]})
    assert (status, body) == (200, b"export const v = 22;\n")
    assert second["etag"] != first["etag"]
    assert versioned_url("scratch/tool.js") != url1
