"""``import_images``: folders and zips, summary, exit status only non-zero when nothing imported."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from skelex_web.studies.models import Image
from tests.workers.imaging.samples import dicom_bytes

from .ingest_helpers import SentTasks, png, zip_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> SentTasks:
    from skelex_web.celery import app

    recorder = SentTasks()
    monkeypatch.setattr(app, "send_task", recorder)
    return recorder


def test_folder_and_zip_with_a_bad_file(project: Any, tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "ct.dcm").write_bytes(dicom_bytes("CT_small.dcm"))
    (folder / "fake.dcm").write_bytes(b"not dicom" * 40)
    archive = tmp_path / "batch.zip"
    archive.write_bytes(zip_of([("a.png", png(1)), ("../evil.png", png(2))]))
    out = StringIO()
    call_command("import_images", str(folder), str(archive), project=project.slug, no_progress=True, stdout=out)
    text = out.getvalue()
    assert "4 files: 2 ingested, 0 duplicate, 2 rejected" in text
    assert "fake.dcm: not a recognised image file" in text and "unsafe path in zip" in text
    assert Image.objects.count() == 2
    # The progress bar knows its total up front: the folder's files and the zip's entries.
    from skelex_web.studies.ingest_sources import count_sources

    (folder / ".hidden.dcm").write_bytes(b"x")
    (folder / "notes.txt").write_text("not an image name")
    assert count_sources([folder, archive]) == 4


def test_all_rejected_exits_non_zero_duplicates_do_not(project: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"x" * 300)
    with pytest.raises(CommandError, match="nothing could be imported"):
        call_command("import_images", str(bad), project=project.slug, no_progress=True, stdout=StringIO())
    good = tmp_path / "g.png"
    good.write_bytes(png(3))
    call_command("import_images", str(good), project=project.slug, no_progress=True, stdout=StringIO())
    out = StringIO()
    call_command("import_images", str(good), project=project.slug, no_progress=True, stdout=out)  # no raise
    assert "1 duplicate" in out.getvalue()


def test_missing_path_and_project(project: Any, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not found"):
        call_command("import_images", str(tmp_path / "nope"), project=project.slug, no_progress=True)
    with pytest.raises(CommandError, match="no project"):
        call_command("import_images", str(tmp_path), project="nope", no_progress=True)
