"""``workers.ingest.import_files``: ingest staged upload files on the ``ingest`` queue.

The body is the ingest service (``skelex_web.studies.services.import_staged_files``); new
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
def import_files(project_id: int, paths: list[str], actor_id: int | None = None) -> list[dict[str, Any]]:
    """Ingests ``paths`` (``"name\\tpath"`` strings) into the project; returns per-file results."""
    from skelex_web.studies.services import import_staged_files

    return import_staged_files(project_id, paths, actor_id)
