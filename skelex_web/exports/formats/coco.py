"""COCO detection JSON, one file per split, streamed in canonical key order.

Layout: ``annotations/instances_<split>.json`` with images in ``images/<split>/``. Categories are
the version's box labels (ids from 1, schema order). Image-level head answers go in each image's
``attributes``; provenance (origin, author, model version, review) in each annotation's
``attributes`` and each image's ``skelex`` block. Keys are written sorted (``annotations``,
``categories``, ``images``, ``info``, ``licenses``), matching :func:`canonical.dumps` of the
whole object, so the bytes equal ``dumps(json.load(file))``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .canonical import dumps, num
from .records import Header, Record, Records, box_labels, splits_of


def categories(header: Header) -> list[dict[str, Any]]:
    return [{"id": i + 1, "name": name, "supercategory": "finding"} for i, name in enumerate(box_labels(header))]


def image_entry(record: Record) -> dict[str, Any]:
    heads = record.get("heads", {})
    return {
        "id": record["image"],
        "file_name": record["image_file"].rsplit("/", 1)[-1],
        "width": record["width"],
        "height": record["height"],
        "attributes": {name: answer["value"] for name, answer in heads.items()},
        "skelex": {
            "split": record["split"],
            "group": record["group"],
            "file_sha256": record["file_sha256"],
            "labels_sha256": record["labels_sha256"],
            "body_part": record.get("body_part", ""),
            "view": record.get("view", ""),
            "laterality": record.get("laterality", ""),
            "heads": {name: _provenance(answer) for name, answer in heads.items()},
        },
    }


def _provenance(label: dict[str, Any]) -> dict[str, Any]:
    return {
        "origin": label["origin"],
        "author": label.get("author"),
        "model_version": label.get("model_version"),
        "reviewed": bool(label.get("reviewed")),
        "annotation": label.get("annotation"),
        "suggestion": label.get("suggestion"),
    }


def annotation_entry(ann_id: int, record: Record, box: dict[str, Any], category_id: int) -> dict[str, Any]:
    x0, y0, x1, y1 = box["bbox"]
    w, h = num(x1 - x0), num(y1 - y0)
    return {
        "id": ann_id,
        "image_id": record["image"],
        "category_id": category_id,
        "bbox": [num(x0), num(y0), w, h],
        "area": num(w * h),
        "iscrowd": 0,
        "attributes": _provenance(box),
    }


def _split_json(header: Header, records: Records, split: str, first_ann_id: int) -> Iterator[str]:
    cat_ids = {c["name"]: c["id"] for c in categories(header)}
    yield '{"annotations":['
    ann_id = first_ann_id
    sep = ""
    for record in records():
        if record["split"] != split:
            continue
        for box in record["boxes"]:
            yield sep + dumps(annotation_entry(ann_id, record, box, cat_ids[box["label"]]))
            sep = ","
            ann_id += 1
    yield '],"categories":' + dumps(categories(header)) + ',"images":['
    sep = ""
    for record in records():
        if record["split"] == split:
            yield sep + dumps(image_entry(record))
            sep = ","
    info = {
        "description": f"{header['project']} dataset version {header.get('version', '')}".strip(),
        "version": str(header.get("version", "")),
        "date_created": header.get("created_at", ""),
        "content_hash": header.get("content_hash", ""),
        "contributor": "skelex-web",
        "url": "",
        "year": int(str(header.get("created_at", "0"))[:4] or 0),
    }
    yield '],"info":' + dumps(info) + ',"licenses":[]}'


def files(header: Header, records: Records) -> Iterator[tuple[str, Iterable[str | bytes]]]:
    """One JSON file per split; annotation ids run on across splits so they are unique."""
    # Count boxes per split first (cheap pass) so ids are stable and unique across the files.
    counts = dict.fromkeys(splits_of(header), 0)
    for record in records():
        counts[record["split"]] += len(record["boxes"])
    first = 1
    for split in splits_of(header):
        yield f"annotations/instances_{split}.json", _split_json(header, records, split, first)
        first += counts[split]
