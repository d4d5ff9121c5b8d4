"""``python manage.py reanalyse [--project SLUG ...] [--dry-run]``: bring old analyses up to date.

After an upgrade changes the analysis settings (``skelex_web/learning/pipeline.py``: error-map passes, box
finder, the embedding's pooling or scales), images analysed before keep their old error maps,
suggestions and embeddings; a retrain round then trains on the largest group of embeddings of one
kind and reports the rest as ``left_out``. This command queues every analysed image whose stored
analysis used other settings, or another backbone than its project's, for analysis again. The
embedded worker (``make demo``) picks them up within ``EMBEDDED_PICKUP_S`` seconds; Celery workers
as soon as they are free. Labels are never touched; suggestions already accepted or rejected stay.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from skelex_web.learning.services import outdated, reanalyse_outdated
from skelex_web.projects.models import Project


class Command(BaseCommand):
    help = "Queue analysed images whose analysis predates the current settings (or backbone) for analysis again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--project", action="append", default=[], metavar="SLUG", help="only this project (repeatable; default all)"
        )
        parser.add_argument("--dry-run", action="store_true", help="report only; queue nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        slugs = options["project"]
        projects = list(Project.objects.order_by("slug"))
        if slugs:
            known = {p.slug for p in projects}
            missing = [s for s in slugs if s not in known]
            if missing:
                raise CommandError(f"no project with slug {', '.join(repr(s) for s in missing)}")
            projects = [p for p in projects if p.slug in slugs]
        total = 0
        for project in projects:
            n = outdated(project).count() if options["dry_run"] else reanalyse_outdated(project)
            if not n:
                self.stdout.write(f"{project.slug}: up to date")
            elif options["dry_run"]:
                self.stdout.write(f"{project.slug}: {n} images would be analysed again")
            else:
                self.stdout.write(f"{project.slug}: {n} images queued for analysis")
            total += n
        verb = "would be queued" if options["dry_run"] else "queued"
        self.stdout.write(self.style.SUCCESS(f"{total} images {verb} in all"))
