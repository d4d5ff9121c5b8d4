"""Pascal VOC: one ``Annotations/<stem>.xml`` per image and ``ImageSets/Main/<split>.txt``.

Coordinates are the stored pixel coordinates (up to 3 decimals, integers written as integers).
Each ``object`` carries provenance in extra elements (``origin``, ``author``, ``model_version``,
``reviewed``) that VOC readers ignore; head answers go in an ``attributes`` element.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from xml.sax.saxutils import escape

from .canonical import num_text
from .records import Header, Record, Records, head_value_text, splits_of


def _el(tag: str, text: object, indent: int) -> str:
    return f"{'  ' * indent}<{tag}>{escape(str(text))}</{tag}>\n"


def annotation_xml(record: Record) -> str:
    folder, _, filename = record["image_file"].rpartition("/")
    parts = ["<annotation>\n", _el("folder", folder, 1), _el("filename", filename, 1)]
    parts += ["  <source>\n", _el("database", "skelex-web", 2), _el("image", record["image"], 2), "  </source>\n"]
    parts += ["  <size>\n", _el("width", record["width"], 2), _el("height", record["height"], 2)]
    parts += [_el("depth", 1, 2), "  </size>\n", _el("segmented", 0, 1)]
    heads = record.get("heads", {})
    if heads:
        parts.append("  <attributes>\n")
        parts += [_el(name, head_value_text(heads[name]["value"]), 2) for name in sorted(heads)]
        parts.append("  </attributes>\n")
    for box in record["boxes"]:
        x0, y0, x1, y1 = box["bbox"]
        parts += ["  <object>\n", _el("name", box["label"], 2), _el("pose", "Unspecified", 2)]
        parts += [_el("truncated", 0, 2), _el("difficult", 0, 2)]
        parts += [_el("origin", box["origin"], 2), _el("author", box.get("author") or "", 2)]
        parts += [_el("model_version", box.get("model_version") or "", 2)]
        parts += [_el("reviewed", int(bool(box.get("reviewed"))), 2)]
        parts += ["    <bndbox>\n", _el("xmin", num_text(x0), 3), _el("ymin", num_text(y0), 3)]
        parts += [_el("xmax", num_text(x1), 3), _el("ymax", num_text(y1), 3), "    </bndbox>\n", "  </object>\n"]
    parts.append("</annotation>\n")
    return "".join(parts)


def files(header: Header, records: Records) -> Iterator[tuple[str, Iterable[str | bytes]]]:
    for record in records():
        yield f"Annotations/{record['stem']}.xml", [annotation_xml(record)]
    for split in splits_of(header):
        yield f"ImageSets/Main/{split}.txt", (r["stem"] + "\n" for r in records() if r["split"] == split)
