"""Localization metrics on per-image records, and bootstrap confidence intervals for them.

A record is one scored image: its ground-truth boxes, the predicted boxes sorted by score, the
point where the map peaks, and the image score. All coordinates of one record share one grid
(any per-axis scaling of an image leaves IoU and "point in box" unchanged).

Definitions (fractured = at least one ground-truth box):

- pointing game: share of fractured images whose map peak lies inside a ground-truth box;
- hit rate at IoU >= t, top-k: share of fractured images where one of the k best boxes overlaps a
  ground-truth box with IoU >= t;
- lesion sensitivity at 1 FP/image (FROC): all predicted boxes of all images pooled and ranked by
  score; a box is a true positive when it overlaps a ground-truth box of its image with IoU >=
  ``froc_iou``, else a false positive; sensitivity (detected lesions / all lesions) at the lowest
  score threshold whose false positives per image stay <= 1;
- AUROC of the image score, fractured vs normal (Mann-Whitney, ties count half).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

IOUS = (0.1, 0.3, 0.5)
TOPS = (1, 3)


@dataclass
class Record:
    """One scored image; boxes as (x0, y0, x1, y1), end-exclusive, on one grid per record."""

    image_id: str
    gt: list[tuple[float, float, float, float]]
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)  # best first
    box_scores: list[float] = field(default_factory=list)
    peak: tuple[float, float] | None = None  # (x, y) of the map maximum
    score: float = 0.0  # image-level abnormality score

    @property
    def fractured(self) -> bool:
        return len(self.gt) > 0


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes; 0 for disjoint or empty boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def point_in_any(point: tuple[float, float] | None, boxes: Sequence[Sequence[float]]) -> bool:
    """Whether (x, y) lies inside one of the boxes (edges inclusive)."""
    if point is None:
        return False
    x, y = point
    return any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes)


def pointing_game(records: Sequence[Record]) -> float:
    """Share of fractured records whose peak falls inside a ground-truth box (NaN if none)."""
    pos = [r for r in records if r.fractured]
    return float(np.mean([point_in_any(r.peak, r.gt) for r in pos])) if pos else float("nan")


def hit_rate(records: Sequence[Record], min_iou: float, top_k: int) -> float:
    """Share of fractured records where one of the ``top_k`` boxes has IoU >= ``min_iou`` with a GT box."""
    pos = [r for r in records if r.fractured]
    if not pos:
        return float("nan")
    hits = [any(iou(p, g) >= min_iou for p in r.boxes[:top_k] for g in r.gt) for r in pos]
    return float(np.mean(hits))


def froc_sensitivity(records: Sequence[Record], fp_per_image: float = 1.0, min_iou: float = 0.3) -> float:
    """Lesion sensitivity at ``fp_per_image`` false positives per image (see the module docstring)."""
    n_lesions = sum(len(r.gt) for r in records)
    if n_lesions == 0 or not records:
        return float("nan")
    items = []  # (score, image index, matched lesion index or -1)
    for i, r in enumerate(records):
        for box, s in zip(r.boxes, r.box_scores, strict=True):
            overlaps = [iou(box, g) for g in r.gt]
            best = int(np.argmax(overlaps)) if overlaps else -1
            items.append((s, i, best if best >= 0 and overlaps[best] >= min_iou else -1))
    items.sort(key=lambda t: -t[0])
    allowed = fp_per_image * len(records)
    found: set[tuple[int, int]] = set()
    fps, best_sens, k = 0, 0.0, 0
    while k < len(items):
        # Take every box tied at this score together: a threshold cannot split ties.
        j = k
        while j < len(items) and items[j][0] == items[k][0]:
            _, i, lesion = items[j]
            if lesion < 0:
                fps += 1
            else:
                found.add((i, lesion))
            j += 1
        if fps > allowed:
            break
        best_sens = len(found) / n_lesions
        k = j
    return best_sens


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve (probability a positive outscores a negative; ties count half)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def all_metrics(records: Sequence[Record], froc_iou: float = 0.3) -> dict[str, float]:
    """Every metric of the report for one set of records (keys as in the report JSON)."""
    out = {"pointing_game": pointing_game(records)}
    for t in IOUS:
        for k in TOPS:
            out[f"hit_rate_iou{round(t * 100):02d}_top{k}"] = hit_rate(records, t, k)
    out["sensitivity_at_1fp"] = froc_sensitivity(records, 1.0, froc_iou)
    out["sensitivity_at_1fp_iou10"] = froc_sensitivity(records, 1.0, 0.1)
    out["auroc"] = auroc([r.score for r in records], [r.fractured for r in records])
    return out


def bootstrap_ci(
    records: Sequence[Record],
    metric_fn: Callable[[Sequence[Record]], dict[str, float]] = all_metrics,
    n_boot: int = 500,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """Percentile bootstrap over images: {metric: [low, high]} (NaN-safe; images resampled with replacement)."""
    rng = np.random.default_rng(seed)
    n = len(records)
    samples: dict[str, list[float]] = {}
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        for key, value in metric_fn([records[i] for i in idx]).items():
            samples.setdefault(key, []).append(value)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    ci = {}
    for key, values in samples.items():
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        ci[key] = [round(float(np.percentile(v, lo)), 4), round(float(np.percentile(v, hi)), 4)] if len(v) else []
    return ci
