"""``python manage.py runembedded [--host H] [--port P]``: daphne plus an in-process Celery worker.

The one-process topology of a fresh clone (no Redis): see ``skelex_web/embedded.py``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from skelex_web import embedded


class Command(BaseCommand):
    help = "Serve the app (ASGI, daphne) with an embedded Celery worker thread on the in-memory broker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            embedded.start()  # and picks up what the previous run left pending
        except RuntimeError as exc:
            raise CommandError(f"{exc}; with REDIS_URL set, run `celery -A skelex_web worker` instead") from exc
        self.stdout.write(f"serving on http://{options['host']}:{options['port']}/ with an embedded worker")
        embedded.serve(options["host"], options["port"])
