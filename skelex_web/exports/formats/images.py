"""Image files for an export: the 16-bit display PNG as is, an 8-bit windowed PNG, or the original.

Pure file-to-bytes helpers (Pillow, numpy, pydicom); the caller picks the source paths. The 8-bit
rendering applies the image's stored window (in display-PNG units) or, when none is stored, the
0.5-99.5 percentile range; the 16-bit PNG is copied byte for byte so re-exports are identical.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps


def _load_gray(path: Path) -> np.ndarray:
    """A 2-D array (uint8 or uint16 values) from a PNG/JPEG/TIFF or a DICOM file (first frame)."""
    with open(path, "rb") as handle:
        head = handle.read(132)
    if head[128:132] == b"DICM":
        import pydicom

        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
        if pixels.ndim == 3 and int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            pixels = pixels[0]
        pixels = pixels.astype(np.float64)
        lo, hi = float(pixels.min()), float(pixels.max())
        scaled = (pixels - lo) / (hi - lo or 1.0) * 65535.0
        if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
            scaled = 65535.0 - scaled
        return np.round(scaled).astype(np.uint16)
    with PILImage.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.asarray(img, dtype=np.int64).clip(0, 65535).astype(np.uint16)
        return np.asarray(img.convert("L"), dtype=np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    """A grayscale PNG (8- or 16-bit by dtype); Pillow's encoder is deterministic for equal input."""
    buffer = io.BytesIO()
    if pixels.dtype == np.uint16:
        PILImage.fromarray(pixels.astype("<u2")).save(buffer, format="PNG", compress_level=6)
    else:
        PILImage.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def is_png16(path: Path) -> bool:
    """True for a 16-bit grayscale PNG (bit depth byte 16, colour type 0 in the IHDR chunk)."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    return head[:8] == b"\x89PNG\r\n\x1a\n" and head[24] == 16 and head[25] == 0


def png16(path: Path) -> bytes:
    """The image as a 16-bit grayscale PNG (8-bit sources scaled by 257 so white stays white)."""
    pixels = _load_gray(path)
    if pixels.dtype == np.uint8:
        pixels = pixels.astype(np.uint16) * 257
    return png_bytes(pixels)


def window_8bit(pixels: np.ndarray, center: float | None, width: float | None) -> np.ndarray:
    """Linear window to 0..255; without a window, the 0.5-99.5 percentile range."""
    values = pixels.astype(np.float32)
    if center is None or width is None or width <= 0:
        lo, hi = np.percentile(values, [0.5, 99.5]) if values.size else (0.0, 1.0)
    else:
        lo, hi = center - width / 2.0, center + width / 2.0
    scaled = (values - lo) / max(float(hi - lo), 1e-6) * 255.0
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def png8(path: Path, center: float | None, width: float | None) -> bytes:
    """The image windowed to an 8-bit PNG. 8-bit sources are not re-windowed (already display values)."""
    pixels = _load_gray(path)
    if pixels.dtype == np.uint8:
        return png_bytes(pixels)
    return png_bytes(window_8bit(pixels, center, width))
