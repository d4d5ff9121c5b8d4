"""``manage.py export``: snapshot (or reuse) a dataset version and write its zip, inline.

    python manage.py export --project SLUG --format coco|yolo|voc|csv|dicom-sr --out PATH
        [--split-seed N] [--version NUMBER] [--images png16|png8|original|none] [--embeddings]
        [--reviewed-only] [--labels a,b] [--heads a,b] [--body-parts hand,leg] [--include-unlabelled]

Without ``--version`` a new version is created from the current labels with the given filters
and seed; with it, that version of the project (its number) is rendered again, byte for byte.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from skelex_web.exports import selectors, services
from skelex_web.exports.models import ExportFormat, ImageMode
from skelex_web.projects.models import Project


def _names(raw: str | None) -> list[str] | None:
    return sorted({n.strip() for n in raw.split(",") if n.strip()}) if raw else None


class Command(BaseCommand):
    help = "Export a project's labels as a dataset version in COCO, YOLO, VOC, CSV or DICOM SR (a zip)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # Our --version is a dataset version (the interface); it replaces Django's --version.
        kwargs.setdefault("conflict_handler", "resolve")
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--format", required=True, choices=ExportFormat.values)
        parser.add_argument("--out", required=True, help="zip file to write, or an existing folder")
        parser.add_argument(
            "--split-seed", type=int, default=None, help="seed of the patient-level split (new version)"
        )
        parser.add_argument("--version", type=int, default=None, dest="version_number", help="existing version number")
        parser.add_argument(
            "--images", choices=ImageMode.values, default=None, help="default png16; dicom-sr: original"
        )
        parser.add_argument("--reviewed-only", action="store_true")
        parser.add_argument("--labels", help="comma-separated box labels to keep")
        parser.add_argument("--heads", help="comma-separated heads to keep")
        parser.add_argument("--body-parts", help="comma-separated body parts to keep")
        parser.add_argument("--include-unlabelled", action="store_true", help="also images without any label")
        parser.add_argument(
            "--embeddings", action="store_true", help="also the backbone's embeddings (embeddings.npz, embeddings.json)"
        )
        parser.add_argument("--name", default="", help="name of the new version")

    def handle(self, *args: Any, **opts: Any) -> None:
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"no project with slug {opts['project']!r}")
        if opts["version_number"] is not None:
            version = selectors.version_by_number(project.pk, opts["version_number"])
            if version is None:
                raise CommandError(f"project {project.slug} has no dataset version {opts['version_number']}")
            if opts["split_seed"] is not None and opts["split_seed"] != version.split_seed:
                raise CommandError(f"version {version.number} was split with seed {version.split_seed}")
        else:
            filters = {
                "reviewed_only": opts["reviewed_only"],
                "include_unlabelled": opts["include_unlabelled"],
                "labels": _names(opts["labels"]),
                "heads": _names(opts["heads"]),
                "body_parts": _names(opts["body_parts"]),
            }
            try:
                version = services.create_version(
                    project=project, name=opts["name"], filters=filters, split_seed=opts["split_seed"] or 0
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"created dataset version {version.number} ({version.image_count} images)")
        images = opts["images"] or (ImageMode.ORIGINAL if opts["format"] == ExportFormat.DICOM_SR else ImageMode.PNG16)
        try:
            job = services.export_now(version=version, fmt=opts["format"], images=images, embeddings=opts["embeddings"])
        except services.ImagesGone as exc:
            raise CommandError(f"{exc} (--images none)") from None
        out = Path(opts["out"])
        if out.is_dir():
            out = out / Path(job.file.name).name
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(settings.MEDIA_ROOT, job.file.name), out)
        summary = version.summary
        self.stdout.write(
            f"wrote {out} ({job.size} bytes, sha256 {job.sha256[:16]}…): version {version.number}, "
            f"{version.image_count} images, splits {summary.get('splits')}, content hash {version.content_hash[:16]}…"
        )
