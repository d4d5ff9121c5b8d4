"""Jobs whose message was lost: uploads and exports left "queued" or "running" with nothing to finish them.

A job's message is lost when what held it goes: the embedded worker's in-memory queue dies with the
web process (``make demo`` stopped mid-upload), a Redis broker restarted without its data forgets
every message. A job is also left "running" when its task gave up while the database was
unreachable, so it could not record the failure. Without help such a job says "queued" or
"running" forever and its staged files stay on disk.

Two callers:

- the embedded worker's start-up (``orphaned=True``): no message survives a restart of the
  in-memory broker, so every queued or running job is an orphan, whatever its age;
- the periodic sweep (``workers.sweep.requeue_stuck``, ``manage.py requeue_stuck``) with a Redis
  broker: a job created longer ago than the cutoff whose message the broker holds neither waiting
  nor at a worker. Without a readable broker the sweep cannot tell a lost job from one waiting its
  turn and changes nothing (sending an upload twice would ingest its files twice at once).

An orphan is sent again, once, when it can be redone (an upload whose staged files are still there;
an export, which rebuilds from its frozen dataset version), back to "queued". Otherwise, or when it
was sent again once already and is stuck again (a job that kills its worker must not loop), it is
marked failed with a message that says what happened and what to do.

Each job kind's rules live beside its service: ``studies.uploads.recover_uploads`` and
``exports.services.recover_exports``; this module holds the step they share (which jobs are lost)
and what they report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from skelex_web import broker

logger = logging.getLogger(__name__)
Call = tuple[list[Any], dict[str, Any]]


def lost_candidates(
    waiting: QuerySet[Any],
    fields: Sequence[str],
    task_name: str,
    cutoff: datetime,
    *,
    orphaned: bool,
    broker_url: str | None,
) -> tuple[list[tuple[Any, ...]], list[Call] | None]:
    """The waiting jobs that may be lost, locked, and the broker's ``task_name`` messages.

    Call inside a transaction. ``waiting``: the job kind's queued and running rows. Returns the
    ``fields`` of each (the first must be ``pk``), in id order, skipping rows a concurrent sweep
    holds; all of them when ``orphaned``, else those created before ``cutoff``. The messages are
    ``[]`` when ``orphaned`` (none survives) and None when the broker cannot be read.

    Raises:
        kombu / redis connection errors: the broker is unreachable.
    """
    rows = waiting.select_for_update(skip_locked=True, of=("self",))
    if not orphaned:
        rows = rows.filter(created_at__lt=cutoff)
    stuck = list(rows.order_by("pk").values_list(*fields))
    return stuck, [] if orphaned else broker.pending_calls(task_name, broker_url)


def send_again(task_name: str, args: list[Any], what: str, **options: Any) -> None:
    """Sends a lost job's task again (after commit); a broker that refuses is logged, not raised:
    the next sweep finds the job again and, sent once already, fails it."""
    from skelex_web.celery import app

    try:
        app.send_task(task_name, args=args, **options)
    except Exception:  # kombu raises many types for a broker that is down
        logger.exception("could not send %s again", what)


def not_inspected(kind: str, stuck: list[tuple[Any, ...]], dry_run: bool) -> JobSweep:
    """The report of a sweep that could not read the broker: nothing decided, nothing changed."""
    return JobSweep(kind, [r[0] for r in stuck], [], [], [], broker_checked=False, dry_run=dry_run)


def format_ids(ids: list[int], limit: int = 20) -> str:
    """``"3, 4, 9"``, the first ``limit`` ids and how many more."""
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(str(i) for i in ids[:limit]) + more


@dataclass(frozen=True)
class JobSweep:
    """What one recovery pass found (job ids) and did."""

    kind: str  # "upload job", "export job"
    stuck: list[int]  # queued or running, older than the cutoff (any age when orphaned)
    in_broker: list[int]  # of those, still held by the broker (waiting, or at a worker): left alone
    resent: list[int]  # sent again (on a dry run: would be)
    failed: list[int]  # marked failed: nothing left to redo, or stuck again after one resend
    broker_checked: bool  # False with orphaned=False: nothing could be decided, nothing changed
    orphaned: bool = False  # the caller knew every message was gone (embedded start-up)
    dry_run: bool = False
    folders_removed: list[str] = field(default_factory=list)  # staging folders no job or message uses

    def summary(self) -> str:
        if not self.orphaned and not self.broker_checked:
            return (
                f"{self.kind}s: broker not inspected (not Redis): a lost {self.kind} cannot be told from a"
                " waiting one; none changed"
            )
        would = "would " if self.dry_run else ""
        lines = [
            f"{len(self.stuck)} {self.kind}(s) queued or running"
            + (" when the worker started" if self.orphaned else " with no recent change"),
        ]
        if not self.orphaned:
            lines.append(f"{len(self.in_broker)} still held by the broker (waiting or at a worker): left alone")
        lines.append(f"{would}send again {len(self.resent)}" + (f": {format_ids(self.resent)}" if self.resent else ""))
        lines.append(f"{would}mark failed {len(self.failed)}" + (f": {format_ids(self.failed)}" if self.failed else ""))
        if self.folders_removed:
            lines.append(f"{would}remove {len(self.folders_removed)} abandoned staging folder(s)")
        return "\n".join(lines)

    @property
    def changed(self) -> bool:
        return bool(self.resent or self.failed or self.folders_removed)
