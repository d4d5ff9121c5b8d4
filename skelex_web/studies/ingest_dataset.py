"""Importing labelled datasets: images plus their boxes (YOLO, PASCAL VOC or COCO) and per-image
CSV labels, as annotations with origin ``imported``.

Layout understood (FracAtlas's, and the common variants)::

    ROOT/images/**/<name>.jpg|png|dcm     (or images directly under ROOT)
    ROOT/Annotations/YOLO/<stem>.txt      class cx cy w h, normalised   (or ROOT/labels/)
    ROOT/Annotations/PASCAL VOC/<stem>.xml                               (or ROOT/Annotations/*.xml)
    ROOT/Annotations/*.json               COCO                           (or ROOT/annotations.json)
    ROOT/dataset.csv                      image_id + 0/1 columns (optional)

Boxes are stored in pixels of the decoded image, i.e. after the EXIF orientation was applied
(YOLO's normalised boxes are scaled by the decoded size; VOC/COCO pixel boxes are rescaled when
their declared image size differs). Label names are matched to the project's box labels exactly,
case-insensitively, then by prefix (``fractured`` → ``fracture``); YOLO class ids take their names
from ``classes.txt``/``obj.names`` or, failing that, the dataset's COCO categories.

CSV columns → heads, where the project's schema has the head: ``fractured`` → ``abnormal`` (or a
head named ``fractured``), ``hardware`` → ``implant``, body-part columns (hand, leg, hip,
shoulder, ...) → an anatomical-region head whose classes match (``hip`` → ``hip_pelvis``) and
always ``Image.body_part``; view columns (frontal, lateral, oblique) → ``Image.view``.
Re-running an import adds nothing twice: duplicates keep their existing imported labels.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from skelex_web.labeling.models import Annotation, AnnotationKind, Origin
from skelex_web.projects.models import Project

from .models import Image
from .services import IngestResult, ingest_many

FORMATS = ("yolo", "voc", "coco")
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dcm"}
_BODY_PARTS = ("hand", "leg", "hip", "shoulder", "mixed", "foot", "knee", "elbow", "wrist", "spine", "chest")
_VIEWS = ("frontal", "lateral", "oblique")
_REGION_HEADS = ("anatomical_region", "anatomical_site", "body_part", "region")


@dataclass
class RawBox:
    """A box as the dataset gives it, in the frame ``ref_w`` × ``ref_h`` (1 × 1 for YOLO)."""

    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    ref_w: float
    ref_h: float


@dataclass
class DatasetImport:
    """What an import did: per-file results and the labels created."""

    results: list[IngestResult] = field(default_factory=list)
    boxes: int = 0
    head_answers: int = 0
    unmatched_labels: dict[str, int] = field(default_factory=dict)


def find_images(root: Path) -> list[Path]:
    base = root / "images" if (root / "images").is_dir() else root
    return sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)


def _annotations_dir(root: Path) -> Path:
    return root / "Annotations" if (root / "Annotations").is_dir() else root


def _coco_file(root: Path) -> Path | None:
    candidates = sorted(_annotations_dir(root).glob("*.json")) + [root / "annotations.json"]
    for path in candidates:
        if path.is_file():
            return path
    return None


def load_coco(root: Path) -> tuple[dict[str, list[RawBox]], dict[int, str]]:
    """Boxes per image file name, and the category names by id."""
    path = _coco_file(root)
    if path is None:
        raise FileNotFoundError(f"no COCO json under {_annotations_dir(root)}")
    data = json.loads(path.read_text())
    categories = {int(c["id"]): str(c["name"]) for c in data.get("categories", [])}
    images = {int(i["id"]): i for i in data.get("images", [])}
    boxes: dict[str, list[RawBox]] = {}
    for ann in data.get("annotations", []):
        image = images.get(int(ann["image_id"]))
        if image is None or not ann.get("bbox"):
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        label = categories.get(int(ann.get("category_id", -1)), str(ann.get("category_id")))
        box = RawBox(label, x, y, x + w, y + h, float(image["width"]), float(image["height"]))
        boxes.setdefault(Path(image["file_name"]).name, []).append(box)
    return boxes, categories


def load_voc(root: Path, name: str) -> list[RawBox]:
    folder = _annotations_dir(root)
    for candidate in (folder / "PASCAL VOC" / f"{Path(name).stem}.xml", folder / f"{Path(name).stem}.xml"):
        if candidate.is_file():
            tree = ET.parse(candidate).getroot()
            width = float(tree.findtext("size/width") or 0)
            height = float(tree.findtext("size/height") or 0)
            out = []
            for obj in tree.iter("object"):
                bb = obj.find("bndbox")
                if bb is None:
                    continue
                coords = [float(bb.findtext(k) or 0) for k in ("xmin", "ymin", "xmax", "ymax")]
                out.append(RawBox(obj.findtext("name") or "", *coords, width or 0, height or 0))
            return out
    return []


def yolo_class_names(root: Path) -> dict[int, str]:
    folder = _annotations_dir(root)
    for candidate in (
        folder / "YOLO" / "classes.txt",
        root / "classes.txt",
        folder / "YOLO" / "obj.names",
        root / "obj.names",
    ):
        if candidate.is_file():
            names = [line.strip() for line in candidate.read_text().splitlines() if line.strip()]
            return dict(enumerate(names))
    if _coco_file(root) is not None:
        return load_coco(root)[1]
    return {}


def load_yolo(root: Path, name: str, classes: dict[int, str]) -> list[RawBox]:
    folder = _annotations_dir(root)
    for candidate in (folder / "YOLO" / f"{Path(name).stem}.txt", root / "labels" / f"{Path(name).stem}.txt"):
        if candidate.is_file():
            out = []
            for line in candidate.read_text().splitlines():
                parts = line.split()
                if len(parts) < 5:
                    continue
                cls, cx, cy, w, h = int(float(parts[0])), *(float(v) for v in parts[1:5])
                out.append(RawBox(classes.get(cls, str(cls)), cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, 1.0, 1.0))
            return out
    return []


def box_files(root: Path, fmt: str) -> list[Path]:
    """The box label files of ``fmt`` the dataset has, where ``load_yolo`` / ``load_voc`` /
    ``load_coco`` look for them (empty: the dataset has no boxes in that format)."""
    folder = _annotations_dir(root)
    if fmt == "coco":
        found = _coco_file(root)
        return [found] if found else []
    if fmt == "voc":
        return sorted((folder / "PASCAL VOC").glob("*.xml")) + sorted(folder.glob("*.xml"))
    return sorted(p for d in (folder / "YOLO", root / "labels") for p in d.glob("*.txt") if p.name != "classes.txt")


def load_csv(root: Path) -> dict[str, dict[str, str]]:
    path = root / "dataset.csv"
    if not path.is_file():
        return {}
    with path.open(newline="") as fh:
        return {row.get("image_id", ""): row for row in csv.DictReader(fh)}


def match_label(name: str, box_labels: list[str]) -> str | None:
    """The project's box label for a dataset label name: exact, case-insensitive, then unique prefix."""
    if name in box_labels:
        return name
    low = name.strip().lower().replace(" ", "_")
    for label in box_labels:
        if label.lower() == low:
            return label
    prefixed = [label for label in box_labels if low.startswith(label.lower()) or label.lower().startswith(low)]
    return prefixed[0] if len(prefixed) == 1 else None


def to_pixels(box: RawBox, cols: int, rows: int) -> tuple[float, float, float, float]:
    """The box in pixels of the decoded image, clamped to it."""
    sx = cols / box.ref_w if box.ref_w else 1.0
    sy = rows / box.ref_h if box.ref_h else 1.0
    x0, x1 = sorted((box.x0 * sx, box.x1 * sx))
    y0, y1 = sorted((box.y0 * sy, box.y1 * sy))
    return (max(0.0, x0), max(0.0, y0), min(float(cols), x1), min(float(rows), y1))


def import_dataset(
    project: Project,
    root: Path,
    fmt: str,
    *,
    actor: Any = None,
    limit: int | None = None,
    progress: Callable[[IngestResult], None] | None = None,
) -> DatasetImport:
    """Ingests the dataset's images, then stores their boxes and CSV labels as imported annotations.

    Labels are found by the dataset's file name and stored on the image id of that file's ingest
    result, never looked up by ``Image.name`` (a pseudonym in de-identifying projects).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    root = Path(root)
    # Refused before anything is stored: a dataset with neither boxes in this format nor a
    # dataset.csv would import images only, which is import_images' job, not a silent success.
    if not box_files(root, fmt) and not (root / "dataset.csv").is_file():
        where = {
            "coco": f"a COCO json under {_annotations_dir(root)}",
            "voc": f"PASCAL VOC .xml files under {_annotations_dir(root) / 'PASCAL VOC'} or {_annotations_dir(root)}",
            "yolo": f"YOLO .txt files under {_annotations_dir(root) / 'YOLO'} or {root / 'labels'}",
        }[fmt]
        raise FileNotFoundError(
            f"no labels to import: no {where}, and no {root / 'dataset.csv'} "
            "(for images alone use manage.py import_images)"
        )
    images = find_images(root)[: limit or None]
    coco = load_coco(root)[0] if fmt == "coco" else {}
    classes = yolo_class_names(root) if fmt == "yolo" else {}
    table = load_csv(root)
    summary = DatasetImport()
    summary.results = ingest_many(project, [(p.name, p) for p in images], actor=actor, progress=progress)
    box_labels = list(project.label_schema.get("box_labels", []))
    for path, result in zip(images, summary.results, strict=True):
        if result.image_id is None:
            continue
        if fmt == "coco":
            raw = coco.get(path.name, [])
        elif fmt == "voc":
            raw = load_voc(root, path.name)
        else:
            raw = load_yolo(root, path.name, classes)
        with transaction.atomic():
            image = Image.objects.select_for_update().get(pk=result.image_id)
            summary.boxes += _add_boxes(project, image, raw, box_labels, actor, summary.unmatched_labels)
            row = table.get(path.name)
            if row:
                summary.head_answers += _add_csv_labels(project, image, row, actor)
    return summary


def _add_boxes(
    project: Project, image: Image, raw: list[RawBox], box_labels: list[str], actor: Any, unmatched: dict[str, int]
) -> int:
    if not raw or Annotation.objects.filter(image=image, kind=AnnotationKind.BOX, origin=Origin.IMPORTED).exists():
        return 0
    rows = []
    for box in raw:
        label = match_label(box.label, box_labels)
        if label is None:
            unmatched[box.label] = unmatched.get(box.label, 0) + 1
            continue
        x0, y0, x1, y1 = to_pixels(box, image.cols, image.rows)
        rows.append(
            Annotation(
                project=project, image=image, kind=AnnotationKind.BOX, label=label,
                x0=x0, y0=y0, x1=x1, y1=y1, author=actor, updated_by=actor, origin=Origin.IMPORTED,
            )
        )  # fmt: skip
    Annotation.objects.bulk_create(rows)
    return len(rows)


def _head(schema: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any] | None:
    for head in schema.get("heads", []):
        if head.get("name") in names:
            return head
    return None


def _flag(row: dict[str, str], column: str) -> bool | None:
    value = (row.get(column) or "").strip()
    return None if value == "" else value not in ("0", "false", "False", "no")


def _add_csv_labels(project: Project, image: Image, row: dict[str, str], actor: Any) -> int:
    schema = project.label_schema or {}
    answers: dict[str, Any] = {}
    for column, head_names in (
        ("fractured", ("fractured", "fracture", "abnormal")),
        ("hardware", ("implant", "hardware")),
    ):
        flag = _flag(row, column)
        head = _head(schema, head_names)
        if flag is not None and head is not None and head.get("kind") == "binary":
            answers[head["name"]] = head["classes"][1 if flag else 0]
    parts = [p for p in _BODY_PARTS if _flag(row, p)]
    region = _head(schema, _REGION_HEADS)
    if parts and region is not None:
        matched = [c for p in parts for c in [_class_for(p, region["classes"])] if c]
        if region.get("kind") == "multilabel" and matched:
            answers[region["name"]] = sorted(set(matched))
        elif len(parts) == 1 and len(matched) == 1:  # several parts: a one-class head cannot say which
            answers[region["name"]] = matched[0]
    views = [v for v in _VIEWS if _flag(row, v)]
    changed = []
    if parts and not image.body_part:
        image.body_part = "+".join(parts)[:64]
        changed.append("body_part")
    if views and not image.view:
        image.view = "+".join(views)[:32]
        changed.append("view")
    if changed:
        image.save(update_fields=[*changed, "updated_at"])
    existing = set(
        Annotation.objects.filter(image=image, kind=AnnotationKind.HEAD, is_deleted=False).values_list(
            "head", flat=True
        )
    )
    rows = [
        Annotation(
            project=project, image=image, kind=AnnotationKind.HEAD, head=head, value=value,
            author=actor, updated_by=actor, origin=Origin.IMPORTED,
        )
        for head, value in answers.items()
        if head not in existing
    ]  # fmt: skip
    Annotation.objects.bulk_create(rows)
    return len(rows)


def _class_for(part: str, classes: list[str]) -> str | None:
    if part in classes:
        return part
    prefixed = [c for c in classes if c.startswith(part + "_") or c.startswith(part)]
    return prefixed[0] if len(prefixed) == 1 else None
