"""``workers.sweep.requeue_stuck``: the periodic sweep for images, uploads and exports whose message was lost.

Sent by celery beat every ``REQUEUE_STUCK_EVERY_S`` seconds (``CELERY_BEAT_SCHEDULE``) to the
default ``ingest`` queue, so a stalled GPU queue cannot hold it up. The work and its safety rules
are in ``learning.services.requeue_stuck`` (images), ``studies.uploads.recover_uploads`` and
``exports.services.recover_exports`` (jobs, see ``skelex_web/recovery.py``); ``manage.py
requeue_stuck`` runs the same by hand.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task

from skelex_web.exports.services import recover_exports
from skelex_web.learning.services import requeue_stuck as sweep
from skelex_web.studies.uploads import recover_uploads


@shared_task(name="workers.sweep.requeue_stuck", ignore_result=True)
def requeue_stuck(older_than_s: int = 1800) -> dict[str, Any]:
    """Re-queues images waiting longer than ``older_than_s`` seconds with no message in the broker.

    Upload and export jobs queued or running for as long with no message are sent again once, or
    marked failed (``skelex_web/recovery.py``).

    Returns:
        Counts: stuck, in_broker (left alone), requeued; and whether the broker was inspected; then
        per job kind (``uploads``, ``exports``) stuck, in_broker, resent, failed.
    """
    older_than = timedelta(seconds=older_than_s)
    result = sweep(older_than)  # each logs a warning when it changes anything
    jobs = {"uploads": recover_uploads(older_than), "exports": recover_exports(older_than)}
    return {
        "stuck": len(result.stuck),
        "in_broker": len(result.in_broker),
        "requeued": len(result.requeued),
        "broker_checked": result.broker_checked,
        **{
            kind: {key: len(getattr(job, key)) for key in ("stuck", "in_broker", "resent", "failed")}
            for kind, job in jobs.items()
        },
    }
