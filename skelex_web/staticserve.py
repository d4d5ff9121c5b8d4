"""Static files served by the ASGI app itself (``SERVE_STATIC``: the demo, single-process
deployments and the browser tests), from memory, in the event loop; and content versions for
static URLs, so pages can link files that browsers may cache for good.

The viewer is ~40 small ES modules with no build step, all requested at once on a cold visit.
Django's ``ASGIStaticFilesHandler`` runs each one through a request object, ``serve()`` in a worker
thread and a thread-sensitive read of the file: about 2.5 ms of the one server process per file,
so the image request queued behind them. Here a file is found once (the same staticfiles finders,
so no ``collectstatic`` is needed), read once and kept with its content hash, and each request is a
``stat`` and a dictionary look-up.

Caching: a URL whose ``?v=`` is the file's current version (``versioned_url``) is immutable, so a
warm visit asks nothing; any other URL gets ``STATIC_CACHE_CONTROL`` (``no-cache``: revalidate, a
304 when unchanged), so browsers never run a mix of old and new modules after an upgrade.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import posixpath
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.templatetags.static import static

Scope = dict[str, Any]
IMMUTABLE = b"public, max-age=31536000, immutable"


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    version: str  # content hash: what ``?v=`` must say for the URL to be cached for good
    content_type: bytes
    stamp: tuple[int, int]  # (mtime_ns, size) when read: a changed file is read again

    @property
    def etag(self) -> bytes:
        return f'"{self.version}"'.encode("ascii")


class FileCache:
    """Static files by relative path (``frontend/viewer/main.js``), as the finders locate them."""

    def __init__(self) -> None:
        self._paths: dict[str, str] = {}
        self._files: dict[str, StaticFile] = {}

    def get(self, rel: str) -> StaticFile | None:
        rel = posixpath.normpath(unquote(rel)).lstrip("/")
        if rel in ("", ".", "..") or rel.startswith("../"):
            return None
        path = self._paths.get(rel)
        if path is None:
            try:
                found = finders.find(rel)
            except (SuspiciousFileOperation, ValueError):  # odd names (NUL bytes, escapes) are not files here
                return None
            if not isinstance(found, str):
                return None
            path = self._paths[rel] = found
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            self._paths.pop(rel, None)
            self._files.pop(rel, None)
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._files.get(rel)
        if cached is not None and cached.stamp == stamp:
            return cached
        # A small file read in the event loop: cheaper than a thread hop, and once per change.
        with open(path, "rb") as fh:
            body = fh.read()
        content_type, encoding = mimetypes.guess_type(path)
        if encoding or not content_type:
            content_type = "application/octet-stream"
        version = hashlib.blake2b(body, digest_size=8).hexdigest()
        cached = self._files[rel] = StaticFile(body, version, content_type.encode("latin-1"), stamp)
        return cached


FILES = FileCache()


def versioned_url(rel: str) -> str:
    """``{% static rel %}`` with the file's content version, or without one if it is not found."""
    found = FILES.get(rel)
    url = static(rel)
    return f"{url}?v={found.version}" if found else url


class StaticFiles:
    """ASGI middleware: GET/HEAD under ``prefix`` from the staticfiles finders, the rest to ``app``."""

    def __init__(self, app: Any, prefix: str | None = None, cache_control: str | None = None) -> None:
        self.app = app
        self.prefix = "/" + (prefix or settings.STATIC_URL).strip("/") + "/"
        self.cache_control = (cache_control or settings.STATIC_CACHE_CONTROL).encode("latin-1")

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, [(b"allow", b"GET, HEAD"), (b"content-length", b"0")], b"")
            return
        found = FILES.get(scope["path"][len(self.prefix) :])
        if found is None:
            await _respond(send, 404, [(b"content-type", b"text/plain"), (b"content-length", b"10")], b"Not found.")
            return
        asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("v", [])
        headers = [
            (b"etag", found.etag),
            (b"cache-control", IMMUTABLE if asked == [found.version] else self.cache_control),
            (b"x-content-type-options", b"nosniff"),
        ]
        tags = _if_none_match(scope)
        if found.etag in tags or b"*" in tags:
            await _respond(send, 304, headers, b"")
            return
        headers += [(b"content-type", found.content_type), (b"content-length", b"%d" % len(found.body))]
        await _respond(send, 200, headers, b"" if scope["method"] == "HEAD" else found.body)


async def _respond(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _if_none_match(scope: Scope) -> set[bytes]:
    """The request's If-None-Match ETags, weak ones compared as strong (static content)."""
    for name, value in scope.get("headers", ()):
        if name == b"if-none-match":
            tags = {t.strip() for t in value.split(b",")}
            return {t[2:] if t.startswith(b"W/") else t for t in tags}
    return set()
