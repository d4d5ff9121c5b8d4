"""Boxes from error maps: found where the error is, in original pixels, never in air or borders."""

from __future__ import annotations

import numpy as np

from workers.ml.boxes import BoxParams, analyse, foreground_mask, merge_boxes, robust_z


def _radiograph(h: int = 300, w: int = 200) -> np.ndarray:
    """Dark air, a bright textured 'limb' in the middle, flat bright collimation on the right."""
    rng = np.random.default_rng(0)
    img = np.full((h, w), 0.05, np.float32) + rng.normal(0, 0.002, (h, w)).astype(np.float32)
    img[:, 50:140] = 0.6 + rng.normal(0, 0.05, (h, 90)).astype(np.float32)
    img[:, 180:] = 0.95
    return np.clip(img, 0, 1)


def test_foreground_is_the_body_not_air_collimation_or_border() -> None:
    fg = foreground_mask(_radiograph())
    assert fg[20:280, 60:130].mean() > 0.95
    assert not fg[:, :40].any() and not fg[:, 185:].any()
    assert not fg[:3].any() and not fg[-3:].any()


def test_box_found_around_the_hot_region_in_original_pixels() -> None:
    h, w = 1200, 800  # larger than the work grid: boxes are scaled back
    img = np.kron(_radiograph(), np.ones((4, 4), np.float32))
    rng = np.random.default_rng(1)
    emap = (0.01 + rng.normal(0, 0.001, (h, w))).astype(np.float32)
    emap[600:700, 300:400] += 0.05
    boxes, score, _ = analyse(emap, img)
    assert len(boxes) >= 1
    b = boxes[0]
    assert 270 <= b.x0 <= 320 and 380 <= b.x1 <= 430
    assert 570 <= b.y0 <= 620 and 680 <= b.y1 <= 730
    assert b.score > 3
    assert score > 3
    quiet, quiet_score, _ = analyse((0.01 + rng.normal(0, 0.001, (h, w))).astype(np.float32), img)
    assert quiet == [] and quiet_score < score


def test_hot_air_or_border_makes_no_box() -> None:
    img = _radiograph()
    emap = np.full(img.shape, 0.01, np.float32)
    emap[100:150, 5:35] = 1.0  # air
    emap[100:150, 185:200] = 1.0  # collimation
    boxes, _, _ = analyse(emap, img)
    assert boxes == []


def test_top_k_and_merging() -> None:
    img = _radiograph()
    emap = np.full(img.shape, 0.01, np.float32) + np.random.default_rng(2).normal(0, 0.002, img.shape).astype(
        np.float32
    )
    for i in range(7):
        emap[20 + i * 38 : 40 + i * 38, 70:90] += 0.02 + 0.002 * i
    boxes, _, _ = analyse(emap, img, BoxParams(top_k=3))
    assert len(boxes) == 3
    assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)
    merged = merge_boxes([(np.array([0, 0, 10, 10.0]), 5.0), (np.array([1, 1, 11, 11.0]), 4.0)], 0.3)
    assert len(merged) == 1 and merged[0][1] == 5.0 and list(merged[0][0]) == [0, 0, 11, 11]


def test_robust_z_ignores_outliers() -> None:
    v = np.concatenate([np.random.default_rng(0).normal(0, 1, 1000), [1000.0]])
    z = robust_z(v, np.ones_like(v, bool))
    assert abs(np.median(z)) < 0.1 and z[-1] > 500
