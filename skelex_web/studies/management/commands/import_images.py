"""``manage.py import_images PATH... --project SLUG``: ingest files, folders and zip archives.

Prints a progress bar and a summary; exits non-zero only when nothing could be imported
(every file rejected, or no files found). Duplicates count as success: re-running is safe.
``--keep-file-names`` turns on the project's ``keep_file_names`` setting first (see
:data:`KEEP_FILE_NAMES_HELP`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from skelex_web.projects.models import Project
from skelex_web.projects.services import keep_file_names as turn_on_keep_file_names
from skelex_web.studies.ingest_sources import count_sources
from skelex_web.studies.services import REJECTED, IngestResult, ingest_many, summarise

KEEP_FILE_NAMES_HELP = (
    "keep PNG/JPEG/TIFF file names as image names, for public, already anonymised datasets whose file "
    "names are their identifiers (turns on the project's keep_file_names setting, which stays on; "
    "DICOM names are replaced either way when de-identifying)"
)


class Command(BaseCommand):
    help = "Import radiographs (DICOM, PNG, JPEG, TIFF; folders and zips) into a project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, help="files, folders or zip archives")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
        parser.add_argument("--keep-file-names", action="store_true", help=KEEP_FILE_NAMES_HELP)

    def handle(self, *args: Any, **options: Any) -> None:
        project = _project(options["project"])
        missing = [str(p) for p in options["paths"] if not p.exists()]
        if missing:
            raise CommandError(f"not found: {', '.join(missing)}")
        if options["keep_file_names"]:
            keep_file_names(self, project)
        total = count_sources(options["paths"])
        bar = tqdm(total=total, desc="importing", unit="file", disable=options["no_progress"], file=sys.stderr)
        rejected: list[IngestResult] = []

        def step(result: IngestResult) -> None:
            bar.update(1)
            if result.status == REJECTED:
                rejected.append(result)

        results = ingest_many(project, [(str(p), p) for p in options["paths"]], progress=step)
        bar.close()
        report(self, results, rejected)
        if not results or all(r.status == REJECTED for r in results):
            raise CommandError("nothing could be imported")


def _project(slug: str) -> Project:
    try:
        return Project.objects.get(slug=slug)
    except Project.DoesNotExist:
        raise CommandError(f"no project with slug {slug!r}") from None


def keep_file_names(command: BaseCommand, project: Project, actor: Any = None) -> None:
    """Turns on (and stores, with an audit event) the project's ``keep_file_names`` setting."""
    turn_on_keep_file_names(actor=actor, project=project)
    command.stdout.write(
        f"project {project.slug!r} keeps PNG/JPEG/TIFF file names as image names (setting keep_file_names "
        "is on); DICOM names are still replaced when de-identifying"
    )


def report(command: BaseCommand, results: list[IngestResult], rejected: list[IngestResult]) -> None:
    """Rejections one per line, then the counts."""
    for result in rejected[:200]:
        command.stdout.write(f"rejected: {result.reason}")
    if len(rejected) > 200:
        command.stdout.write(f"... and {len(rejected) - 200} more rejected")
    counts = summarise(results)
    parts = ", ".join(f"{counts[k]} {k}" for k in ("ingested", "duplicate", "rejected"))
    command.stdout.write(f"{len(results)} files: {parts}")
