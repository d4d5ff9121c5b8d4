"""Suggested boxes and an image score from an error map.

Steps (each parameter in :class:`BoxParams`, with its reason):

1. Work on a reduced grid (long side ``work_side``): the map's own detail is one patch (1/14 of
   the model square per tile), so finer grids only cost time.
2. Foreground (body) mask from the image intensities: above a two-level Otsu threshold (air
   is dark, soft tissue grey, bone bright), with some local texture (collimation shutters and burnt-out
   areas are flat), holes filled, small specks dropped, and a 5 % border margin removed (edges,
   labels and collimator blades give spurious error).
3. Smooth the map (Gaussian) so one noisy patch does not form a box alone.
4. Robust z-score over the foreground: ``(map - median) / (1.4826 * MAD)``: the error scale
   depends on the model and the image; z makes thresholds comparable, and median/MAD ignore
   the very outliers we want to find.
5. Hysteresis threshold: regions above ``z_low`` that contain a pixel above ``z_high``; each
   box spans the region's part above half its peak z.
6. Connected components -> boxes scored by their peak z; drop tiny ones; merge boxes that
   overlap strongly (NMS-style, keeping the union); keep the top ``top_k``.
7. Map back to original pixels by the exact per-axis factor of the reduced grid.

Image score: the ``score_quantile`` quantile of the foreground z-score: high when some part of
the body is much worse reconstructed than the rest, robust to a single hot pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .preprocess import resize


@dataclass(frozen=True)
class BoxParams:
    """Box-finding settings.

    Attributes:
        work_side: long side of the analysis grid in pixels; 256 is about 18 px per 224-patch
            grid cell, more than the map resolves.
        border_frac: margin of the image, as a share of each side, never foreground; 5% clears
            edge artefacts, burnt-in labels and bright bands along the border (seen on FracAtlas),
            while the anatomy of interest is centred.
        texture_min: minimum local std of [0, 1] intensity (7x7 window) for foreground; 0.01 is
            well below soft-tissue texture and above flat shutter/air areas.
        opening_px: binary-opening iterations on the analysis grid (3: drops bright strips, edges
            and markers under ~6 px, 2.5 % of the side; limbs are far wider).
        min_region_frac: foreground specks smaller than this share of the image are dropped (0.5%).
        smooth_sigma_frac: Gaussian sigma as a share of the long side (1% ~ a quarter patch).
        z_high: a region needs a pixel this many robust SDs above the foreground median (4.0: a
            pure-noise map on the 256 grid peaks near 3.5 after smoothing, so 3 finds noise).
        z_low: and extends while above this (2.0): hysteresis keeps whole lesions, not just peaks.
        extent_frac: a box spans the region's pixels above this share of its peak z (0.5, the
            half-maximum width, as for spots in imaging), and never below z_low.
        min_box_frac: boxes narrower or lower than this share of the long side are dropped (1.5%).
        merge_iou: boxes overlapping by more than this IoU, or one mostly inside another
            (intersection over the smaller > 0.7), merge into their union (0.3).
        top_k: boxes kept per image; a reviewer reads a handful, not dozens (5).
        score_quantile: quantile of the foreground z for the image score (0.99).
    """

    work_side: int = 256
    border_frac: float = 0.05
    texture_min: float = 0.01
    opening_px: int = 3
    min_region_frac: float = 0.005
    smooth_sigma_frac: float = 0.01
    z_high: float = 4.0
    z_low: float = 2.0
    extent_frac: float = 0.5
    min_box_frac: float = 0.015
    merge_iou: float = 0.3
    top_k: int = 5
    score_quantile: float = 0.99


@dataclass(frozen=True)
class Box:
    """A box in original pixel coordinates (pixel edges: x1, y1 exclusive) with its peak z."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    def as_dict(self) -> dict[str, float]:
        return {
            "x0": round(self.x0, 2),
            "y0": round(self.y0, 2),
            "x1": round(self.x1, 2),
            "y1": round(self.y1, 2),
            "score": round(self.score, 4),
        }


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centers[int(np.argmax(between))])


def foreground_mask(unit: np.ndarray, params: BoxParams | None = None) -> np.ndarray:
    """[h, w] intensities in [0, 1] -> bool body mask (see the module docstring, step 2)."""
    p = params or BoxParams()
    h, w = unit.shape
    # Two-level Otsu: the first split is often bone vs (soft tissue + air); splitting the lower
    # class again separates air from soft tissue, so the body mask keeps the soft tissue.
    t1 = _otsu(unit)
    lower = unit[unit <= t1]
    t = _otsu(lower / max(t1, 1e-6)) * t1 if lower.size > 100 else t1
    fg = unit > t
    mean = ndimage.uniform_filter(unit, 7)
    sq = ndimage.uniform_filter(unit * unit, 7)
    fg &= np.sqrt(np.maximum(sq - mean * mean, 0.0)) >= p.texture_min
    # Opening removes structures thinner than ~2 * opening_px: collimator edges, strips, lines, text.
    fg = ndimage.binary_opening(fg, iterations=p.opening_px)
    fg = ndimage.binary_fill_holes(fg)
    by, bx = max(1, round(h * p.border_frac)), max(1, round(w * p.border_frac))
    fg[:by], fg[-by:], fg[:, :bx], fg[:, -bx:] = False, False, False, False
    labels, n = ndimage.label(fg)
    if n:
        sizes = ndimage.sum_labels(fg, labels, index=np.arange(1, n + 1))
        keep = np.flatnonzero(sizes >= p.min_region_frac * h * w) + 1
        fg = np.isin(labels, keep)
    if fg.sum() < 0.05 * h * w:
        # Nothing body-like found (e.g. a flat phantom): use everything inside the border.
        fg = np.zeros_like(fg)
        fg[by:-by, bx:-bx] = True
    return fg


def robust_z(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(values - median) / (1.4826 * MAD) with median and MAD over ``mask``; 0 where the MAD is 0."""
    ref = values[mask] if mask.any() else values.ravel()
    med = float(np.median(ref))
    mad = 1.4826 * float(np.median(np.abs(ref - med)))
    if mad <= 1e-12:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - med) / mad).astype(np.float32)


def _iou_and_cover(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0, inter / max(min(area_a, area_b), 1e-9)


def merge_boxes(boxes: list[tuple[np.ndarray, float]], iou: float) -> list[tuple[np.ndarray, float]]:
    """Greedy by score: a box overlapping a kept one (IoU > iou or mostly inside) grows it instead."""
    kept: list[tuple[np.ndarray, float]] = []
    for box, score in sorted(boxes, key=lambda bs: -bs[1]):
        for j, (k_box, k_score) in enumerate(kept):
            over, cover = _iou_and_cover(box, k_box)
            if over > iou or cover > 0.7:
                union = np.array(
                    [min(box[0], k_box[0]), min(box[1], k_box[1]), max(box[2], k_box[2]), max(box[3], k_box[3])]
                )
                kept[j] = (union, max(score, k_score))
                break
        else:
            kept.append((box.astype(np.float64), score))
    return kept


def analyse(
    pixel_map: np.ndarray, unit: np.ndarray, params: BoxParams | None = None
) -> tuple[list[Box], float, np.ndarray]:
    """Boxes (original pixels), image score and the foreground mask (on the reduced grid).

    Args:
        pixel_map: [H, W] error map on the original grid.
        unit: [H, W] original image in [0, 1] (for the foreground mask).
    """
    p = params or BoxParams()
    h, w = pixel_map.shape
    scale = min(1.0, p.work_side / max(h, w))
    wh, ww = max(8, round(h * scale)), max(8, round(w * scale))
    emap = resize(pixel_map, wh, ww)
    img = resize(unit, wh, ww)
    fg = foreground_mask(img, p)
    emap = ndimage.gaussian_filter(emap, sigma=max(0.5, p.smooth_sigma_frac * max(wh, ww)))
    z = robust_z(emap, fg)
    z = np.where(fg, z, 0.0)
    score = float(np.quantile(z[fg], p.score_quantile)) if fg.any() else 0.0

    low = z > p.z_low
    labels, n = ndimage.label(low)
    found: list[tuple[np.ndarray, float]] = []
    min_side = p.min_box_frac * max(wh, ww)
    for idx, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        region = labels[sl] == idx
        zr = z[sl]
        peak = float(zr[region].max())
        if peak < p.z_high:
            continue
        # The box spans the part of the region above half its peak (at least z_low): strong
        # findings otherwise grow by their smoothing tails, weak ones keep the whole region.
        core = region & (zr >= max(p.z_low, p.extent_frac * peak))
        rows, cols = np.flatnonzero(core.any(axis=1)), np.flatnonzero(core.any(axis=0))
        y0, y1 = sl[0].start + rows[0], sl[0].start + rows[-1] + 1
        x0, x1 = sl[1].start + cols[0], sl[1].start + cols[-1] + 1
        if (x1 - x0) < min_side or (y1 - y0) < min_side:
            continue
        found.append((np.array([x0, y0, x1, y1], dtype=np.float64), peak))
    merged = merge_boxes(found, p.merge_iou)[: p.top_k]
    fx, fy = w / ww, h / wh  # exact: the reduced grid spans the whole original image
    boxes = [
        Box(float(b[0] * fx), float(b[1] * fy), float(min(b[2] * fx, w)), float(min(b[3] * fy, h)), s)
        for b, s in merged
    ]
    return boxes, score, fg
