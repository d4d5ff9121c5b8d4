"""Real data read back by real tools: FracAtlas in, COCO/YOLO/VOC out, pycocotools and our importer.

The source project is filled by the ingest team's ``import_dataset`` (COCO or YOLO boxes + dataset.csv);
each export is imported into a fresh project, and the boxes and labels must come back unchanged.
Both projects keep file names (``keep_file_names``), as a lead importing FracAtlas would: the
images are matched across the round trip by the export's ``<id>-<name>`` stems.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from skelex_web.exports import services
from skelex_web.labeling.models import Annotation
from skelex_web.studies.ingest_dataset import import_dataset
from tests.factories import ProjectFactory
from tests.paths import FRACATLAS

pytestmark = pytest.mark.django_db

KEEP_FILE_NAMES = {"keep_file_names": True}  # FracAtlas is public, anonymised, named by image id

# Small (373x454) films: six fractured (10 boxes), two normal.
FRACTURED = ["IMG0000284.jpg", "IMG0000307.jpg", "IMG0000319.jpg", "IMG0000351.jpg", "IMG0000352.jpg", "IMG0000466.jpg"]
NORMAL = ["IMG0000265.jpg", "IMG0000267.jpg"]


@pytest.fixture
def fracatlas_root(tmp_path: Path) -> Path:
    if not FRACATLAS.is_dir():
        pytest.skip(f"FracAtlas development data not found at {FRACATLAS}")
    root = tmp_path / "fracatlas-subset"
    (root / "images").mkdir(parents=True)
    for name in FRACTURED:
        shutil.copy(FRACATLAS / "images" / "Fractured" / name, root / "images" / name)
    for name in NORMAL:
        shutil.copy(FRACATLAS / "images" / "Non_fractured" / name, root / "images" / name)
    (root / "Annotations").symlink_to(FRACATLAS / "Annotations")
    (root / "dataset.csv").symlink_to(FRACATLAS / "dataset.csv")
    return root


@pytest.fixture(params=["coco", "yolo"])
def source(fracatlas_root: Path, request: pytest.FixtureRequest) -> Any:
    """The subset imported from FracAtlas's own COCO file, or from its YOLO label files."""
    project = ProjectFactory(slug="fracatlas-src", settings=KEEP_FILE_NAMES)
    summary = import_dataset(project, fracatlas_root, request.param)
    assert summary.boxes == 10 and len(summary.results) == 8
    return project


def boxes_by_stem(project: Any) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
    out: dict[str, list[tuple[str, tuple[float, ...]]]] = {}
    for ann in Annotation.objects.filter(project=project, kind="box").select_related("image"):
        stem = Path(ann.image.name).stem
        out.setdefault(stem, []).append((ann.label, (ann.x0, ann.y0, ann.x1, ann.y1)))
    return {k: sorted(v) for k, v in out.items()}


def assert_same_boxes(expected: dict[str, Any], got: dict[str, Any], tol: float) -> None:
    assert set(got) == set(expected)
    for stem, boxes in expected.items():
        assert [label for label, _ in got[stem]] == [label for label, _ in boxes], stem
        for (_, a), (_, b) in zip(got[stem], boxes):
            assert max(abs(x - y) for x, y in zip(a, b)) <= tol, (stem, a, b)


def export_dir(project: Any, fmt: str, dest: Path, images: str = "png16") -> Path:
    version = services.create_version(project=project, split_seed=4, filters={"include_unlabelled": True})
    job = services.export_now(version=version, fmt=fmt, images=images)
    with zipfile.ZipFile(Path(settings.MEDIA_ROOT, job.file.name)) as zf:
        zf.extractall(dest)
    return dest


def expected_by_export_stem(project: Any) -> dict[str, Any]:
    """Source boxes keyed by the stem the export gives each image (``<id>-<name>``)."""
    by_id = {a.image_id: a.image.name for a in Annotation.objects.filter(project=project).select_related("image")}
    source = boxes_by_stem(project)
    out = {}
    for image_id, name in by_id.items():
        if Path(name).stem in source:
            out[f"{image_id:06d}-{Path(name).stem}"] = source[Path(name).stem]
    return out


def test_coco_export_loads_in_pycocotools_and_evaluates_as_ground_truth(source: Any, tmp_path: Path) -> None:
    root = export_dir(source, "coco", tmp_path / "coco", images="none")
    files = sorted((root / "annotations").glob("instances_*.json"))
    assert files, "no COCO files"
    total = 0
    for path in files:
        gt = COCO(str(path))
        total += len(gt.getAnnIds())
        if not gt.getAnnIds():
            continue
        detections = [
            {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
            for a in gt.loadAnns(gt.getAnnIds())
        ]
        evaluator = COCOeval(gt, gt.loadRes(detections), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        assert evaluator.stats[0] == pytest.approx(1.0)  # the labels, scored against themselves
        data = json.loads(path.read_text())
        assert all(a["attributes"]["origin"] == "imported" for a in data["annotations"])
        assert all("abnormal" in i["attributes"] for i in data["images"])
    assert total == 10


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_export_then_import_into_a_new_project_gives_the_same_boxes(source: Any, tmp_path: Path, fmt: str) -> None:
    root = export_dir(source, fmt, tmp_path / fmt)
    # The importer reads one COCO file and flat YOLO label folders (FracAtlas's layout); the export
    # is per split (COCO's instances_<split>.json, Ultralytics' labels/<split>/), so flatten it.
    if fmt == "coco":
        merged: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
        for path in sorted((root / "annotations").glob("instances_*.json")):
            data = json.loads(path.read_text())
            merged["images"] += data["images"]
            merged["annotations"] += data["annotations"]
            merged["categories"] = data["categories"]
        (root / "summary.json").unlink()
        (root / "Annotations").mkdir()
        (root / "Annotations" / "coco.json").write_text(json.dumps(merged))
    elif fmt == "yolo":
        for label_file in list((root / "labels").glob("*/*.txt")):
            label_file.rename(root / "labels" / label_file.name)
    target = ProjectFactory(slug=f"reimport-{fmt}", settings=KEEP_FILE_NAMES)
    summary = import_dataset(target, root, fmt)
    assert len(summary.results) == 8 and all(r.status == "ingested" for r in summary.results)
    # COCO and VOC keep a thousandth of a pixel; YOLO's normalised 6 decimals are 1e-6 * 454 px apart.
    assert_same_boxes(expected_by_export_stem(source), boxes_by_stem(target), tol=1e-3)
