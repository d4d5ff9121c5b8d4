"""Harness metrics on hand-made records give the values worked out by hand."""

from __future__ import annotations

import math

import pytest

from workers.ml.localization_metrics import (
    Record,
    all_metrics,
    auroc,
    bootstrap_ci,
    froc_sensitivity,
    hit_rate,
    iou,
    pointing_game,
)

GT = (10.0, 10.0, 30.0, 30.0)


def test_iou_known_values():
    assert iou(GT, GT) == 1.0
    assert iou(GT, (30, 30, 40, 40)) == 0.0
    assert iou((0, 0, 2, 1), (1, 0, 3, 1)) == pytest.approx(1 / 3)


def test_pointing_game_peak_inside_and_outside():
    inside = Record("a", [GT], peak=(20.0, 20.0))
    outside = Record("b", [GT], peak=(50.0, 50.0))
    normal = Record("n", [], peak=(20.0, 20.0))  # normals do not count
    assert pointing_game([inside, normal]) == 1.0
    assert pointing_game([outside, normal]) == 0.0
    assert pointing_game([inside, outside]) == 0.5
    assert math.isnan(pointing_game([normal]))


def test_hit_rate_top_k_and_iou_threshold():
    half = (10.0, 10.0, 30.0, 20.0)  # IoU 0.5 with GT
    far = (60.0, 60.0, 70.0, 70.0)
    rec = Record("a", [GT], boxes=[far, half], box_scores=[2.0, 1.0])
    assert hit_rate([rec], 0.3, 1) == 0.0  # the best box misses
    assert hit_rate([rec], 0.3, 3) == 1.0  # the second one hits
    assert hit_rate([rec], 0.5, 3) == 1.0
    assert hit_rate([Record("b", [GT], boxes=[(10, 10, 30, 14)], box_scores=[1])], 0.3, 3) == 0.0  # IoU 0.2


def test_froc_sensitivity_counts_false_positives_per_image():
    # Two images, two lesions. Ranked boxes: FP (5), TP lesion A (4), FP (3), FP (2), TP lesion B (1).
    a = Record("a", [GT], boxes=[(60, 60, 70, 70), GT], box_scores=[5.0, 4.0])
    b = Record("b", [GT], boxes=[(60, 60, 70, 70), (0, 50, 5, 55), GT], box_scores=[3.0, 2.0, 1.0])
    # 1 FP/image allows 2 FPs: threshold 3 -> lesion A only.
    assert froc_sensitivity([a, b], 1.0) == 0.5
    # 2 FPs/image allow all: both lesions.
    assert froc_sensitivity([a, b], 2.0) == 1.0
    # Normal images add to the FP budget denominator but have no lesions.
    assert froc_sensitivity([a, b, Record("n", [])], 1.0) == 1.0


def test_auroc_separation_reversal_and_ties():
    labels = [True, True, False, False]
    assert auroc([0.9, 0.8, 0.2, 0.1], labels) == 1.0
    assert auroc([0.1, 0.2, 0.8, 0.9], labels) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], labels) == 0.5
    assert auroc([0.9, 0.3, 0.5, 0.1], labels) == 0.75


def test_bootstrap_interval_brackets_the_estimate():
    recs = [Record(str(i), [GT], peak=(20, 20) if i % 4 else (50, 50), score=1.0) for i in range(40)]
    recs += [Record(f"n{i}", [], score=float(i % 2)) for i in range(20)]
    point = all_metrics(recs)
    ci = bootstrap_ci(recs, n_boot=200, seed=1)
    lo, hi = ci["pointing_game"]
    assert lo <= point["pointing_game"] <= hi and hi - lo > 0
    assert point["pointing_game"] == 0.75
