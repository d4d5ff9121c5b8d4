"""``python manage.py requeue_stuck [--older-than 30m] [--dry-run]``: re-queue images whose analysis was lost.

The same sweep that celery beat runs every ``REQUEUE_STUCK_EVERY_S`` seconds
(``workers.sweep.requeue_stuck``), for an operator after an incident (Redis restarted without its
data, workers down for longer than their retries). Prints what it found and what it sent.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from skelex_web.learning.services import format_duration, parse_duration, requeue_stuck


class Command(BaseCommand):
    help = "Re-queue images left ingested/queued/analysing whose analysis message the broker no longer holds."

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
            # process re-queues whatever was pending when it starts (embedded.requeue_orphans).
            raise CommandError(
                "embedded mode: the analysis queue lives inside the web process, which re-queues pending "
                "images itself when it starts; restart it instead (or use --dry-run to list them)"
            )
        try:
            result = requeue_stuck(older_than, dry_run=options["dry_run"])
        except (BrokerError, RedisError, OSError) as exc:
            raise CommandError(f"the broker could not be read; nothing was changed: {exc}") from exc
        if options["dry_run"]:
            self.stdout.write("dry run: nothing changed, nothing sent")
        self.stdout.write(result.summary())
