"""Error maps: shapes, determinism, equal coverage in complementary mode, padding excluded, tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.workers.ml.engine_fixtures import tiny_model
from workers.ml.errormap import ErrorMapParams, accumulate_errors, compute_errormap, mask_noise, tiles_for
from workers.ml.preprocess import prepare


def _image(h: int = 60, w: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    body = 2000 + 1500 * np.exp(-((xx - w / 2) ** 2) / (w * w / 8)) + rng.normal(0, 50, (h, w))
    return np.clip(body, 0, 65535).astype(np.uint16)


def _removed(noise: torch.Tensor, ratio: float = 0.75) -> torch.Tensor:
    keep = int(noise.shape[1] * (1 - ratio))
    ranks = noise.argsort(dim=1).argsort(dim=1)
    return (ranks >= keep).int()


def test_complementary_masks_remove_every_patch_equally() -> None:
    gen = torch.Generator().manual_seed(3)
    noise = mask_noise("complementary", 8, 196, 0.75, gen)
    removed = _removed(noise)
    assert (removed.sum(dim=1) == 147).all()  # each pass removes 75%
    assert (removed.sum(dim=0) == 6).all()  # two rounds of 4: every patch removed 3 + 3 times
    reference = _removed(mask_noise("reference", 8, 196, 0.75, gen))
    assert reference.sum(dim=0).min() < reference.sum(dim=0).max()  # random masks are unequal


def test_map_shapes_no_nan_and_padding_excluded() -> None:
    model = tiny_model()
    img = _image(60, 24)  # tall: left and right of the square are padding
    res = compute_errormap(model, img, params=ErrorMapParams(tiles=1))
    assert res.pixel_map.shape == (60, 24) and res.pixel_map.dtype == np.float32
    assert res.work_map.shape == (32, 32) and res.patch_map.shape == (4, 4)
    assert np.isfinite(res.pixel_map).all() and (res.pixel_map >= 0).all()
    assert (res.work_map[~res.valid] == 0).all() and (res.work_map[res.valid] > 0).all()
    # columns 0-7 and 24-31 of the 32 square are pure padding (content 13 px wide, centred at 9..22)
    assert np.isnan(res.patch_map[:, 0]).all() and np.isnan(res.patch_map[:, 3]).all()
    assert np.isfinite(res.patch_map[:, 1:3]).all()


def test_padding_error_never_counts() -> None:
    model = tiny_model()
    prep = prepare(_image(60, 24), size=32)
    imgs = prep.tensor[None]
    noise = mask_noise("complementary", 4, 16, 0.75, torch.Generator().manual_seed(0))[None]
    err, count = accumulate_errors(model, imgs, noise, 0.75)
    assert (count == 3).all()
    # the map keeps only content pixels: it is the same whatever error padding pixels get
    res = compute_errormap(model, _image(60, 24), params=ErrorMapParams(tiles=1, passes=4))
    expected = (err[0] / count[0]).numpy()
    np.testing.assert_allclose(res.work_map[prep.valid], expected[prep.valid], rtol=1e-5)


@pytest.mark.parametrize("mode", ["complementary", "reference"])
def test_same_seed_same_map_other_seed_other_map(mode: str) -> None:
    model = tiny_model()
    img = _image()
    a = compute_errormap(model, img, params=ErrorMapParams(mode=mode, seed=1, tiles=1))
    b = compute_errormap(model, img, params=ErrorMapParams(mode=mode, seed=1, tiles=1))
    c = compute_errormap(model, img, params=ErrorMapParams(mode=mode, seed=2, tiles=1))
    np.testing.assert_array_equal(a.pixel_map, b.pixel_map)
    assert not np.allclose(a.pixel_map, c.pixel_map)


def test_an_image_gets_the_same_map_alone_or_in_a_batch() -> None:
    from workers.ml.errormap import compute_errormaps

    model = tiny_model()
    a, b = _image(seed=1), _image(50, 70, seed=2)
    alone = compute_errormap(model, a, params=ErrorMapParams(tiles=1))
    together = compute_errormaps(model, [b, a], params=ErrorMapParams(tiles=1))
    np.testing.assert_allclose(together[1].pixel_map, alone.pixel_map, rtol=1e-4, atol=1e-6)
    assert together[0].pixel_map.shape == (50, 70)


def test_tiles_cover_the_image_at_higher_resolution() -> None:
    model = tiny_model()
    img = _image(90, 70)
    one = compute_errormap(model, img, params=ErrorMapParams(tiles=1))
    three = compute_errormap(model, img, params=ErrorMapParams(tiles=3))
    assert three.tiles == 3 and three.work_map.shape == (32 + 2 * 24, 32 + 2 * 24)
    assert three.patch_map.shape == (10, 10)
    assert three.pixel_map.shape == one.pixel_map.shape == (90, 70)
    assert np.isfinite(three.pixel_map).all() and (three.work_map[three.valid] > 0).all()
    assert tiles_for(500, 400, "auto") == 1 and tiles_for(1000, 800, "auto") == 2 and tiles_for(3000, 2000, "auto") == 3
    with pytest.raises(ValueError):
        tiles_for(10, 10, 4)


def test_norm_pix_models_are_unnormalised_before_measuring() -> None:
    model = tiny_model(norm_pix_loss=True)
    res = compute_errormap(model, _image(), params=ErrorMapParams(tiles=1))
    assert np.isfinite(res.pixel_map).all()
    # errors are measured in [0, 1] intensity space: bounded by a few units even at random init
    assert float(res.pixel_map.max()) < 50
