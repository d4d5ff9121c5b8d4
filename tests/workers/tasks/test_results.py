"""Heat-map files: the PNG written without Pillow decodes (with Pillow) to exactly the quantised map."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from workers.imaging.output import encode_png8
from workers.tasks.results import heatmap_png


def decode(data: bytes) -> np.ndarray:
    with PILImage.open(io.BytesIO(data)) as im:
        assert im.mode == "L" and im.format == "PNG"
        return np.asarray(im)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (9, 1), (37, 53), (512, 384)])
def test_png_round_trips_every_byte(shape: tuple[int, int]) -> None:
    pixels = np.random.default_rng(sum(shape)).integers(0, 256, size=shape, dtype=np.uint8)
    pixels[0, 0], pixels[-1, -1] = 255, 0  # the wrap-around of the Up filter (0 - 255) is exercised

    assert np.array_equal(decode(encode_png8(pixels)), pixels)


def test_heatmap_is_linear_with_255_at_the_995th_percentile_and_ignores_non_finite_values() -> None:
    rng = np.random.default_rng(0)
    error_map = rng.random((300, 200), dtype=np.float32) * 0.02
    error_map[100:110, 50:70] += 0.3  # a bright lesion, 0.3% of the map: above the percentile, saturates
    error_map[0, 0], error_map[0, 1], error_map[0, 2] = np.nan, np.inf, -np.inf

    png, scale = heatmap_png(error_map)

    heat = decode(png)
    assert heat.shape == error_map.shape and heat.dtype == np.uint8
    finite = np.nan_to_num(error_map, nan=0.0, posinf=0.0, neginf=0.0)
    assert scale == pytest.approx(float(np.percentile(finite, 99.5)))
    expected = np.clip(np.rint(finite / scale * 255.0), 0, 255)
    assert np.abs(heat.astype(int) - expected).max() <= 1  # float32 rounding at .5 only
    assert (heat[100:110, 50:70] == 255).all() and heat[0, 0] == heat[0, 1] == heat[0, 2] == 0


def test_an_all_zero_map_is_black_with_scale_one() -> None:
    png, scale = heatmap_png(np.zeros((16, 24), dtype=np.float32))
    assert scale == 1.0 and not decode(png).any()
