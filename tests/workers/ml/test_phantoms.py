"""Phantoms: deterministic, and every box sits on the finding it reports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from workers.ml.localization import read_yolo
from workers.ml.phantoms import FINDINGS, make_phantom, write_phantoms

SIZE = (160, 120)


def test_same_seed_same_pixels_other_seed_other_pixels():
    a, boxes_a = make_phantom(3, SIZE, ("lytic", "fracture"))
    b, boxes_b = make_phantom(3, SIZE, ("lytic", "fracture"))
    c, _ = make_phantom(4, SIZE, ("lytic", "fracture"))
    assert a.dtype == np.uint16 and a.shape == SIZE
    assert np.array_equal(a, b) and boxes_a == boxes_b
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("finding", FINDINGS)
@pytest.mark.parametrize("seed", [0, 1])
def test_box_holds_the_planted_change(finding, seed):
    with_finding, boxes = make_phantom(seed, SIZE, (finding,))
    normal, none = make_phantom(seed, SIZE, ())
    assert none == [] and len(boxes) == 1 and boxes[0]["label"] == finding
    diff = np.abs(with_finding.astype(np.float64) - normal)
    x0, y0, x1, y1 = boxes[0]["box"]
    inside = diff[y0:y1, x0:x1].sum()
    assert inside / diff.sum() > 0.95  # the change is in the box ...
    area = (x1 - x0) * (y1 - y0)
    assert area < 0.1 * SIZE[0] * SIZE[1]  # ... and the box is not the whole image
    # tight: the change reaches the box's border rows and columns
    changed = diff > 0.02 * diff.max()
    assert changed[y0:y1, x0 : x0 + 3].any() and changed[y0:y1, x1 - 3 : x1].any()
    assert changed[y0 : y0 + 3, x0:x1].any() and changed[y1 - 3 : y1, x0:x1].any()


def test_lytic_is_darker_and_sclerotic_brighter_than_the_normal_twin():
    for finding, sign in (("lytic", -1), ("sclerotic", 1)):
        img, boxes = make_phantom(5, SIZE, (finding,))
        normal, _ = make_phantom(5, SIZE, ())
        x0, y0, x1, y1 = boxes[0]["box"]
        delta = img[y0:y1, x0:x1].astype(np.float64).mean() - normal[y0:y1, x0:x1].astype(np.float64).mean()
        assert sign * delta > 0


def test_unknown_finding_is_refused():
    with pytest.raises(ValueError, match="unknown findings"):
        make_phantom(0, SIZE, ("tumour",))


def test_write_phantoms_fracatlas_layout(tmp_path):
    records = write_phantoms(tmp_path, 6, seed=2, size=SIZE, normal_share=0.5)
    listed = json.loads((tmp_path / "boxes.json").read_text())
    assert listed == records and len(records) == 6
    for rec in records:
        png = Image.open(tmp_path / rec["file"])
        arr = np.asarray(png)
        assert arr.shape == SIZE and arr.max() > 255  # really 16-bit
        stem = rec["file"].rsplit("/", 1)[1][:-4]
        yolo = read_yolo(tmp_path / "Annotations" / "YOLO" / f"{stem}.txt")
        assert len(yolo) == len(rec["boxes"])
        for (nx0, ny0, nx1, ny1), b in zip(yolo, rec["boxes"]):
            assert np.allclose([nx0 * SIZE[1], ny0 * SIZE[0], nx1 * SIZE[1], ny1 * SIZE[0]], b["box"], atol=0.01)
        assert ("Normal" in rec["file"]) == (rec["boxes"] == [])
