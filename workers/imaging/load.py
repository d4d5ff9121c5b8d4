"""Entry points: any supported file (path or bytes) → :class:`DecodedImage` frames.

The format is sniffed from magic bytes, never trusted from the file name: a ``.dcm`` holding a
JPEG decodes as JPEG, and random bytes named ``.dcm`` are refused as "not a recognised image".
Multi-frame DICOM: :func:`load_frames` yields one image per frame; :func:`load_image` returns a
single-frame image and refuses multi-frame files unless ``frame`` is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .decoded import DecodedImage
from .dicom import frame_count, iter_dicom_frames, read_dataset
from .errors import fail
from .raster import load_raster
from .safety import DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS, check_size, sniff

Source = str | Path | bytes


def read_source(source: Source, name: str | None, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """The bytes of ``source`` (a path or bytes), refusing files above ``max_bytes``."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        check_size(len(data), max_bytes, name)
        return data
    path = Path(source)
    try:
        size = path.stat().st_size
        check_size(size, max_bytes, name)
        return path.read_bytes()
    except FileNotFoundError:
        raise fail(name, "file not found") from None
    except IsADirectoryError:
        raise fail(name, "is a folder, not a file") from None
    except PermissionError:
        raise fail(name, "file not readable (permission denied)") from None


def load_frames(
    source: Source,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> Iterator[DecodedImage]:
    """Decodes every frame of ``source``: one image for PNG/JPEG/TIFF, one per DICOM frame.

    Raises:
        ImagingError: the input is unreadable, unsupported, too large or corrupt.
    """
    data = read_source(source, name, max_bytes)
    kind = sniff(data[:132])
    if kind in ("png", "jpeg", "tiff"):
        yield load_raster(data, name, max_pixels=max_pixels)
        return
    if kind == "zip":
        raise fail(name, "is a zip archive; unpack it with the archive importer")
    ds = read_dataset(data, name, max_pixels=max_pixels, sniffed=kind == "dicom")
    yield from iter_dicom_frames(ds, name)


def load_image(
    source: Source,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    frame: int | None = None,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> DecodedImage:
    """Decodes one image: the only frame, or ``frame`` of a multi-frame DICOM.

    Raises:
        ImagingError: as :func:`load_frames`, and for a multi-frame file without ``frame``.
    """
    data = read_source(source, name, max_bytes)
    kind = sniff(data[:132])
    if kind in ("png", "jpeg", "tiff"):
        if frame not in (None, 0):
            raise fail(name, f"frame {frame} does not exist (1 frame)")
        return load_raster(data, name, max_pixels=max_pixels)
    if kind == "zip":
        raise fail(name, "is a zip archive; unpack it with the archive importer")
    ds = read_dataset(data, name, max_pixels=max_pixels, sniffed=kind == "dicom")
    n_frames = frame_count(ds)
    if frame is None and n_frames > 1:
        raise fail(name, f"multi-frame DICOM ({n_frames} frames): use load_frames or pass frame=")
    return next(iter_dicom_frames(ds, name, [frame or 0]))
