"""Embedded mode: a Celery worker thread inside the web process, on the in-memory broker.

A fresh clone runs without Redis: ``CELERY_BROKER_URL`` defaults to ``memory://``, whose queues
live in this process only, so the worker must live here too. It is the same Celery app, the same
tasks and queues, and the same ``send_task`` calls as in production; only the transport differs.
One solo-pool worker thread handles every queue, one task at a time (the GPU worker's model
cache works the same way inside it).

The web app never imports the task modules (they import torch): the worker thread discovers them
by name when it starts, exactly as a separate ``celery worker`` process does.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

QUEUES = ("ingest", "gpu", "train", "export")

_lock = threading.Lock()
_worker: Any = None
_thread: threading.Thread | None = None
_pickup: threading.Thread | None = None
# Images this process has sent to its in-memory queue, with when (wall clock): the pickup leaves
# those alone unless they were queued again (by someone else) after that.
_sent: dict[int, float] = {}
_sent_lock = threading.Lock()


ANALYSIS_TASK = "workers.analysis.analyse_images"


def note_sent(image_ids: list[int]) -> None:
    """Records images whose analysis this process has just sent to its queue."""
    now = time.time()
    with _sent_lock:
        for pk in image_ids:
            _sent[int(pk)] = now


def _note_published(sender: str | None = None, body: Any = None, **_: Any) -> None:
    """Celery's ``after_task_publish``: every analysis this process sends, whichever code sends it
    (uploads' ingest, re-analysis, the pickup itself), is recorded for the pickup to leave alone."""
    if sender != ANALYSIS_TASK:
        return
    args = body[0] if isinstance(body, list | tuple) else (body or {}).get("args", ())
    if args:
        note_sent(list(args[0]))


def record_sends() -> None:
    """Starts recording this process's analysis messages (once; the embedded start calls it)."""
    from celery.signals import after_task_publish

    after_task_publish.connect(_note_published, weak=False, dispatch_uid="skelex-embedded-sent")


def pickup_once(older_than: float) -> int:
    """Queues the images waiting for analysis that this process never sent: queued by another
    process (``manage.py import_images``, ``import_dataset``, ``register_model`` beside a running
    ``make demo``), whose in-memory queue died with it. Only images waiting longer than
    ``older_than`` seconds, so that a message on its way is not doubled. Returns how many."""
    from skelex_web.learning.services import queue_images
    from skelex_web.studies.models import Image, ImageStatus

    cutoff = time.time() - older_than
    waiting = (
        Image.objects.filter(status__in=[ImageStatus.INGESTED, ImageStatus.QUEUED])
        .order_by("pk")
        .values_list("pk", "updated_at")
    )
    with _sent_lock:
        lost = [pk for pk, at in waiting if at.timestamp() <= cutoff and _sent.get(pk, 0.0) < at.timestamp()]
    if lost:
        queue_images(lost)
        logger.info("picked up %d images queued by another process (its in-memory queue is gone)", len(lost))
    return len(lost)


def _pickup_loop(every: float) -> None:
    from django.db import close_old_connections

    while True:
        time.sleep(every)
        try:
            pickup_once(older_than=every)
        except Exception:  # the database may be busy or gone for a moment: try again next time
            logger.exception("embedded pickup failed")
        finally:
            close_old_connections()


def is_running() -> bool:
    return _thread is not None and _thread.is_alive()


def start_worker(queues: tuple[str, ...] = QUEUES, timeout: float = 60.0) -> Any:
    """Starts the worker thread (once per process) and waits until it consumes; returns the worker.

    Raises:
        RuntimeError: the broker is not in-memory (a real worker process should be used) or the
            worker did not become ready within ``timeout`` seconds.
    """
    global _worker, _thread
    from skelex_web.celery import app, task_modules

    with _lock:
        if is_running():
            return _worker
        broker = str(app.conf.broker_url or "")
        if not broker.startswith("memory://"):
            raise RuntimeError(f"the embedded worker needs the in-memory broker, not {broker.split('://')[0]}://")
        app.loader.import_default_modules()
        app.autodiscover_tasks(task_modules, related_name=None, force=True)
        ready = threading.Event()
        _worker = app.WorkController(
            app=app,
            hostname="embedded@localhost",
            pool_cls="solo",
            concurrency=1,
            queues=list(queues),
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            ready_callback=lambda *_: ready.set(),
            loglevel=logging.INFO,
        )
        _thread = threading.Thread(target=_worker.start, name="celery-embedded", daemon=True)
        _thread.start()
    if not ready.wait(timeout):
        raise RuntimeError(f"the embedded Celery worker was not ready after {timeout:.0f}s")
    logger.info("embedded Celery worker consuming %s on the in-memory broker", ", ".join(queues))
    return _worker


def stop_worker() -> None:
    """Stops the worker thread (tests; the process exiting also ends it)."""
    global _worker, _thread
    with _lock:
        if _worker is not None:
            _worker.stop(in_sighandler=False, exitcode=0)
        if _thread is not None:
            _thread.join(10)
        _worker, _thread = None, None


def requeue_orphans() -> int:
    """Queues again the images whose analysis was pending when the process last stopped.

    The in-memory broker forgets its queues on exit, so in embedded mode any image still
    ``ingested``, ``queued`` or ``analysing`` at start-up has no message left to finish it.
    """
    from skelex_web.learning.services import queue_images
    from skelex_web.studies.models import Image, ImageStatus

    pending = [ImageStatus.INGESTED, ImageStatus.QUEUED, ImageStatus.ANALYSING]
    return queue_images(Image.objects.filter(status__in=pending).order_by("pk").values_list("pk", flat=True))


def start() -> Any:
    """Starts the worker, then picks up what the previous run left pending (its queue died with it):
    analyses are queued again, uploads and exports sent again or failed. Then, every
    ``EMBEDDED_PICKUP_S`` seconds, analyses queued by other processes (``pickup_once``). Returns the
    worker.

    Raises:
        RuntimeError: as :func:`start_worker`.
    """
    global _pickup
    record_sends()
    worker = start_worker()
    requeued = requeue_orphans()
    if requeued:
        logger.info("re-queued %d images left pending by the previous run", requeued)
    recover_orphan_jobs()
    every = float(settings.EMBEDDED_PICKUP_S)
    if every > 0 and _pickup is None:
        _pickup = threading.Thread(target=_pickup_loop, args=(every,), name="embedded-pickup", daemon=True)
        _pickup.start()
    return worker


def start_if_configured() -> bool:
    """Starts the worker when ``CELERY_EMBEDDED_WORKER`` is on (the default without ``REDIS_URL``)."""
    if not settings.CELERY_EMBEDDED_WORKER or settings.CELERY_TASK_ALWAYS_EAGER:
        return False
    start()
    return True


def recover_orphan_jobs() -> None:
    """Sends again (or fails) the uploads and exports left queued or running by the previous run.

    Their messages died with the previous process's in-memory queue (``skelex_web/recovery.py``).
    Staging folders untouched for ``REQUEUE_STUCK_AFTER_S`` that no job uses are removed.
    """
    from skelex_web.exports.services import recover_exports
    from skelex_web.studies.uploads import recover_uploads

    after = timedelta(seconds=settings.REQUEUE_STUCK_AFTER_S)
    recover_uploads(after, orphaned=True)  # each logs what it changed
    recover_exports(after, orphaned=True)


def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serves the ASGI application with daphne in this (main) thread until interrupted."""
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(["-b", host, "-p", str(port), "skelex_web.asgi:application"])
