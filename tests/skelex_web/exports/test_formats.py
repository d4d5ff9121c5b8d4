"""The pure writers on plain records: what a reader of each file finds in it."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from skelex_web.exports.formats import coco, headcsv, voc, yolo
from skelex_web.exports.formats.canonical import dumps, num

HEADER: dict[str, Any] = {
    "project": "wrist",
    "version": 3,
    "created_at": "2026-11-27T21:00:00+00:00",
    "content_hash": "ab" * 32,
    "label_schema": {
        "box_labels": ["fracture", "lesion"],
        "heads": [
            {"name": "abnormal", "kind": "binary", "classes": ["no", "yes"]},
            {"name": "findings", "kind": "multilabel", "classes": ["a", "b"]},
        ],
    },
    "split": {"seed": 0, "ratios": {"train": 0.5, "val": 0.5}},
}


def _box(label: str, bbox: list[float], **kw: Any) -> dict[str, Any]:
    return {"annotation": 1, "label": label, "bbox": bbox, "origin": "manual", "author": "lena",
            "model_version": None, "reviewed": False, "suggestion": None, "suggestion_bbox": None, **kw}  # fmt: skip


RECORDS = [
    {
        "image": 7, "stem": "000007-a", "split": "train", "group": "g1", "image_file": "images/train/000007-a.png",
        "width": 200, "height": 100, "file_sha256": "f" * 64, "labels_sha256": "l" * 64, "body_part": "hand",
        "boxes": [_box("lesion", [10, 20, 30.5, 60], origin="suggestion-edited", model_version="demo#2",
                       reviewed=True, author="ana")],
        "heads": {"findings": {"value": ["a", "b"], "origin": "manual", "author": "ana", "model_version": None,
                               "reviewed": False, "annotation": 5}},
    },
    {
        "image": 9, "stem": "000009-b", "split": "val", "group": "g2", "image_file": "images/val/000009-b.png",
        "width": 50, "height": 50, "file_sha256": "e" * 64, "labels_sha256": "k" * 64, "body_part": "",
        "boxes": [], "heads": {"abnormal": {"value": "unknown", "origin": "manual", "author": "lena",
                                            "model_version": None, "reviewed": True, "annotation": 6}},
    },
]  # fmt: skip


def records() -> Any:
    return iter([dict(r) for r in RECORDS])


def collect(files: Any) -> dict[str, str]:
    return {name: "".join(c if isinstance(c, str) else c.decode() for c in chunks) for name, chunks in files}


def test_canonical_numbers_and_json() -> None:
    assert num(12.0) == 12 and num(0.1 + 0.2) == 0.3 and num(1.23456) == 1.235
    assert dumps({"b": 1, "a": [1.5, "é"]}) == '{"a":[1.5,"é"],"b":1}'
    with pytest.raises(ValueError):
        num(float("nan"))


def test_coco_files_are_canonical_json_with_attributes_and_provenance() -> None:
    out = collect(coco.files(HEADER, records))
    assert set(out) == {"annotations/instances_train.json", "annotations/instances_val.json"}
    train = json.loads(out["annotations/instances_train.json"])
    assert dumps(train) == out["annotations/instances_train.json"]
    (ann,) = train["annotations"]
    assert ann["bbox"] == [10, 20, 20.5, 40] and ann["area"] == 820 and ann["category_id"] == 2
    assert ann["attributes"]["origin"] == "suggestion-edited" and ann["attributes"]["model_version"] == "demo#2"
    assert train["images"][0]["attributes"] == {"findings": ["a", "b"]}
    assert train["categories"][0] == {"id": 1, "name": "fracture", "supercategory": "finding"}
    val = json.loads(out["annotations/instances_val.json"])
    assert val["annotations"] == [] and val["images"][0]["file_name"] == "000009-b.png"


def test_yolo_labels_are_normalised_centre_boxes_and_negatives_get_empty_files() -> None:
    out = collect(yolo.files(HEADER, records))
    assert out["labels/train/000007-a.txt"] == "1 0.101250 0.400000 0.102500 0.400000\n"
    assert out["labels/val/000009-b.txt"] == ""
    assert "names:\n  0: fracture\n  1: lesion\n" in out["data.yaml"] and "val: images/val" in out["data.yaml"]
    assert out["classes.txt"] == "fracture\nlesion\n"


def test_voc_xml_parses_with_boxes_provenance_and_image_sets() -> None:
    out = collect(voc.files(HEADER, records))
    root = ET.fromstring(out["Annotations/000007-a.xml"])
    assert root.findtext("filename") == "000007-a.png" and root.findtext("size/width") == "200"
    obj = root.find("object")
    assert obj is not None and obj.findtext("name") == "lesion"
    assert [obj.findtext(f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")] == ["10", "20", "30.5", "60"]
    assert (obj.findtext("origin"), obj.findtext("author"), obj.findtext("model_version")) == (
        "suggestion-edited", "ana", "demo#2")  # fmt: skip
    assert root.findtext("attributes/findings") == "a|b"
    assert out["ImageSets/Main/train.txt"] == "000007-a\n" and out["ImageSets/Main/val.txt"] == "000009-b\n"


def test_csv_has_one_row_per_image_with_head_answers_and_provenance() -> None:
    out = collect(headcsv.files(HEADER, records))
    rows = list(csv.DictReader(io.StringIO(out["labels.csv"])))
    assert len(rows) == 2
    assert rows[0]["findings"] == "a|b" and rows[0]["findings__author"] == "ana" and rows[0]["abnormal"] == ""
    assert rows[0]["boxes__lesion"] == "1" and rows[0]["boxes__fracture"] == "0"
    assert rows[1]["abnormal"] == "unknown" and rows[1]["abnormal__reviewed"] == "1" and rows[1]["split"] == "val"
