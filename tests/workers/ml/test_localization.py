"""The harness end to end on phantoms: crafted maps that point at the findings score high, maps that
point elsewhere score at chance, and the centre baseline and calibration split behave as documented."""

from __future__ import annotations

import numpy as np
import pytest

from workers.ml.datacache import decode_gray
from workers.ml.localization import evaluate, load_samples, select_and_split
from workers.ml.localization_panel import write_panel
from workers.ml.phantoms import write_phantoms

SIZE = (160, 120)


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantoms")
    records = write_phantoms(root, 20, seed=3, size=SIZE, normal_share=0.35)
    truth = {}
    for rec in records:
        key = decode_gray(root / rec["file"]).tobytes()
        truth[key] = [b["box"] for b in rec["boxes"]]
    return root, truth


def blob_provider(truth, misplace: bool = False, seed: int = 0):
    """A map with a bright blob on each planted finding (or, with ``misplace``, in a random spot)."""
    rng = np.random.default_rng(seed)

    def provide(images):
        maps = []
        for img in images:
            h, w = img.shape
            emap = rng.random((h, w)).astype(np.float32) * 0.1
            yy, xx = np.mgrid[0:h, 0:w]
            for x0, y0, x1, y1 in truth[img.tobytes()]:
                cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                if misplace:
                    cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
                sx, sy = max(2.0, (x1 - x0) / 3), max(2.0, (y1 - y0) / 3)
                emap += np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2) / 2).astype(np.float32)
            maps.append(emap)
        return maps

    return provide


def test_split_is_stratified_disjoint_and_seeded(phantom_dir):
    root, _ = phantom_dir
    samples = load_samples(root)
    calib, scored = select_and_split(samples, None, None, 0.3, seed=1)
    assert {s.image_id for s in calib}.isdisjoint({s.image_id for s in scored})
    assert len(calib) + len(scored) == len(samples) == 20
    assert any(s.fractured for s in calib) and any(not s.fractured for s in calib)
    again, _ = select_and_split(samples, None, None, 0.3, seed=1)
    assert [s.image_id for s in again] == [s.image_id for s in calib]
    limited, rest = select_and_split(samples, 4, 2, 0.5, seed=1)
    assert sum(s.fractured for s in limited + rest) == 4 and sum(not s.fractured for s in limited + rest) == 2


def test_maps_on_the_findings_beat_chance_and_misplaced_maps_do_not(phantom_dir, tmp_path):
    root, truth = phantom_dir
    report, details = evaluate(
        root,
        {"model": blob_provider(truth), "misplaced": blob_provider(truth, misplace=True)},
        n_boot=30,
        progress=False,
        log=lambda _: None,
    )
    good, bad, centre = report["model"], report["baselines"]["misplaced"], report["baselines"]["center"]
    assert report["n_images"] + report["n_calibration"] == 20 and 5 <= report["n_calibration"] <= 7
    assert good["pointing_game"] >= 0.9
    assert good["hit_rate_iou10_top3"] >= 0.8
    assert good["sensitivity_at_1fp_iou10"] >= 0.6
    assert bad["pointing_game"] <= 0.4 and bad["hit_rate_iou10_top3"] < good["hit_rate_iou10_top3"]
    assert centre["auroc"] == 0.5  # a constant score cannot rank
    lo, hi = good["ci"]["pointing_game"]
    assert lo <= good["pointing_game"] <= hi
    assert set(good["tuned_on_calibration"]) >= {"z_high", "z_low"}
    _, reduced, records = details["model"]
    png = write_panel(tmp_path / "panel.png", reduced, records, n=2)
    assert png.stat().st_size > 10_000
