"""``workers.ingest.import_files``: ingest staged upload files on the ``ingest`` queue.

The body is the upload service (``skelex_web.studies.uploads.import_staged``), which records each
file's result on the upload's job; new images are queued for analysis by the ingest when its
transaction commits. When the task fails for good (an error that is not retried, or the last
retry), the job is marked failed with the reason and the staged files are deleted.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError


class ImportFilesTask(Task):
    """Marks the upload job failed once no retry is left (Celery calls ``on_failure`` only then)."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        from skelex_web.studies.uploads import fail_upload

        args, kwargs = list(args or []), dict(kwargs or {})
        paths = args[1] if len(args) > 1 else kwargs.get("paths", [])
        job_id = args[3] if len(args) > 3 else kwargs.get("job_id")
        fail_upload(list(paths or []), job_id, exc, retries=int(self.request.retries or 0))


@shared_task(
    base=ImportFilesTask,
    name="workers.ingest.import_files",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
)
def import_files(
    project_id: int, paths: list[str], actor_id: int | None = None, job_id: int | None = None
) -> dict[str, Any]:
    """Ingests the staged ``paths`` into the project; returns counts and new ids.

    ``paths`` are staged files whose uploaded names wait in the folder's ``names.json``, so the
    message carries none (``"name\\tpath"`` strings from older messages are still read). The
    per-file results go to the upload job ``job_id``, which only the uploader and the project's
    leads can read. The return value holds no file names either: the worker logs every task's
    return value at INFO ("succeeded in 1.2s: ...") and the result backend stores it.
    """
    from skelex_web.studies.services import INGESTED, summarise
    from skelex_web.studies.uploads import import_staged

    results = import_staged(project_id, paths, actor_id, job_id)
    new_ids = [i for r in results if r.status == INGESTED for i in r.image_ids]
    return {**summarise(results), "image_ids": new_ids}
