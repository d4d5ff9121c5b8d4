"""Celery task ``workers.export.build``: render one export job's zip (export queue).

Glue only: the job id in, :func:`skelex_web.exports.services.run_export` does the work. Idempotent:
a job already done with its zip on disk returns at once, so a redelivered message costs nothing.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="workers.export.build", acks_late=True)
def build(job_id: int) -> dict[str, Any]:
    """Renders the export job; returns its state, size and sha256."""
    from skelex_web.exports.services import run_export

    job = run_export(int(job_id))
    return {"job": job.pk, "state": job.state, "size": job.size, "sha256": job.sha256}
