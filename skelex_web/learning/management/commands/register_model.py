"""``python manage.py register_model --hf HF_DIR | --checkpoint FILE --name NAME [--activate PROJECT]``.

Registers a backbone in the model registry. A Hugging Face ``ViTMAEForPreTraining`` folder (the
format SKELEX publishes) is first converted by the ML engine's command line in a subprocess, so
this command (part of the web app) never imports torch; it needs the ``ml`` extra installed.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from skelex_web.learning.services import RegistryError, activate_backbone, register_backbone
from skelex_web.projects.models import Project


def convert_hf_folder(hf_dir: Path, out: Path) -> Path:
    """Runs ``python -m workers.ml convert-hf HF_DIR OUT`` and returns ``OUT``."""
    proc = subprocess.run(
        [sys.executable, "-m", "workers.ml", "convert-hf", str(hf_dir), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise CommandError(f"converting {hf_dir} failed: {detail[-1] if detail else 'exit ' + str(proc.returncode)}")
    return out


class Command(BaseCommand):
    help = "Register a backbone checkpoint (ours, or a Hugging Face ViTMAE folder) and optionally activate it."

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--hf", metavar="HF_DIR", help="Hugging Face ViTMAEForPreTraining folder (e.g. SKELEX)")
        source.add_argument("--checkpoint", metavar="FILE", help="our .safetensors checkpoint (.json beside it)")
        parser.add_argument("--name", required=True, help="name shown in the UI and the API")
        parser.add_argument("--activate", metavar="PROJECT", help="project slug or id to switch to this backbone")
        parser.add_argument("--default", action="store_true", help="backbone of projects with none active")

    def handle(self, *args: Any, **options: Any) -> None:
        project = self._project(options["activate"]) if options["activate"] else None
        try:
            if options["hf"]:
                hf_dir = Path(options["hf"])
                if not hf_dir.is_dir():
                    raise CommandError(f"{hf_dir} is not a folder")
                with tempfile.TemporaryDirectory() as tmp:
                    out = convert_hf_folder(hf_dir, Path(tmp) / f"{hf_dir.name or 'hf'}.safetensors")
                    model_version = register_backbone(name=options["name"], checkpoint=out, default=options["default"])
            else:
                model_version = register_backbone(
                    name=options["name"], checkpoint=options["checkpoint"], default=options["default"]
                )
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc
        if model_version.name != options["name"]:
            # The same weights registered before: one row per checkpoint, under its first name.
            self.stdout.write(
                f"these weights are registered already as model version {model_version.pk} "
                f"{model_version.name!r} ({model_version.checkpoint}); --name {options['name']!r} was not applied"
            )
        else:
            self.stdout.write(
                f"registered model version {model_version.pk}: {model_version.name} ({model_version.checkpoint})"
            )
        if project is not None:
            queued = activate_backbone(project, model_version)
            self.stdout.write(f"activated on project {project.slug}; {queued} images queued for re-analysis")

    @staticmethod
    def _project(key: str) -> Project:
        lookup = {"pk": int(key)} if key.isdigit() else {"slug": key}
        try:
            return Project.objects.get(**lookup)
        except Project.DoesNotExist as exc:
            raise CommandError(f"no project {key!r}") from exc
