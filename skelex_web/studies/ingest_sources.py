"""Flattening ingest inputs: folders are walked and zip archives opened (safely) into single files.

Kept apart from ``services`` so the file-system and archive rules read in one place.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from workers.imaging import ImagingError, iter_zip, sniff

IMAGE_SUFFIXES = {".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".zip", ""}


def expand_sources(
    items: Iterable[tuple[str, str | Path | bytes]],
) -> Iterator[tuple[str, str | Path | bytes | None, str]]:
    """Flattens folders and zip archives into ``(name, source, error)`` triples (error "" when fine).

    Folders are walked (sorted, hidden files skipped); zips are opened with the safety checks of
    :func:`workers.imaging.iter_zip`, each unsafe entry becoming one error.
    """
    for name, source in items:
        if isinstance(source, str | Path) and Path(source).is_dir():
            root = Path(source)
            for path in _walk(root):
                yield from expand_sources([(f"{name.rstrip('/')}/{path.relative_to(root).as_posix()}", path)])
            continue
        if is_zip(source):
            try:
                for member in iter_zip(source if isinstance(source, bytes) else str(source), archive_name=name):
                    if member.error is not None:
                        yield f"{name}/{member.name}", None, str(member.error)
                    else:
                        yield f"{name}/{member.name}", member.data, ""
            except ImagingError as exc:
                yield name, None, str(exc)
            continue
        yield name, source, ""


def _walk(root: Path) -> list[Path]:
    """The files of a folder that the importers take, sorted: hidden files and folders skipped, and
    only names that may be images or zips."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and path.suffix.lower() in IMAGE_SUFFIXES
    )


def count_sources(paths: Iterable[Path]) -> int:
    """About how many files ``expand_sources`` will yield for these paths (for a progress bar's
    total): files walked as it walks them, a zip's file entries from its directory (not read)."""
    total = 0
    for path in paths:
        if path.is_dir():
            total += count_sources(_walk(path))
        elif is_zip(path):
            try:
                with zipfile.ZipFile(path) as archive:
                    total += sum(1 for info in archive.infolist() if not info.is_dir())
            except (OSError, zipfile.BadZipFile):
                total += 1
        else:
            total += 1
    return total


def is_zip(source: str | Path | bytes) -> bool:
    """Whether the source's bytes open a zip archive (what :func:`expand_sources` unpacks)."""
    if isinstance(source, bytes):
        return sniff(source[:8]) == "zip"
    try:
        with open(source, "rb") as fh:
            return sniff(fh.read(8)) == "zip"
    except OSError:
        return False
