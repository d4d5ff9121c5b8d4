"""FracAtlas import: boxes equal the dataset's (on the EXIF-rotated image), CSV labels → heads.

FracAtlas is public and anonymised and its file names are its identifiers, so most tests import it
as a lead would (``--keep-file-names``) and find images by name; one imports it without, into a
de-identifying project that pseudonymises the names, and finds them by their pixels instead."""

from __future__ import annotations

import csv
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from skelex_web.labeling.models import Annotation
from skelex_web.studies.models import Image
from tests.paths import FRACATLAS
from workers.imaging import load_image, pixel_hash

from .ingest_helpers import SentTasks

pytestmark = pytest.mark.django_db

# 14 fractured (incl. the two with EXIF rotation: 8 and 3, and one 2304x2880), 4 normals (incl. EXIF 6),
# 2 truncated. Mostly small images so the test stays fast.
FRACTURED = [
    "IMG0002628",
    "IMG0002588",
    "IMG0000019",
    "IMG0000284",
    "IMG0000307",
    "IMG0000319",
    "IMG0000351",
    "IMG0000352",
    "IMG0000443",
    "IMG0000453",
    "IMG0000454",
    "IMG0000455",
    "IMG0000456",
    "IMG0000466",
]
NORMAL = ["IMG0000428", "IMG0000265", "IMG0000267", "IMG0000270"]
CORRUPT = ["IMG0004028", "IMG0004029"]  # fmt: skip


@pytest.fixture
def subset(tmp_path: Path) -> Path:
    """A 20-image FracAtlas copy in the original layout (symlinked images, copied annotations)."""
    if not FRACATLAS.is_dir():
        pytest.skip(f"FracAtlas data not found at {FRACATLAS}")
    root = tmp_path / "fracatlas"
    for folder, stems in (("Fractured", FRACTURED), ("Non_fractured", NORMAL), ("corrupt", CORRUPT)):
        (root / "images" / folder).mkdir(parents=True)
        for stem in stems:
            (root / "images" / folder / f"{stem}.jpg").symlink_to(FRACATLAS / "images" / folder / f"{stem}.jpg")
    (root / "Annotations" / "YOLO").mkdir(parents=True)
    (root / "Annotations" / "PASCAL VOC").mkdir()
    for stem in FRACTURED + NORMAL:
        for sub, ext in (("YOLO", "txt"), ("PASCAL VOC", "xml")):
            src = FRACATLAS / "Annotations" / sub / f"{stem}.{ext}"
            if src.exists():
                shutil.copy(src, root / "Annotations" / sub / src.name)
    shutil.copy(FRACATLAS / "Annotations" / "COCO_fracture_masks.json", root / "Annotations")
    shutil.copy(FRACATLAS / "dataset.csv", root)
    return root


def _voc_boxes(stem: str) -> list[tuple[float, float, float, float]]:
    tree = ET.parse(FRACATLAS / "Annotations" / "PASCAL VOC" / f"{stem}.xml").getroot()
    return sorted(
        tuple(float(o.findtext(f"bndbox/{k}") or 0) for k in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[misc]
        for o in tree.iter("object")
    )


def _yolo_boxes(stem: str, cols: int, rows: int) -> list[tuple[float, float, float, float]]:
    out = []
    for line in (FRACATLAS / "Annotations" / "YOLO" / f"{stem}.txt").read_text().split("\n"):
        if line.strip():
            _, cx, cy, w, h = (float(v) for v in line.split())
            out.append(((cx - w / 2) * cols, (cy - h / 2) * rows, (cx + w / 2) * cols, (cy + h / 2) * rows))
    return sorted(out)


def _stored(image: Image) -> list[tuple[float, float, float, float]]:
    boxes = Annotation.objects.filter(image=image, kind="box", origin="imported")
    assert {b.label for b in boxes} <= {"fracture"}
    return sorted((b.x0, b.y0, b.x1, b.y1) for b in boxes)  # type: ignore[misc]


def _close(a: Sequence[tuple[float, ...]], b: Sequence[tuple[float, ...]], tol: float = 1.0) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for p, q in zip(a, b) for x, y in zip(p, q))


def _import(project: Any, root: Path, fmt: str, keep_file_names: bool = True) -> str:
    out = StringIO()
    options = {"no_progress": True, "keep_file_names": keep_file_names, "stdout": out}
    call_command("import_dataset", str(root), project=project.slug, fmt=fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["yolo", "voc", "coco"])
def test_fracatlas_boxes_match_dataset_on_rotated_image(project: Any, subset: Path, fmt: str, monkeypatch: Any) -> None:
    from skelex_web.celery import app

    monkeypatch.setattr(app, "send_task", SentTasks())
    text = _import(project, subset, fmt)
    assert "keeps PNG/JPEG/TIFF file names as image names" in text
    assert "20 files: 18 ingested, 0 duplicate, 2 rejected" in text
    assert "rejected: IMG0004028.jpg: truncated or corrupt image data" in text
    # COCO boxes are floats and VOC's rounded integers: the two sources differ by up to ~1 px.
    voc_tol = 1.5 if fmt == "coco" else 1.0
    for stem in FRACTURED:
        image = Image.objects.get(name=f"{stem}.jpg")
        stored = _stored(image)
        assert _close(stored, _yolo_boxes(stem, image.cols, image.rows)), stem
        assert _close(stored, _voc_boxes(stem), voc_tol), stem  # VOC pixel boxes, an independent source
    rotated = Image.objects.get(name="IMG0002628.jpg")  # EXIF orientation 8: 373x454 stored as 454x373
    assert (rotated.cols, rotated.rows) == (454, 373)
    for stem in NORMAL:
        assert not Annotation.objects.filter(image__name=f"{stem}.jpg", kind="box").exists()
    if fmt == "yolo":
        _check_csv_labels()
    if fmt == "voc":  # re-importing adds nothing
        before = Annotation.objects.count()
        assert "18 duplicate" in _import(project, subset, fmt)
        assert Annotation.objects.count() == before


def test_boxes_land_on_the_right_images_when_names_are_pseudonymised(
    project: Any, subset: Path, monkeypatch: Any
) -> None:
    from skelex_web.celery import app

    monkeypatch.setattr(app, "send_task", SentTasks())
    text = _import(project, subset, "yolo", keep_file_names=False)
    assert "keeps PNG/JPEG/TIFF" not in text and "18 ingested" in text
    project.refresh_from_db()
    assert not project.setting("keep_file_names")
    assert not Image.objects.filter(name__startswith="IMG").exists()
    for stem in FRACTURED + NORMAL:
        folder = "Fractured" if stem in FRACTURED else "Non_fractured"
        image = Image.objects.get(pixel_sha256=pixel_hash(load_image(FRACATLAS / "images" / folder / f"{stem}.jpg")))
        assert image.name == f"jpeg-{image.sha256[:12]}.jpg", stem
        stored = _stored(image)
        expected = _yolo_boxes(stem, image.cols, image.rows) if stem in FRACTURED else []
        assert _close(stored, expected), stem
        abnormal = Annotation.objects.get(image=image, kind="head", head="abnormal", origin="imported")
        assert abnormal.value == ("yes" if stem in FRACTURED else "no"), stem  # dataset.csv's row for it


def _check_csv_labels() -> None:
    with (FRACATLAS / "dataset.csv").open() as fh:
        table = {r["image_id"]: r for r in csv.DictReader(fh)}
    for stem in FRACTURED + NORMAL:
        row = table[f"{stem}.jpg"]
        image = Image.objects.get(name=f"{stem}.jpg")
        heads = {a.head: a.value for a in Annotation.objects.filter(image=image, kind="head", origin="imported")}
        assert heads["abnormal"] == ("yes" if row["fractured"] == "1" else "no")
        assert heads["implant"] == ("yes" if row["hardware"] == "1" else "no")
        parts = [p for p in ("hand", "leg", "hip", "shoulder", "mixed") if row[p] == "1"]
        assert image.body_part == "+".join(parts)
        site = {"hand": "hand", "hip": "hip_pelvis", "shoulder": "shoulder"}.get(parts[0]) if len(parts) == 1 else None
        assert heads.get("anatomical_site") == site
        assert image.view


def test_unknown_project_and_only_corrupt_files_fail(project: Any, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no project"):
        call_command("import_dataset", str(tmp_path), project="nope", fmt="yolo", no_progress=True)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "bad.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(CommandError, match="nothing could be imported"):
        call_command(
            "import_dataset", str(tmp_path), project=project.slug, fmt="yolo", no_progress=True, stdout=StringIO()
        )


@pytest.mark.parametrize("fmt", ["yolo", "voc"])
def test_a_dataset_without_labels_is_refused_before_anything_is_stored(
    project: Any, subset: Path, tmp_path: Path, fmt: str
) -> None:
    bare = tmp_path / "bare"
    (bare / "images").mkdir(parents=True)
    for image in sorted((subset / "images").rglob("*.jpg"))[:2]:
        (bare / "images" / image.name).write_bytes(image.read_bytes())
    with pytest.raises(CommandError, match=r"no labels to import: no .*, and no .*dataset\.csv \(for images alone"):
        _import(project, bare, fmt)
    assert not Image.objects.exists()
    # With a dataset.csv, its labels are imported and the missing boxes are said.
    (bare / "dataset.csv").write_text((subset / "dataset.csv").read_text())
    out = _import(project, bare, fmt)
    assert f"no {fmt} box files in {bare}: only dataset.csv's labels were imported" in out
    assert Image.objects.count() == 2
