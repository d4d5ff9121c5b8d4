"""End-to-end fixtures: the app served by daphne (``manage.py runserver --nostatic`` with daphne
installed: HTTP, the app's own static files and websockets in one process) on a fresh SQLite
database seeded by ``seed.py``, and Debian's chromium driven by Playwright.

Skipped with a reason where /usr/bin/chromium is absent, except under CI=true where that fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.paths import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class LiveApp:
    url: str
    db: Path
    ids: dict[str, Any]
    password: str = "e2e-pass-1234"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("/usr/bin/chromium is missing (CI installs it with apt-get install chromium)")
    pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium)")


@contextlib.contextmanager
def serve(tmp: Path, root: Path = REPO_ROOT, *, worker: bool = False, seeds: tuple[str, ...] = ()) -> Iterator[LiveApp]:
    """Migrates and seeds a fresh SQLite database under ``tmp`` and serves the app on a free port
    (the checkout at ``root``: another one, for a benchmark's baseline).

    ``worker``: serve with ``manage.py runembedded`` (daphne plus the embedded Celery worker on the
    in-memory broker, as ``make demo`` does) instead of ``runserver``, so queued tasks really run.
    ``seeds``: more seed scripts under ``tests/e2e`` run after ``seed.py``; each gets the ids
    printed so far as JSON in ``E2E_IDS`` and may print more (merged into ``ids``).
    """
    db = tmp / "e2e.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        SKELEX_VAR_DIR=str(tmp),
        DATABASE_URL=f"sqlite:///{db}",
        MEDIA_ROOT=str(tmp / "media"),
        CELERY_EMBEDDED_WORKER="0",
        CELERY_TASK_ALWAYS_EAGER="0",
        DEBUG="1",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=root, env=env, check=True)
    seeded = subprocess.run(
        [py, str(root / "tests" / "e2e" / "seed.py")],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    ids = json.loads(seeded.stdout.strip().splitlines()[-1])
    for script in seeds:
        more = subprocess.run(
            [py, str(root / "tests" / "e2e" / script)],
            cwd=root,
            env={**env, "E2E_IDS": json.dumps(ids)},
            check=True,
            capture_output=True,
            text=True,
        )
        ids.update(json.loads(more.stdout.strip().splitlines()[-1]))
    port = _free_port()
    if worker:
        env["CELERY_EMBEDDED_WORKER"] = "1"
        command = ["runembedded", "--port", str(port)]
    else:
        # --nostatic: the app's own static serving (SERVE_STATIC, as the demo and compose run it),
        # not runserver's development handler.
        command = ["runserver", "--noreload", "--nostatic", f"127.0.0.1:{port}"]
    with open(tmp / "server.log", "w") as log:
        server = subprocess.Popen(
            [py, "manage.py", *command],
            cwd=root,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/accounts/login/", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    raise RuntimeError(f"the server did not start:\n{(tmp / 'server.log').read_text()[-3000:]}")
                time.sleep(0.3)
            yield LiveApp(url=url, db=db, ids=ids)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    _require_chromium()
    with serve(tmp_path_factory.mktemp("e2e")) as app:
        yield app


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
