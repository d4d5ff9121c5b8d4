"""PNG / JPEG / TIFF decoding: bit depths kept, EXIF orientation applied, broken files refused."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.imaging import ImagingError, load_image

from .samples import png_bytes


def test_png_8bit_gray_kept_exactly() -> None:
    arr = np.arange(256, dtype=np.uint8).reshape(16, 16)
    decoded = load_image(png_bytes(arr), name="a.png")
    assert decoded.file_format == "png" and decoded.bits == 8
    assert np.array_equal(decoded.pixels, arr.astype(np.uint16))
    assert decoded.window == (128.0, 256.0)


def test_png_16bit_gray_kept_exactly_with_histogram_window() -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(1000, 40000, size=(40, 30), dtype=np.uint16)
    decoded = load_image(png_bytes(arr), name="a.png")
    assert decoded.bits == 16 and np.array_equal(decoded.pixels, arr)
    center, width = decoded.window
    assert 1000 < center < 40000 and 0 < width <= 39000 and decoded.window_source == "histogram"


def test_tiff_16bit_kept_exactly() -> None:
    arr = (np.arange(64 * 48, dtype=np.uint32) * 13 % 65535).astype(np.uint16).reshape(64, 48)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="TIFF")
    decoded = load_image(buf.getvalue(), name="a.tif")
    assert decoded.file_format == "tiff" and decoded.bits == 16
    assert np.array_equal(decoded.pixels, arr)


def test_rgb_png_converted_with_note() -> None:
    arr = np.zeros((8, 8, 3), dtype=np.uint8)
    arr[..., 1] = 200
    decoded = load_image(png_bytes(arr))
    assert decoded.pixels.shape == (8, 8) and "RGB converted to grayscale" in decoded.notes
    assert int(decoded.pixels[0, 0]) == round(200 * 0.587)


@pytest.mark.parametrize("stem,is_rgb", [("IMG0000019", False), ("IMG0000261", True)])
def test_fracatlas_jpeg_is_gray_uint16(fracatlas: Path, stem: str, is_rgb: bool) -> None:
    path = fracatlas / "images" / "Fractured" / f"{stem}.jpg"
    decoded = load_image(path, name=path.name)
    assert decoded.file_format == "jpeg" and decoded.pixels.dtype == np.uint16 and decoded.pixels.ndim == 2
    assert decoded.bits == 8 and decoded.pixels.max() <= 255
    assert ("RGB converted to grayscale" in decoded.notes) == is_rgb
    expected = np.asarray(Image.open(path).convert("L")).astype(int)
    assert np.abs(decoded.pixels.astype(int) - expected).mean() < 2


@pytest.mark.parametrize("stem,orientation", [("IMG0002628", 8), ("IMG0002588", 3)])
def test_exif_orientation_applied(fracatlas: Path, stem: str, orientation: int) -> None:
    path = fracatlas / "images" / "Fractured" / f"{stem}.jpg"
    raw = Image.open(path)
    decoded = load_image(path, name=path.name)
    expected = np.asarray(raw.transpose(_TRANSPOSE[orientation]).convert("L"))
    assert decoded.pixels.shape == expected.shape
    assert np.abs(decoded.pixels.astype(int) - expected.astype(int)).mean() < 2  # luma vs convert("L")
    assert f"EXIF orientation {orientation} applied" in decoded.notes


_TRANSPOSE = {3: Image.Transpose.ROTATE_180, 8: Image.Transpose.ROTATE_90}


@pytest.mark.parametrize("stem", ["IMG0004028", "IMG0004029", "IMG0004036"])
def test_truncated_fracatlas_jpegs_refused(fracatlas: Path, stem: str) -> None:
    path = fracatlas / "images" / "corrupt" / f"{stem}.jpg"
    with pytest.raises(ImagingError, match=rf"^{stem}\.jpg: truncated or corrupt image data: the file ends early") as e:
        load_image(path, name=path.name)
    assert "Error" not in str(e.value)  # said in words, not as an exception class


def test_a_file_that_is_no_image_is_refused_in_words(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"then nothing a PNG decoder could read")
    with pytest.raises(
        ImagingError, match=r"^scan\.png: not a readable image: not a PNG, JPEG or TIFF file, or its header is damaged$"
    ):
        load_image(path, name=path.name)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b"")
    )


def test_png_decompression_bomb_refused_from_header() -> None:
    with pytest.raises(ImagingError, match=r"bomb\.png: image too large: 9000x9000"):
        load_image(_png_header_only(9000, 9000), name="bomb.png")


def test_huge_png_beyond_pillow_limit_refused() -> None:
    with pytest.raises(ImagingError, match=r"bomb\.png: image too large"):
        load_image(_png_header_only(100000, 100000), name="bomb.png")


def test_size_limit() -> None:
    with pytest.raises(ImagingError, match=r"big\.png: file too large"):
        load_image(png_bytes(np.zeros((64, 64), np.uint8)), name="big.png", max_bytes=10)


def test_missing_file_named(tmp_path: Path) -> None:
    with pytest.raises(ImagingError, match="nope.png: file not found"):
        load_image(tmp_path / "nope.png", name="nope.png")
