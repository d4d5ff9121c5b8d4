"""The worker pipeline on the real services: PostgreSQL, Redis, ``celery worker`` and daphne processes.

One module-scoped setup: a fresh ``skelex_test_pipeline`` database (migrated by ``manage.py
migrate``), a tiny random backbone registered and activated by ``manage.py register_model``, a
daphne server for the websocket, and worker processes started and killed as each scenario needs.
The test process reads and writes the same database through a second connection alias and
enqueues by task name on Redis, as the web process does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.paths import REPO_ROOT
from tests.services import POSTGRES_URL, require_postgres, require_redis
from tests.workers.tasks.wsclient import WebSocket, free_port, wait_for_port

pytestmark = pytest.mark.integration

DB_NAME = "skelex_test_pipeline"
REDIS_DB_URL = "redis://127.0.0.1:6379/11"  # a database of its own, flushed at start
ALIAS = "pipeline"
VISIBILITY_TIMEOUT_S = 6
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Stack:
    """The processes and connections of one pipeline deployment under test."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.env = env
        self.tmp = tmp
        self.workers: list[subprocess.Popen[bytes]] = []
        self.server: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._n = 0
        from celery import Celery

        self.producer = Celery("pipeline-test", broker=env["REDIS_URL"])

    def manage(self, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=self.env, capture_output=True, text=True
        )
        assert proc.returncode == 0, f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def start_worker(self) -> subprocess.Popen[bytes]:
        self._n += 1
        log = self.tmp / f"worker-{self._n}.log"
        cmd = [
            str(Path(sys.executable).with_name("celery")), "-A", "skelex_web", "worker", "-Q", "gpu", "-P", "solo",
            "-c", "1", "--without-heartbeat", "--without-mingle", "--without-gossip",
            "-n", f"pipeline-{self._n}@localhost", "--loglevel", "INFO", "--logfile", str(log),
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.workers.append(proc)
        wait_until(lambda: log.exists() and " ready." in log.read_text(), 60, f"worker {self._n} to be ready")
        return proc

    def worker_log(self) -> str:
        return (self.tmp / f"worker-{self._n}.log").read_text() if self._n else ""

    def start_server(self) -> None:
        self.port = free_port()
        cmd = [str(Path(sys.executable).with_name("daphne")), "-b", "127.0.0.1", "-p", str(self.port)]
        self.server = subprocess.Popen(
            [*cmd, "skelex_web.asgi:application"], cwd=REPO_ROOT, env=self.env, stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / "daphne.log", "wb"),
        )  # fmt: skip

    def wait_for_server(self) -> None:
        wait_for_port(self.port, 60)

    def enqueue(self, image_ids: list[int], batch: int = 8) -> None:
        from skelex_web.studies.models import Image, ImageStatus

        Image.objects.using(ALIAS).filter(pk__in=image_ids).update(status=ImageStatus.QUEUED)
        for i in range(0, len(image_ids), batch):
            self.producer.send_task("workers.analysis.analyse_images", args=[image_ids[i : i + batch]], queue="gpu")

    def stop(self) -> None:
        for proc in [*self.workers, *([self.server] if self.server else [])]:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, django_db_blocker: Any) -> Iterator[Stack]:
    require_postgres()
    require_redis()
    import dj_database_url
    import psycopg
    import redis
    from django.db import connections

    base = POSTGRES_URL.rsplit("/", 1)[0]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [DB_NAME],
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    redis.Redis.from_url(REDIS_DB_URL).flushdb()
    tmp = tmp_path_factory.mktemp("pipeline")
    media = tmp / "media"
    env = {
        **os.environ,
        "DATABASE_URL": f"{base}/{DB_NAME}",
        "REDIS_URL": REDIS_DB_URL,
        "MEDIA_ROOT": str(media),
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S),
        "ANALYSIS_BATCH_SIZE": "8",
        "ML_DEVICE": "cpu",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    stack = Stack(env, tmp)
    stack.manage("migrate", "--noinput")
    default = connections.settings["default"]
    parsed = dj_database_url.parse(env["DATABASE_URL"])
    connections.settings[ALIAS] = connections.configure_settings({"default": default, ALIAS: parsed})[ALIAS]
    with django_db_blocker.unblock():
        try:
            yield stack
        finally:
            stack.stop()
            connections[ALIAS].close()


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, Any]:
    """A lead, a project with the tiny backbone active, a running daphne and one worker."""
    from django.contrib.auth import get_user_model

    from skelex_web.projects.models import Membership, Project
    from tests.workers.tasks.helpers import tiny_checkpoint

    user = get_user_model().objects.db_manager(ALIAS).create_user("pia", password="pw-for-tests-1")
    project = Project.objects.using(ALIAS).create(name="Pipeline", slug="pipeline")
    Membership.objects.using(ALIAS).create(user=user, project=project, role="lead")
    ckpt = tiny_checkpoint(stack.tmp / "ckpt")
    out = stack.manage("register_model", "--checkpoint", str(ckpt), "--name", "tiny", "--activate", "pipeline")
    assert "activated on project pipeline" in out
    stack.start_server()  # daphne and the worker start side by side
    stack.start_worker()
    stack.wait_for_server()
    return {"user": user, "project": project, "media": Path(stack.env["MEDIA_ROOT"])}


def session_cookie(user: Any) -> str:
    from datetime import timedelta

    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    data = {
        "_auth_user_id": str(user.pk),
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": user.get_session_auth_hash(),
    }
    key = f"pipeline{int(time.time() * 1000)}"
    Session.objects.using(ALIAS).create(
        session_key=key, session_data=SessionStore().encode(data), expire_date=timezone.now() + timedelta(hours=1)
    )
    return f"sessionid={key}"


def make_images(world: dict[str, Any], seeds: range, **kwargs: Any) -> list[Any]:
    from django.db import connections

    from tests.workers.tasks.helpers import stored_image

    with connections[ALIAS].cursor():  # make sure the alias is connected before helper writes
        pass
    return [stored_image(world["project"], world["media"], s, using=ALIAS, **kwargs) for s in seeds]


def statuses(ids: list[int]) -> dict[int, str]:
    from skelex_web.studies.models import Image

    return dict(Image.objects.using(ALIAS).filter(pk__in=ids).values_list("pk", "status"))


def all_analysed(ids: list[int]) -> bool:
    return set(statuses(ids).values()) == {"analysed"}


def per_image(model: Any, ids: list[int]) -> dict[int, int]:
    from django.db.models import Count

    rows = model.objects.using(ALIAS).filter(image_id__in=ids).values("image_id").annotate(n=Count("id"))
    return {r["image_id"]: r["n"] for r in rows}


def test_ingested_images_are_analysed_once_and_announced_live(stack: Stack, world: dict[str, Any]) -> None:
    from skelex_web.labeling.models import Suggestion
    from skelex_web.learning.models import Embedding, ErrorMap
    from skelex_web.studies.models import Image
    from tests.workers.tasks.helpers import png16, radiograph

    ws = WebSocket.connect(stack.port, f"/ws/projects/{world['project'].pk}/", cookie=session_cookie(world["user"]))
    folder = stack.tmp / "upload"
    folder.mkdir()
    for seed in range(20):
        (folder / f"xr-{seed:02d}.png").write_bytes(png16(radiograph(seed, 96, 80)))
    # The real ingest path: import command -> rows committed -> analysis enqueued on Redis in batches.
    out = stack.manage("import_images", str(folder), "--project", "pipeline")
    ids = list(Image.objects.using(ALIAS).filter(project=world["project"]).values_list("pk", flat=True))
    assert len(ids) == 20, out

    wait_until(lambda: all_analysed(ids), 90, "20 images analysed")
    heard: dict[int, int] = {}
    progress: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        finished = len(heard) == len(ids) and progress and progress[-1]["done"] == progress[-1]["total"]
        event = ws.receive_json(timeout=0.5 if finished else max(0.1, deadline - time.monotonic()))
        if event is None and finished:
            break  # drained: nothing more (no duplicate announcements) arrived
        if event and event.get("type") == "image.analysed":
            heard[event["image"]] = heard.get(event["image"], 0) + 1
        if event and event.get("type") == "job.progress":
            progress.append(event)
    ws.close()

    assert per_image(ErrorMap, ids) == {i: 1 for i in ids}
    assert per_image(Embedding, ids) == {i: 1 for i in ids}
    assert Suggestion.objects.using(ALIAS).filter(image_id__in=ids).count() > 0
    assert heard == {i: 1 for i in ids}
    assert progress and progress[-1]["done"] == progress[-1]["total"] == 20


def test_websocket_refuses_anonymous_clients_on_the_real_server(stack: Stack, world: dict[str, Any]) -> None:
    with pytest.raises(ConnectionRefusedError):
        WebSocket.connect(stack.port, f"/ws/projects/{world['project'].pk}/", cookie="")


def test_a_corrupt_image_fails_alone(stack: Stack, world: dict[str, Any]) -> None:
    from skelex_web.studies.models import Image

    good = [i.pk for i in make_images(world, range(100, 103))]
    bad = make_images(world, range(199, 200), data=b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)[0].pk
    stack.enqueue([good[0], bad, *good[1:]])

    wait_until(lambda: set(statuses([*good, bad]).values()) <= {"analysed", "failed"}, 60, "the batch to finish")
    assert statuses(good) == {i: "analysed" for i in good}
    failed = Image.objects.using(ALIAS).get(pk=bad)
    assert failed.status == "failed" and failed.error_message.startswith("analysis failed:")


def test_a_worker_killed_mid_batch_leaves_every_image_analysed_exactly_once(
    stack: Stack, world: dict[str, Any]
) -> None:
    from skelex_web.labeling.models import Suggestion
    from skelex_web.learning.models import ErrorMap

    # Large images make the batch slow enough (seconds) to be caught while the worker is at it.
    ids = [i.pk for i in make_images(world, range(300, 312), height=900, width=900)]
    victim = stack.workers[-1]
    stack.enqueue(ids, batch=len(ids))

    def at_work() -> bool:
        states = set(statuses(ids).values())
        assert "analysed" not in states, "the batch finished before the worker could be killed mid-batch"
        return states == {"analysing"}

    wait_until(at_work, 60, "the worker to take the batch", interval=0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    # A batch's results are stored in one transaction: a kill leaves none of them, never half.
    assert not ErrorMap.objects.using(ALIAS).filter(image_id__in=ids).exists()

    # kombu gives unacknowledged messages back when a worker starts, then only every 10th 10-s check:
    # start the new worker once the batch's visibility timeout has passed, or wait ~100 s more.
    time.sleep(VISIBILITY_TIMEOUT_S + 1)
    stack.start_worker()
    wait_until(lambda: all_analysed(ids), 90, "the redelivered batch to complete")

    assert per_image(ErrorMap, ids) == {i: 1 for i in ids}
    keys = list(
        Suggestion.objects.using(ALIAS)
        .filter(image_id__in=ids)
        .values_list("image_id", "model_version_id", "params_hash", "source", "head", "rank")
    )
    assert keys and len(keys) == len(set(keys))


def test_the_worker_reconnects_after_redis_restarts(stack: Stack, world: dict[str, Any]) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_DB_URL)
    worker = stack.workers[-1]

    def worker_idle() -> bool:
        # The previous test ends when the rows are stored, a moment before the task is acknowledged. A
        # solo-pool worker that loses the broker with an unacknowledged acks_late task tries to terminate
        # it and cannot (the solo pool has no child to kill), so the restart must find the worker idle.
        log = stack.worker_log()
        done = log.count("] succeeded in") + log.count("] raised") + log.count("] retry:")
        return log.count("] received") == done

    wait_until(worker_idle, 60, "the worker to finish its last task")
    try:
        client.shutdown(nosave=True)
    except redis.exceptions.ConnectionError:
        pass  # the server closes the connection as it goes down
    wait_until(lambda: subprocess.run(["redis-cli", "ping"], capture_output=True).returncode != 0, 10, "redis down")
    subprocess.run(REDIS_START, check=True, capture_output=True)

    def redis_back() -> bool:
        # The daemonised server may still be binding its port: a refused connection means "not yet".
        try:
            return bool(client.ping())
        except redis.exceptions.ConnectionError:
            return False

    wait_until(redis_back, 20, "redis back")

    ids = [i.pk for i in make_images(world, range(400, 403))]
    stack.enqueue(ids)

    wait_until(lambda: all_analysed(ids), 90, "the batch after the restart")
    assert worker.poll() is None, "the worker died instead of reconnecting"
