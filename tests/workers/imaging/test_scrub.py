"""Raster de-identification: metadata out of PNG/JPEG/TIFF originals, pixels and orientation kept."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.imaging import ImagingError, load_image
from workers.imaging.scrub import scrub_raster

from .samples import PATIENT, PHI_STRINGS, film, jpeg_with_metadata, png_with_text, with_segments


def _assert_pixels_copied(clean: bytes, source: bytes) -> None:
    """Tables, frame header and scans of ``clean`` (from its first DQT on) appear in ``source`` as they are."""
    assert clean[clean.index(b"\xff\xdb") :] in source


def _assert_clean(data: bytes) -> None:
    for secret in PHI_STRINGS:
        assert secret not in data, secret


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_metadata_removed_pixels_byte_identical(progressive: bool) -> None:
    source = jpeg_with_metadata(film(), progressive=progressive)
    for secret in PHI_STRINGS[:3]:
        assert secret in source  # the fixture really carries them
    with Image.open(io.BytesIO(source)) as im:
        assert im.getexif().get_ifd(0x8825)  # GPS present before

    clean, removed = scrub_raster(source, "jpeg")

    _assert_clean(clean)
    assert b"Exif" not in clean and b"xmpmeta" not in clean
    assert "EXIF/XMP" in removed and "comment" in removed
    _assert_pixels_copied(clean, source)  # not re-encoded
    assert np.array_equal(load_image(clean).pixels, load_image(source).pixels)


def test_jpeg_orientation_kept_alone() -> None:
    source = jpeg_with_metadata(film(), orientation=6)
    before = load_image(source)
    assert before.exif_orientation == 6 and before.pixels.shape == (64, 48)  # rotated by the decoder

    clean, _ = scrub_raster(source, "jpeg", before.exif_orientation)

    _assert_clean(clean)
    after = load_image(clean)
    assert after.exif_orientation == 6 and np.array_equal(after.pixels, before.pixels)
    with Image.open(io.BytesIO(clean)) as im:
        exif = im.getexif()
        assert dict(exif) == {0x0112: 6} and not exif.get_ifd(0x8825) and not exif.get_ifd(0x8769)


def test_jpeg_rgb_with_adobe_marker_and_trailing_picture() -> None:
    rgb = np.stack([film(seed=1), film(seed=2), film(seed=3)], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=85)
    adobe = b"Adobe\x00\x64\x00\x00\x00\x00\x01"  # transform 1 = YCbCr
    second = jpeg_with_metadata(film(seed=4))  # an MPO-style second picture after EOI
    source = with_segments(buf.getvalue(), (0xEE, adobe)) + second

    clean, removed = scrub_raster(source, "jpeg")

    _assert_clean(clean)
    assert adobe in clean and clean.endswith(b"\xff\xd9") and "trailing data" in removed
    assert np.array_equal(load_image(clean).pixels, load_image(source).pixels)


@pytest.mark.parametrize("stem", ["IMG0002628", "IMG0002588", "IMG0000261"])
def test_fracatlas_jpegs_decode_identically(fracatlas: Path, stem: str) -> None:
    source = (fracatlas / "images" / "Fractured" / f"{stem}.jpg").read_bytes()
    before = load_image(source)

    clean, _ = scrub_raster(source, "jpeg", before.exif_orientation)

    after = load_image(clean)
    assert after.exif_orientation == before.exif_orientation
    assert np.array_equal(after.pixels, before.pixels)
    _assert_pixels_copied(clean, source)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_text_chunks_removed_idat_identical(dtype: type) -> None:
    arr = film().astype(dtype) * (257 if dtype is np.uint16 else 1)
    source = png_with_text(arr)
    assert PATIENT.encode() in source

    clean, removed = scrub_raster(source, "png")

    _assert_clean(clean)
    assert {"tEXt", "iTXt", "zTXt", "eXIf", "prVt", "trailing data"} <= set(removed)
    assert _idat(clean) == _idat(source)  # pixels copied byte for byte
    assert np.array_equal(load_image(clean).pixels, load_image(source).pixels)


def _idat(png: bytes) -> bytes:
    """The IDAT chunks, whole (length, type, data, CRC), in order."""
    out, pos = [], 8
    while pos < len(png) and png[pos - 4 : pos] != b"IEND":
        (length,) = struct.unpack_from(">I", png, pos)
        if png[pos + 4 : pos + 8] == b"IDAT":
            out.append(png[pos : pos + 12 + length])
        pos += 12 + length
    assert out
    return b"".join(out)


def test_png_orientation_kept_alone() -> None:
    source = png_with_text(film(), orientation=8)
    before = load_image(source)
    assert before.exif_orientation == 8

    clean, _ = scrub_raster(source, "png", before.exif_orientation)

    _assert_clean(clean)
    after = load_image(clean)
    assert after.exif_orientation == 8 and np.array_equal(after.pixels, before.pixels)


def test_tiff_tags_removed_page_kept_losslessly() -> None:
    arr = (film().astype(np.uint16) * 200).astype(np.uint16)
    buf = io.BytesIO()
    tags = {270: f"Patient {PATIENT}", 315: "Dr Quincy", 306: "2019:03:04 05:06:07", 274: 3}
    Image.fromarray(arr).save(buf, format="TIFF", tiffinfo=tags)
    source = buf.getvalue()
    assert PATIENT.encode() in source
    before = load_image(source)

    clean, _ = scrub_raster(source, "tiff", before.exif_orientation)

    _assert_clean(clean)
    after = load_image(clean)
    assert after.bits == 16 and np.array_equal(after.pixels, before.pixels)  # written upright


@pytest.mark.parametrize(
    "data,fmt",
    [(b"\xff\xd8\xff\xe1\x00\x40Exif", "jpeg"), (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", "png"), (b"xx", "jpeg")],
)
def test_structure_it_cannot_follow_is_refused(data: bytes, fmt: str) -> None:
    with pytest.raises(ImagingError, match="x.jpg: metadata could not be removed"):
        scrub_raster(data, fmt, name="x.jpg")
