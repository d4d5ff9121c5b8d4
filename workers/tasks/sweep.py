"""``workers.sweep.requeue_stuck``: the periodic sweep for images whose analysis message was lost.

Sent by celery beat every ``REQUEUE_STUCK_EVERY_S`` seconds (``CELERY_BEAT_SCHEDULE``) to the
default ``ingest`` queue, so a stalled GPU queue cannot hold it up. The work and its safety rules
are in ``learning.services.requeue_stuck``; ``manage.py requeue_stuck`` runs the same by hand.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task

from skelex_web.learning.services import requeue_stuck as sweep


@shared_task(name="workers.sweep.requeue_stuck", ignore_result=True)
def requeue_stuck(older_than_s: int = 1800) -> dict[str, Any]:
    """Re-queues images waiting longer than ``older_than_s`` seconds with no message in the broker.

    Returns:
        Counts: stuck, in_broker (left alone), requeued; and whether the broker was inspected.
    """
    result = sweep(timedelta(seconds=older_than_s))  # logs a warning when it re-queues anything
    return {
        "stuck": len(result.stuck),
        "in_broker": len(result.in_broker),
        "requeued": len(result.requeued),
        "broker_checked": result.broker_checked,
    }
