"""``manage.py import_dataset PATH --project SLUG --format coco|yolo|voc``: a labelled dataset.

Imports the images (as ``import_images``) plus their boxes and CSV labels as annotations with
origin ``imported`` (see ``skelex_web.studies.ingest_dataset`` for the layout and mapping).
Annotations are matched to images by the dataset's file names while importing, never by stored
name afterwards, so they land on the right images when the names are pseudonymised.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from skelex_web.studies.ingest_dataset import FORMATS, box_files, find_images, import_dataset
from skelex_web.studies.services import REJECTED, IngestResult

from .import_images import KEEP_FILE_NAMES_HELP, _project, keep_file_names, report


class Command(BaseCommand):
    help = "Import a labelled dataset (images + YOLO/VOC/COCO boxes + dataset.csv) into a project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="dataset root (images/, Annotations/, dataset.csv)")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
        parser.add_argument("--limit", type=int, default=None, help="import only the first N images")
        parser.add_argument("--user", default=None, help="username recorded as the labels' author")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument("--keep-file-names", action="store_true", help=KEEP_FILE_NAMES_HELP)

    def handle(self, *args: Any, **options: Any) -> None:
        project = _project(options["project"])
        root: Path = options["path"]
        if not root.is_dir():
            raise CommandError(f"not a folder: {root}")
        actor = None
        if options["user"]:
            actor = get_user_model().objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"no user {options['user']!r}")
        if options["keep_file_names"]:
            keep_file_names(self, project, actor)
        total = len(find_images(root)[: options["limit"] or None])
        bar = tqdm(total=total, desc="importing", unit="file", disable=options["no_progress"], file=sys.stderr)
        rejected: list[IngestResult] = []

        def step(result: IngestResult) -> None:
            bar.update(1)
            if result.status == REJECTED:
                rejected.append(result)

        try:
            summary = import_dataset(project, root, options["fmt"], actor=actor, limit=options["limit"], progress=step)
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        report(self, summary.results, rejected)
        self.stdout.write(f"{summary.boxes} boxes and {summary.head_answers} head answers imported")
        if not box_files(root, options["fmt"]):
            self.stdout.write(f"no {options['fmt']} box files in {root}: only dataset.csv's labels were imported")
        for label, count in sorted(summary.unmatched_labels.items()):
            self.stdout.write(f"skipped {count} boxes labelled {label!r}: no matching box label in the project")
        if not summary.results or all(r.status == REJECTED for r in summary.results):
            raise CommandError("nothing could be imported")
