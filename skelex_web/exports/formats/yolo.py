"""YOLO (Ultralytics layout): ``labels/<split>/<stem>.txt`` beside ``images/<split>/``, ``data.yaml``
and ``classes.txt``.

One line per box, ``class cx cy w h`` normalised to the image size with 6 decimals; an image
without boxes gets an empty file (a negative example, not a missing one). YOLO files cannot carry
provenance: it is in the archive's ``manifest.jsonl``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .records import Header, Record, Records, box_labels, splits_of


def label_lines(record: Record, classes: dict[str, int]) -> str:
    width, height = float(record["width"]), float(record["height"])
    lines = []
    for box in record["boxes"]:
        x0, y0, x1, y1 = box["bbox"]
        cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
        w, h = (x1 - x0) / width, (y1 - y0) / height
        lines.append(f"{classes[box['label']]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
    return "".join(lines)


def data_yaml(header: Header) -> str:
    lines = [f"# {header['project']} dataset version {header.get('version', '')}", "path: ."]
    lines += [f"{split}: images/{split}" for split in splits_of(header)]
    names = box_labels(header)
    lines.append(f"nc: {len(names)}")
    lines.append("names:")
    lines += [f"  {i}: {name}" for i, name in enumerate(names)]
    return "\n".join(lines) + "\n"


def files(header: Header, records: Records) -> Iterator[tuple[str, Iterable[str | bytes]]]:
    classes = {name: i for i, name in enumerate(box_labels(header))}
    yield "data.yaml", [data_yaml(header)]
    # Darknet-style tools read class names from classes.txt (one per line, index order).
    yield "classes.txt", ["".join(f"{name}\n" for name in box_labels(header))]
    for record in records():
        yield f"labels/{record['split']}/{record['stem']}.txt", [label_lines(record, classes)]
