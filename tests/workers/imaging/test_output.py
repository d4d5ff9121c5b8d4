"""Stored renditions: lossless 16-bit display PNG, windowed thumbnail, format-independent pixel hash."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from workers.imaging import encode_png16, load_image, pixel_hash, read_png16, thumbnail_png, to_display_png
from workers.imaging.output import apply_window

from .samples import dicom_path, png_bytes


def test_display_png_round_trips_bit_exact_in_pillow() -> None:
    decoded = load_image(dicom_path("CT_small.dcm"))
    data = to_display_png(decoded)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode.startswith("I;16") and im.size == (128, 128)
    assert np.array_equal(read_png16(data), decoded.pixels)


def test_display_png_full_16_bit_range() -> None:
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 65536, size=(33, 17), dtype=np.uint16)
    decoded = load_image(png_bytes(arr))
    assert np.array_equal(read_png16(to_display_png(decoded)), arr)


def test_thumbnail_is_8bit_and_fits() -> None:
    decoded = load_image(dicom_path("RG1_UNCR.dcm"))
    with Image.open(io.BytesIO(thumbnail_png(decoded, size=128))) as im:
        assert im.mode == "L" and max(im.size) == 128
        thumb = np.asarray(im)
    assert thumb.std() > 10  # windowed, not a flat grey


def test_window_maps_center_to_mid_gray() -> None:
    out = apply_window(np.array([[0, 100, 200]], dtype=np.uint16), (100.0, 200.0))
    assert out.tolist() == [[0, 127, 255]]


def test_pixel_hash_same_for_same_pixels_in_other_formats() -> None:
    decoded = load_image(dicom_path("MR_small.dcm"))
    as_png = load_image(to_display_png(decoded))
    assert pixel_hash(as_png) == pixel_hash(decoded)
    other = load_image(dicom_path("CT_small.dcm"))
    assert pixel_hash(other) != pixel_hash(decoded)


def test_png8_round_trips_bit_exact() -> None:
    from workers.imaging import encode_png8

    arr = np.random.default_rng(2).integers(0, 256, size=(19, 41), dtype=np.uint8)
    with Image.open(io.BytesIO(encode_png8(arr))) as im:
        assert im.mode == "L" and np.array_equal(np.asarray(im), arr)


def test_display_png_rows_wrap_like_png_expects() -> None:
    # Up-filter differences wrap mod 256 per byte: a row of 0 under a row of 65535 and back.
    arr = np.array([[65535, 0, 1], [0, 65535, 256], [65535, 1, 0]], dtype=np.uint16)
    assert np.array_equal(read_png16(encode_png16(arr)), arr)


def test_display_png_of_a_tall_image_spans_several_row_blocks() -> None:
    arr = np.random.default_rng(3).integers(0, 65536, size=(3000, 100), dtype=np.uint16)  # ~1,300 rows a block
    assert np.array_equal(read_png16(encode_png16(arr)), arr)
