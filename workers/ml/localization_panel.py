"""A PNG panel of the harness's best and worst fractured cases: image, error map, boxes, peak.

Cases are ranked by the best IoU between a top-3 box and a ground-truth box (then by whether the
map's peak fell inside a ground-truth box). Green: ground truth; red: the top-3 suggested boxes,
thicker for the best; white cross: the map's peak.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .localization_metrics import Record, iou, point_in_any


def case_quality(rec: Record) -> tuple[float, bool]:
    """(best top-3 IoU with a GT box, peak inside a GT box): larger is better."""
    best = max((iou(p, g) for p in rec.boxes[:3] for g in rec.gt), default=0.0)
    return best, point_in_any(rec.peak, rec.gt)


def write_panel(path: str | Path, reduced: Sequence, records: Sequence[Record], n: int = 4, title: str = "") -> Path:
    """Best ``n`` and worst ``n`` fractured cases as two rows of overlays; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    idx = [i for i, r in enumerate(records) if r.fractured]
    idx.sort(key=lambda i: case_quality(records[i]), reverse=True)
    rows = [("best", idx[:n]), ("worst", idx[::-1][:n])]
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 7.0), dpi=90, squeeze=False)
    for row, (name, chosen) in enumerate(rows):
        for col in range(n):
            ax = axes[row][col]
            ax.axis("off")
            if col >= len(chosen):
                continue
            rec, red = records[chosen[col]], reduced[chosen[col]]
            ax.imshow(red.unit, cmap="gray", vmin=0, vmax=1)
            emap = red.emap
            lo, hi = np.percentile(emap, [50, 99.5])
            ax.imshow(np.clip((emap - lo) / max(hi - lo, 1e-9), 0, 1), cmap="inferno", alpha=0.45)
            for g in rec.gt:
                ax.add_patch(Rectangle((g[0], g[1]), g[2] - g[0], g[3] - g[1], fill=False, ec="lime", lw=1.5))
            for k, b in enumerate(rec.boxes[:3]):
                ax.add_patch(
                    Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, ec="red", lw=2.0 if k == 0 else 0.8)
                )
            if rec.peak is not None:
                ax.plot([rec.peak[0]], [rec.peak[1]], marker="x", color="white", ms=8, mew=2)
            q, hit = case_quality(rec)
            ax.set_title(f"{name}: {rec.image_id}\nIoU {q:.2f}, peak {'in' if hit else 'out'}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
