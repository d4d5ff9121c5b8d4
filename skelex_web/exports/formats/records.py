"""The manifest record: one image of a dataset version, with its labels and provenance.

A manifest is JSON lines: a header object, then one record per image in image-id order. Writers
take these plain dicts, never ORM rows, so the same version always exports the same bytes::

    {"image": 12, "name": "IMG0000019.jpg", "stem": "000012-IMG0000019", "split": "train",
     "group": "<sha256 of the patient/study/image key, 16 hex>",
     "file": "originals/…", "display": "display/…", "file_format": "dicom", "file_sha256": "…",
     "width": 2304, "height": 2880, "body_part": "hand", "view": "", "laterality": "", "modality": "CR",
     "study_uid": "…", "series_uid": "…", "sop_uid": "…", "frame": 0, "photometric": "MONOCHROME2",
     "window": [center, width] | null, "spacing": [row_mm, col_mm] | null,
     "boxes": [{"annotation": 7, "label": "fracture", "bbox": [x0, y0, x1, y1], "origin": "manual",
                "author": "lena", "model_version": "demo@3" | null, "reviewed": true,
                "suggestion": 5 | null, "suggestion_bbox": [..] | null}],
     "heads": {"abnormal": {"value": "yes", "annotation": 9, "origin": "manual", "author": "lena",
                            "model_version": null, "reviewed": false}},
     "labels_sha256": "<sha256 of canonical {"boxes","heads"}>"}

Boxes are in original-image pixels, (0, 0) the top-left corner of the top-left pixel, x0 <= x1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

Record = dict[str, Any]
Header = dict[str, Any]
# Re-readable record stream: writers that need two passes (COCO) call it twice.
Records = Callable[[], Iterator[Record]]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_stem(image_id: int, name: str) -> str:
    """A file-name stem unique in the version and safe on every OS: ``000012-IMG0000019``."""
    base = name.rsplit("/", 1)[-1]
    if "." in base:
        base = base.rsplit(".", 1)[0]
    base = _UNSAFE.sub("_", base).strip("._-")[:60]
    return f"{image_id:06d}-{base}" if base else f"{image_id:06d}"


def box_labels(header: Header) -> list[str]:
    """The version's box labels in schema order: class indices and category ids follow it."""
    return list(header["label_schema"].get("box_labels", []))


def head_names(header: Header) -> list[str]:
    return [h["name"] for h in header["label_schema"].get("heads", [])]


def splits_of(header: Header) -> list[str]:
    return list(header["split"]["ratios"])


def head_value_text(value: Any) -> str:
    """A head answer as one cell: multilabel lists joined with ``|``; ``unknown`` stays ``unknown``."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    return str(value)


def image_member(record: Record, ext: str) -> str:
    """Where an image goes in the archive: ``images/<split>/<stem><ext>``."""
    return f"images/{record['split']}/{record['stem']}{ext}"
