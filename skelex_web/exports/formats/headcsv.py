"""CSV of image-level head answers (one row per image), with provenance columns per head.

Columns: ``image, file_name, split, group, body_part, view, laterality, file_sha256``, then for each
head ``<head>, <head>__origin, <head>__author, <head>__model_version, <head>__reviewed``, then a
box count per box label (``boxes__<label>``). Multilabel answers are joined with ``|``; an
unanswered head is an empty cell, an explicit "unknown" stays ``unknown``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from .records import Header, Record, Records, box_labels, head_names, head_value_text

FIXED = ["image", "file_name", "split", "group", "body_part", "view", "laterality", "file_sha256"]
PER_HEAD = ["", "__origin", "__author", "__model_version", "__reviewed"]


def columns(header: Header) -> list[str]:
    cols = list(FIXED)
    for head in head_names(header):
        cols += [head + suffix for suffix in PER_HEAD]
    cols += [f"boxes__{label}" for label in box_labels(header)]
    return cols


def row(header: Header, record: Record) -> list[Any]:
    values: list[Any] = [
        record["image"],
        record["image_file"].rsplit("/", 1)[-1],
        record["split"],
        record["group"],
        record.get("body_part", ""),
        record.get("view", ""),
        record.get("laterality", ""),
        record["file_sha256"],
    ]
    heads = record.get("heads", {})
    for head in head_names(header):
        answer = heads.get(head)
        if answer is None:
            values += [""] * len(PER_HEAD)
        else:
            values += [
                head_value_text(answer["value"]),
                answer["origin"],
                answer.get("author") or "",
                answer.get("model_version") or "",
                int(bool(answer.get("reviewed"))),
            ]
    for label in box_labels(header):
        values.append(sum(1 for box in record["boxes"] if box["label"] == label))
    return values


def _lines(header: Header, records: Records) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns(header))
    for record in records():
        writer.writerow(row(header, record))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def files(header: Header, records: Records) -> Iterator[tuple[str, Iterable[str | bytes]]]:
    yield "labels.csv", _lines(header, records)
