"""DICOM SR export: TID 1500 reports that highdicom/pydicom read back and dciodvfy accepts."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import highdicom as hd
import pydicom
import pytest
from django.conf import settings
from pydicom.data import get_testdata_file

from skelex_web.exports import services
from skelex_web.studies.services import ingest_file
from tests.factories import AnnotationFactory

pytestmark = pytest.mark.django_db


def _walk(items: Any) -> Any:
    for item in items:
        yield item
        yield from _walk(item.get("ContentSequence", []))


@pytest.fixture
def dicom_export(project: Any, personas: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    source = Path(get_testdata_file("RG3_UNCR.dcm"))
    result = ingest_file(project, source, "RG3_UNCR.dcm", enqueue=False)
    assert result.status == "ingested", result.message
    image = project.images.get(pk=result.image_id)
    AnnotationFactory(image=image, label="lesion", x0=700.0, y0=900.5, x1=1010.0, y1=1300.0, author=personas["lead"])
    AnnotationFactory(image=image, label="fracture", x0=10.0, y0=20.0, x1=60.0, y1=90.0, author=personas["annotator"])
    AnnotationFactory(image=image, kind="head", head="tumour_type", value="benign", author=personas["lead"])
    version = services.create_version(project=project)
    job = services.export_now(version=version, fmt="dicom-sr", images="original")
    with zipfile.ZipFile(Path(settings.MEDIA_ROOT, job.file.name)) as zf:
        names = zf.namelist()
        sr_name = next(n for n in names if n.startswith("sr/"))
        sr_path = tmp_path / "report.dcm"
        sr_path.write_bytes(zf.read(sr_name))
        original = pydicom.dcmread(io.BytesIO(zf.read(next(n for n in names if n.startswith("images/")))))
    return {"image": image, "sr_path": sr_path, "original": original, "version": version, "job": job}


def test_sr_reads_back_with_each_box_as_a_scoord_on_the_source_image(dicom_export: dict[str, Any]) -> None:
    image = dicom_export["image"]
    ds = pydicom.dcmread(dicom_export["sr_path"])
    report = hd.sr.srread(dicom_export["sr_path"])
    assert ds.SOPClassUID == pydicom.uid.ComprehensiveSRStorage
    assert ds.StudyInstanceUID == dicom_export["original"].StudyInstanceUID
    groups = report.content.get_planar_roi_measurement_groups()
    assert len(groups) == 2
    scoords = [item for item in _walk(ds.ContentSequence) if item.ValueType == "SCOORD"]
    assert len(scoords) == 2
    boxes = set()
    for item in scoords:
        ref = item.ContentSequence[0].ReferencedSOPSequence[0]
        assert ref.ReferencedSOPInstanceUID == image.sop_instance_uid
        assert item.GraphicType == "POLYLINE"
        xs, ys = item.GraphicData[0::2], item.GraphicData[1::2]
        boxes.add((min(xs), min(ys), max(xs), max(ys)))
    assert boxes == {(700.0, 900.5, 1010.0, 1300.0), (10.0, 20.0, 60.0, 90.0)}
    findings = sorted(g.finding_type.meaning for g in groups)
    assert findings == ["fracture", "lesion"]
    texts = [str(item.get("TextValue", "")) for item in _walk(ds.ContentSequence)]
    assert any("by lena" in t for t in texts) and any("by ana" in t for t in texts)
    codes = {item.ConceptCodeSequence[0].CodeMeaning for item in _walk(ds.ContentSequence) if item.ValueType == "CODE"}
    assert {"benign", "manual"} <= codes


def test_the_exported_original_is_the_deidentified_dicom(dicom_export: dict[str, Any]) -> None:
    original = dicom_export["original"]
    assert original.SOPInstanceUID == dicom_export["image"].sop_instance_uid
    assert original.PatientID != pydicom.dcmread(get_testdata_file("RG3_UNCR.dcm")).PatientID


def test_reexported_sr_is_byte_identical(dicom_export: dict[str, Any]) -> None:
    again = services.export_now(version=dicom_export["version"], fmt="dicom-sr", images="none")
    with zipfile.ZipFile(Path(settings.MEDIA_ROOT, again.file.name)) as zf:
        sr_name = next(n for n in zf.namelist() if n.startswith("sr/"))
        assert zf.read(sr_name) == dicom_export["sr_path"].read_bytes()


def test_dciodvfy_reports_no_errors(dicom_export: dict[str, Any]) -> None:
    tool = shutil.which("dciodvfy")
    if tool is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("dciodvfy is required under CI=true (apt-get install dicom3tools)")
        pytest.skip("dciodvfy not installed (Debian package dicom3tools)")
    run = subprocess.run([tool, str(dicom_export["sr_path"])], capture_output=True, text=True, timeout=60)
    output = run.stdout + run.stderr
    errors = [line for line in output.splitlines() if line.startswith("Error")]
    assert errors == [], output
    assert "ComprehensiveSR" in output
