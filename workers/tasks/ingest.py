"""``workers.ingest.import_files``: ingest staged upload files on the ``ingest`` queue.

The body is the ingest service (``skelex_web.studies.services.import_staged``); new
images are queued for analysis by that service when its transaction commits.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError


@shared_task(
    name="workers.ingest.import_files",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
)
def import_files(project_id: int, paths: list[str], actor_id: int | None = None) -> dict[str, Any]:
    """Ingests ``paths`` (``"name\\tpath"`` strings) into the project; returns counts and new ids.

    The return value holds no file names: the worker logs every task's return value at INFO
    ("succeeded in 1.2s: ...") and the result backend stores it, and an uploaded name can carry a
    patient's name. New images are announced as project events (``image.ingested``) and appear in
    the worklist; the counts say how many files were duplicates or rejected.
    """
    from skelex_web.studies.services import INGESTED, import_staged, summarise

    results = import_staged(project_id, paths, actor_id)
    new_ids = [i for r in results if r.status == INGESTED for i in r.image_ids]
    return {**summarise(results), "image_ids": new_ids}
