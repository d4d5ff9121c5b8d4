"""Preprocessing: geometry maps boxes back exactly, padding is marked, intensities are scaled."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.ml.preprocess import make_transform, prepare, to_unit


@given(
    h=st.integers(1, 5000),
    w=st.integers(1, 5000),
    size=st.sampled_from([32, 224, 384, 544]),
    mode=st.sampled_from(["pad", "stretch"]),
    frac=st.lists(st.floats(0, 1), min_size=4, max_size=4),
)
def test_boxes_map_to_the_model_grid_and_back_exactly(h: int, w: int, size: int, mode: str, frac: list[float]) -> None:
    tr = make_transform(h, w, size, mode)
    xs, ys = sorted([frac[0] * w, frac[1] * w]), sorted([frac[2] * h, frac[3] * h])
    box = np.array([xs[0], ys[0], xs[1], ys[1]])
    on_model = tr.to_model(box)
    # inside the content area, never on padding
    assert tr.offset_x - 1e-9 <= on_model[0] <= on_model[2] <= tr.offset_x + tr.content_w + 1e-9
    assert tr.offset_y - 1e-9 <= on_model[1] <= on_model[3] <= tr.offset_y + tr.content_h + 1e-9
    np.testing.assert_allclose(tr.to_original(on_model), box, rtol=1e-12, atol=1e-9)
    # the whole content square is the whole original image
    whole = [tr.offset_x, tr.offset_y, tr.offset_x + tr.content_w, tr.offset_y + tr.content_h]
    np.testing.assert_allclose(tr.to_original(np.array(whole)), [0, 0, w, h], rtol=1e-12, atol=1e-9)


def test_pad_keeps_aspect_and_centres_content() -> None:
    tr = make_transform(400, 100, 224, "pad")
    assert (tr.content_h, tr.content_w) == (224, 56)
    assert tr.offset_x == 84 and tr.offset_y == 0
    assert tr.scale_x == pytest.approx(tr.scale_y)
    valid = tr.valid_mask()
    assert valid.sum() == 224 * 56 and not valid[:, :84].any() and not valid[:, 140:].any()


def test_prepare_scales_by_window_else_min_max_and_normalises() -> None:
    img = np.tile(np.linspace(1000, 3000, 50), (100, 1)).astype(np.uint16)
    p = prepare(img, size=64)
    assert p.tensor.shape == (3, 64, 64)
    assert p.unit[p.valid].min() == pytest.approx(0.0, abs=0.02)
    assert p.unit[p.valid].max() == pytest.approx(1.0, abs=0.02)
    assert (p.unit[~p.valid] == 0).all()
    # grey replicated, ImageNet-normalised per channel: channel 0 at intensity 0 is -mean/std
    assert float(p.tensor[0, 0, 0]) == pytest.approx(-0.485 / 0.229, abs=1e-5)
    unit = to_unit(img, window=(2000.0, 1000.0))
    assert unit.min() == 0.0 and unit.max() == 1.0
    assert unit[0, 25] == pytest.approx((img[0, 25] - 1500) / 1000, abs=1e-6)
    assert (to_unit(np.full((4, 4), 7, np.uint16)) == 0).all()


def test_stretch_fills_the_square() -> None:
    p = prepare(np.random.default_rng(0).integers(0, 4096, (50, 200)).astype(np.uint16), size=32, mode="stretch")
    assert p.valid.all()
    with pytest.raises(ValueError, match="mode"):
        prepare(np.zeros((4, 4)), mode="crop")
