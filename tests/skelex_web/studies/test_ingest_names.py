"""Image names (``Image.name``, shown in the UI and used for export file names) carry no PHI from
the uploaded file name: a de-identifying project gives every file a pseudonym unless it keeps
raster file names (``keep_file_names``, for public anonymised datasets), and DICOM even then."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from PIL import Image as PILImage

from skelex_web.audit.models import AuditEvent
from skelex_web.exports import services as exports
from skelex_web.studies import services
from skelex_web.studies.models import Image
from tests.skelex_web.exports.conftest import read_zip
from tests.workers.imaging.samples import dicom_bytes, film, jpeg_with_metadata, png_bytes

from .ingest_helpers import SentTasks

pytestmark = pytest.mark.django_db

PHI_NAME = "DOE_JOHN_1960-01-02.jpg"


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> SentTasks:
    from skelex_web.celery import app

    recorder = SentTasks()
    monkeypatch.setattr(app, "send_task", recorder)
    return recorder


def _keeps(project: Any, **flags: bool) -> Any:
    project.settings = {**project.settings, **flags}
    project.save()
    return project


def _image(result: services.IngestResult) -> Image:
    assert result.status == "ingested", result.reason
    return Image.objects.get(pk=result.image_id)


def _assert_pseudonym(image: Image, fmt: str, ext: str) -> None:
    assert image.name == f"{fmt}-{image.sha256[:12]}.{ext}"
    for part in ("DOE", "JOHN", "_1960"):  # a bare "1960" can occur in the hex digest
        assert part not in image.name


def _tiff(arr: Any) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(arr).save(buf, format="TIFF")
    return buf.getvalue()


@pytest.mark.parametrize(
    "fmt,ext,data",
    [
        ("jpeg", "jpg", lambda: jpeg_with_metadata(film())),
        ("png", "png", lambda: png_bytes(film(seed=1))),
        ("tiff", "tif", lambda: _tiff(film(seed=2))),
    ],
)
def test_de_identifying_project_names_rasters_by_format_and_hash(
    project: Any, fmt: str, ext: str, data: Callable[[], bytes]
) -> None:
    image = _image(services.ingest_file(project, data(), f"DOE_JOHN_1960-01-02.{ext}"))
    _assert_pseudonym(image, fmt, ext)


@pytest.mark.urls("tests.skelex_web.studies.upload_urls")
def test_api_upload_does_not_store_the_patient_name(project: Any, client_for: Callable[[str], Any]) -> None:
    upload = SimpleUploadedFile(PHI_NAME, jpeg_with_metadata(film()))
    response = client_for("annotator").post(
        f"/api/projects/{project.pk}/images/upload/", {"files": [upload]}, format="multipart"
    )
    assert response.status_code == 200, response.content
    result = response.json()["results"][0]
    assert result["name"] == PHI_NAME  # echoed to the uploader, who sent it; not stored
    _assert_pseudonym(Image.objects.get(pk=result["image_id"]), "jpeg", "jpg")


def test_import_images_then_export_carries_no_patient_name(project: Any, tmp_path: Path) -> None:
    folder = tmp_path / "from-a-clinic"
    folder.mkdir()
    (folder / PHI_NAME).write_bytes(jpeg_with_metadata(film()))
    call_command("import_images", str(folder), project=project.slug, no_progress=True, stdout=io.StringIO())
    image = Image.objects.get(project=project)
    _assert_pseudonym(image, "jpeg", "jpg")

    version = exports.create_version(project=project, filters={"include_unlabelled": True})
    job = exports.export_now(version=version, fmt="coco", images="original")
    entries = read_zip(Path(settings.MEDIA_ROOT, job.file.name))
    assert any(name.startswith("images/") for name in entries)
    for name, data in entries.items():
        for part in ("DOE", "JOHN", "_1960"):
            assert part not in name, name
        if not name.startswith("images/"):  # labels, manifest, summary: the names they record
            assert b"DOE" not in data and b"JOHN" not in data, name
    assert f"{image.pk:06d}-jpeg-{image.sha256[:12]}" in " ".join(entries)


def test_keep_file_names_keeps_raster_names_but_never_dicom_names(project: Any) -> None:
    _keeps(project, keep_file_names=True)
    jpeg = _image(services.ingest_file(project, jpeg_with_metadata(film()), PHI_NAME))
    dicom = _image(services.ingest_file(project, dicom_bytes("CT_small.dcm"), "DOE_JOHN_1960-01-02.dcm"))
    assert jpeg.name == PHI_NAME
    assert re.fullmatch(r"ct-[0-9a-f]{12}\.dcm", dicom.name), dicom.name


def test_not_de_identifying_keeps_the_name(project: Any) -> None:
    _keeps(project, deidentify=False)
    image = _image(services.ingest_file(project, jpeg_with_metadata(film()), f"clinic/{PHI_NAME}"))
    assert image.name == PHI_NAME


def test_import_images_keep_file_names_flag_stores_the_setting_and_says_so(project: Any, tmp_path: Path) -> None:
    path = tmp_path / "IMG0000019.jpg"
    path.write_bytes(jpeg_with_metadata(film()))
    out = io.StringIO()
    call_command("import_images", str(path), project=project.slug, keep_file_names=True, no_progress=True, stdout=out)
    assert "keeps PNG/JPEG/TIFF file names" in out.getvalue()
    project.refresh_from_db()
    assert project.settings["keep_file_names"] is True and project.setting("deidentify") is True
    assert AuditEvent.objects.filter(action="project.update", project=project).count() == 1
    assert Image.objects.get(project=project).name == "IMG0000019.jpg"
