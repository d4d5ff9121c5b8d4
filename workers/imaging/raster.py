"""PNG, JPEG and TIFF decoding through Pillow, into the same bone-bright uint16 record as DICOM.

JPEGs get their EXIF orientation applied (FracAtlas and phone exports: the boxes refer to the
rotated image). Colour or palette images become luma with a note; 16-bit PNG/TIFF keep their
values. Pixel counts are checked from the header before any pixel is decoded. Truncated files are
refused (``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from .decoded import DecodedImage, bits_for, histogram_window
from .errors import fail
from .safety import check_pixels

_FORMATS = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg", "TIFF": "tiff"}
_EXIF_ORIENTATION = 0x0112


def load_raster(data: bytes, name: str | None, *, max_pixels: int) -> DecodedImage:
    """Decodes a PNG, JPEG or TIFF file (first frame) to a :class:`DecodedImage`."""
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im: Image.Image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise fail(
            name, f"image too large: exceeds the limit of {max_pixels:,} pixels (possible decompression bomb)"
        ) from None
    except (OSError, SyntaxError, ValueError):
        raise fail(name, "not a readable image: not a PNG, JPEG or TIFF file, or its header is damaged") from None
    file_format = _FORMATS.get(im.format or "", "")
    if not file_format:
        raise fail(name, f"unsupported image format {im.format}")
    width, height = im.size
    check_pixels(height, width, 1, max_pixels, name)
    n_frames = int(getattr(im, "n_frames", 1))
    if n_frames > 1:
        notes.append(f"first of {n_frames} frames/pages used")
    try:
        orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # malformed EXIF blocks raise assorted errors; orientation then unknown
        orientation = 1
    try:
        if file_format == "jpeg" and im.mode in ("RGB", "YCbCr"):
            # libjpeg hands out the luma plane directly: cheaper than decoding RGB then converting.
            im.draft("L", im.size)
            notes.append("RGB converted to grayscale")
        im.load()
        if orientation != 1:
            im = ImageOps.exif_transpose(im)
            notes.append(f"EXIF orientation {orientation} applied")
        pixels, bits = _to_uint16(im, notes)
    except (OSError, SyntaxError, ValueError) as exc:
        # Said in words, not as the exception's class, which means nothing to the person uploading.
        problem = (
            "truncated or corrupt image data: the file ends early or its pixel data is damaged"
            if "truncated" in str(exc) or isinstance(exc, OSError)
            else "image data could not be decoded"
        )
        raise fail(name, problem) from None
    if bits <= 8:
        window, window_source = (float(1 << (bits - 1)), float(1 << bits)), "full_range"
    else:
        window, window_source = histogram_window(pixels), "histogram"
    return DecodedImage(
        pixels=pixels,
        window=window,
        bits=bits,
        photometric=_photometric(im.mode),
        file_format=file_format,
        notes=notes,
        window_source=window_source,
        exif_orientation=orientation if 1 <= orientation <= 8 else 1,
    )


def _photometric(mode: str) -> str:
    return "MONOCHROME2" if mode in ("L", "I;16", "I;16B", "I;16L", "I", "F", "1") else mode


def _to_uint16(im: Image.Image, notes: list[str]) -> tuple[np.ndarray, int]:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im).astype(np.uint16, copy=False), 16
    if mode == "I":
        arr = np.asarray(im)
        lo, hi = int(arr.min()), int(arr.max())
        if lo >= 0 and hi <= 65535:
            return arr.astype(np.uint16), 16
        notes.append("32-bit integer values rescaled to 16 bits")
        return _rescale(arr.astype(np.float64), lo, hi), 16
    if mode == "F":
        arr = np.asarray(im).astype(np.float64)
        notes.append("floating-point values rescaled to 16 bits")
        return _rescale(arr, float(np.nanmin(arr)), float(np.nanmax(arr))), 16
    if mode == "1":
        return np.asarray(im.convert("L")).astype(np.uint16), 8
    if mode != "L":
        label = {"P": "palette", "LA": "grayscale+alpha", "RGBA": "RGBA"}.get(mode, mode)
        if not any("grayscale" in n for n in notes):
            notes.append(f"{label} converted to grayscale")
        im = im.convert("L")
    return np.asarray(im).astype(np.uint16), 8


def _rescale(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    span = max(hi - lo, 1e-12)
    out = np.nan_to_num((arr - lo) * (65535.0 / span))
    return np.clip(np.rint(out), 0, 65535).astype(np.uint16)


__all__ = ["bits_for", "load_raster"]
