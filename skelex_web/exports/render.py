"""Rendering a dataset version into a zip: label files from the pure writers, then the images.

Reads only the version's manifest (never the live labels), so the label files of a version are
the same bytes every time; the archive itself is reproducible too (fixed entry times, stable order).
Memory stays bounded: one record, one image and one zip chunk at a time.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage

from .embeddings import embeddings_files
from .formats import coco, headcsv, images, voc, yolo
from .formats.archive import ZipSink
from .formats.canonical import dumps
from .formats.records import Header, Record, Records, image_member
from .models import DatasetVersion, ExportFormat, ImageMode

Progress = Callable[[int, int], None]


def open_manifest(version: DatasetVersion) -> tuple[Header, Records]:
    """The manifest header and a re-readable stream of its records."""
    path = Path(default_storage.path(version.manifest.name))
    with open(path, encoding="utf-8") as handle:
        header = json.loads(handle.readline())

    def records() -> Iterator[Record]:
        with open(path, encoding="utf-8") as handle:
            handle.readline()
            for line in handle:
                yield json.loads(line)

    return header, records


def media_path(name: str | None) -> Path | None:
    return Path(default_storage.path(name)) if name else None


def image_ext(record: Record, mode: str) -> str:
    if mode == ImageMode.ORIGINAL:
        if record.get("file_format") == "dicom":
            return ".dcm"
        suffix = Path(record["file"]).suffix.lower()
        return suffix or ".bin"
    return ".png"


def image_bytes_or_path(record: Record, mode: str) -> bytes | Path:
    """The archive content for one image: a path to copy as is, or freshly encoded PNG bytes."""
    original = media_path(record["file"])
    display = media_path(record.get("display"))
    assert original is not None
    if mode == ImageMode.ORIGINAL:
        return original
    if mode == ImageMode.PNG16:
        if display is not None and display.exists() and images.is_png16(display):
            return display
        return images.png16(display if display is not None and display.exists() else original)
    # png8: the stored window is in display-PNG units, so it only applies to the display PNG.
    if display is not None and display.exists():
        center, width = record["window"] if record.get("window") else (None, None)
        return images.png8(display, center, width)
    return images.png8(original, None, None)


def _load_sr_source(record: Record) -> Any:
    import pydicom

    path = media_path(record["file"])
    if path is None or not path.exists():
        return None
    return pydicom.dcmread(path, stop_before_pixels=True)


def label_files(fmt: str, header: Header, records: Records, on_record: Callable[[], None]) -> Iterator[Any]:
    if fmt == ExportFormat.COCO:
        return coco.files(header, records)
    if fmt == ExportFormat.YOLO:
        return yolo.files(header, records)
    if fmt == ExportFormat.VOC:
        return voc.files(header, records)
    if fmt == ExportFormat.CSV:
        return headcsv.files(header, records)
    if fmt == ExportFormat.DICOM_SR:
        # highdicom costs ~50 MB of imports: only the SR export pays for it.
        from .formats import dicom_sr

        def load(record: Record) -> Any:
            on_record()
            return _load_sr_source(record)

        return dicom_sr.files(header, records, load)
    raise ValueError(f"unknown export format {fmt!r}")


def export_header(version: DatasetVersion, header: Header) -> Header:
    """The manifest header plus the version's identity (number, time, hash) for the writers."""
    return {
        **header,
        "version": version.number,
        "created_at": version.created_at.isoformat(timespec="seconds"),
        "content_hash": version.content_hash,
    }


def render(
    version: DatasetVersion,
    fmt: str,
    mode: str,
    dest: Path,
    progress: Progress | None = None,
    *,
    embeddings: bool = False,
) -> None:
    """Writes the zip for ``version`` in format ``fmt`` with images as ``mode`` to ``dest``.

    Layout: ``manifest.jsonl`` (the version's manifest, verbatim), ``summary.json``, the format's
    label files, with ``embeddings`` the backbone's vectors (``embeddings.npz`` and
    ``embeddings.json``, see ``embeddings.py``), then ``images/<split>/<stem>.<ext>`` unless ``mode``
    is ``none``.
    """
    header, records = open_manifest(version)
    header = export_header(version, header)
    total = header["image_count"] * (2 if fmt == ExportFormat.DICOM_SR and mode != ImageMode.NONE else 1)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None and (done % 50 == 0 or done == total):
            progress(done, total)

    def with_members() -> Iterator[Record]:
        for record in records():
            record["image_file"] = image_member(record, image_ext(record, mode))
            yield record

    summary = {
        "version": header["version"],
        "project": header["project"],
        "created_at": header["created_at"],
        "content_hash": header["content_hash"],
        "format": fmt,
        "images": mode,
        "embeddings": embeddings,
        "filters": header["filters"],
        "split": header["split"],
        "summary": version.summary,
    }
    with ZipSink(dest) as sink:
        sink.write_file("manifest.jsonl", Path(default_storage.path(version.manifest.name)), compress=True)
        sink.write_chunks("summary.json", [dumps(summary) + "\n"])
        with warnings.catch_warnings():
            # highdicom warns about one-component person names and private code schemes: both deliberate.
            warnings.simplefilter("ignore", UserWarning)
            for name, chunks in label_files(fmt, header, with_members, tick):
                sink.write_chunks(name, chunks)
        if embeddings:
            npz, about = embeddings_files(version, records())
            sink.write_chunks("embeddings.npz", [npz], compress=False)
            sink.write_chunks("embeddings.json", [dumps(about) + "\n"])
        for record in with_members() if mode != ImageMode.NONE else iter(()):
            if fmt == ExportFormat.DICOM_SR and record.get("file_format") != "dicom":
                tick()
                continue
            content = image_bytes_or_path(record, mode)
            if isinstance(content, Path):
                sink.write_file(record["image_file"], content, compress=mode == ImageMode.ORIGINAL)
            else:
                sink.write_chunks(record["image_file"], [content], compress=False)
            tick()
    if progress is not None:
        progress(total, total)
