"""``manage.py export``: writes the zip, and ``--version`` renders an earlier version again."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from skelex_web.exports.models import DatasetVersion
from skelex_web.labeling.models import Annotation

pytestmark = pytest.mark.django_db


def test_export_command_writes_a_zip_and_reexports_a_version_identically(
    project: Any, labelled: Any, tmp_path: Path
) -> None:
    out = io.StringIO()
    call_command("export", "--project", project.slug, "--format", "voc", "--out", str(tmp_path / "a.zip"),
                 "--split-seed", "9", "--images", "none", stdout=out)  # fmt: skip
    assert "created dataset version 1" in out.getvalue()
    version = DatasetVersion.objects.get(project=project)
    assert version.split_seed == 9
    first = zipfile.ZipFile(tmp_path / "a.zip")
    xml = [n for n in first.namelist() if n.startswith("Annotations/")]
    assert len(xml) == 12 and not any(n.startswith("images/") for n in first.namelist())

    Annotation.objects.filter(project=project).delete()
    call_command("export", "--project", project.slug, "--format", "voc", "--out", str(tmp_path),
                 "--version", "1", "--images", "none", stdout=io.StringIO())  # fmt: skip
    again = next(p for p in tmp_path.glob("*.zip") if p.name != "a.zip")
    assert again.read_bytes() == (tmp_path / "a.zip").read_bytes()


def test_export_command_refuses_unknown_projects_versions_and_labels(
    project: Any, labelled: Any, tmp_path: Path
) -> None:
    with pytest.raises(CommandError, match="no project"):
        call_command("export", "--project", "nope", "--format", "coco", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="no dataset version 4"):
        call_command("export", "--project", project.slug, "--format", "coco", "--out", str(tmp_path), "--version", "4")
    with pytest.raises(CommandError, match="labels"):
        call_command("export", "--project", project.slug, "--format", "coco", "--out", str(tmp_path), "--labels", "x")


def test_export_command_names_deleted_images_and_the_way_out(project: Any, labelled: Any, tmp_path: Path) -> None:
    call_command("export", "--project", project.slug, "--format", "coco", "--out", str(tmp_path / "a.zip"),
                 "--images", "none", stdout=io.StringIO())  # fmt: skip
    labelled["images"][0].delete()

    with pytest.raises(CommandError, match=r"1 image of dataset version 1 was deleted .* \(--images none\)"):
        call_command("export", "--project", project.slug, "--format", "coco", "--out", str(tmp_path / "b.zip"),
                     "--version", "1")  # fmt: skip
    assert not (tmp_path / "b.zip").exists()
