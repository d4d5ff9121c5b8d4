"""``python manage.py requeue_stuck [--older-than 30m] [--dry-run]``: re-queue work whose message was lost.

The same sweep that celery beat runs every ``REQUEUE_STUCK_EVERY_S`` seconds
(``workers.sweep.requeue_stuck``), for an operator after an incident (Redis restarted without its
data, workers down for longer than their retries): images whose analysis was lost are queued
again; upload and export jobs left queued or running with no message are sent again once, or
marked failed when there is nothing left to redo (``skelex_web/recovery.py``). Prints what it
found and what it did.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from skelex_web.exports.services import recover_exports
from skelex_web.learning.services import format_duration, parse_duration, requeue_stuck
from skelex_web.studies.uploads import recover_uploads


class Command(BaseCommand):
    help = (
        "Re-queue images left ingested/queued/analysing, and upload/export jobs left queued/running, "
        "whose message the broker no longer holds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        default = format_duration(parse_duration(str(settings.REQUEUE_STUCK_AFTER_S)))
        parser.add_argument(
            "--older-than",
            default=default,
            help=f"how long an image may wait before it counts as stuck: 90s, 30m, 2h, 1d (default {default})",
        )
        parser.add_argument("--dry-run", action="store_true", help="report only; change and send nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            older_than = parse_duration(options["older_than"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if settings.CELERY_EMBEDDED_WORKER and not options["dry_run"]:
            # The in-memory queue lives inside the web process, out of this process's reach; the web
            # process re-queues whatever was pending when it starts (embedded.requeue_orphans) and
            # picks up images other processes queued while it runs (embedded.pickup_once).
            raise CommandError(
                "embedded mode: the analysis queue lives inside the web process, which queues pending images "
                f"itself: at start, and while it runs every {settings.EMBEDDED_PICKUP_S} s those another "
                "process queued; start it if it is not running (or use --dry-run to list them)"
            )
        dry_run = options["dry_run"]
        try:
            results = [
                requeue_stuck(older_than, dry_run=dry_run),
                recover_uploads(older_than, dry_run=dry_run),
                recover_exports(older_than, dry_run=dry_run),
            ]
        except (BrokerError, RedisError, OSError) as exc:
            raise CommandError(f"the broker could not be read; nothing more was changed: {exc}") from exc
        if dry_run:
            self.stdout.write("dry run: nothing changed, nothing sent")
        for result in results:
            self.stdout.write(result.summary())
