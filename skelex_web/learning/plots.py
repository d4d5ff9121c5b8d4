"""Learning-curve plot as inline SVG (no plotting library on the web side): cross-validated
AUROC per head against the number of labelled images, one line per head."""

from __future__ import annotations

import math
from html import escape
from typing import Any

PALETTE = ["#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176", "#90a4ae"]


def nice_step(maximum: float, most: int = 6) -> int:
    """The step of at most ``most`` + 1 whole-number axis ticks from 0 covering ``maximum``: 1, 2 or
    5 times a power of ten, so the ticks read 0 5 10 15, not 0 3 5 8 10 13."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if math.ceil(maximum / (m * step)) <= most:
                return m * step
        step *= 10


def learning_curve_svg(rounds: list[dict[str, Any]], metric: str = "auroc", width: int = 640, height: int = 320) -> str:
    """An SVG document; rounds as returned by ``loop.learning_curve``."""
    left, right, top, bottom = 56, 150, 20, 44
    pw, ph = width - left - right, height - top - bottom
    series: dict[str, list[tuple[int, float]]] = {}
    for r in rounds:
        for head, m in r["heads"].items():
            value = m.get(metric)
            if isinstance(value, int | float):
                series.setdefault(head, []).append((r["n_labelled"], float(value)))
    xs = [x for pts in series.values() for x, _ in pts] or [0, 1]
    step = nice_step(max(max(xs), 10))  # at least 0..10
    x_max = step * math.ceil(max(max(xs), 10) / step)
    # 0.4..1 usually; lower when a head is worse than chance (small early rounds can be), so that
    # every point is drawn where its value is instead of pinned to the axis.
    ys = [y for pts in series.values() for _, y in pts]
    y_min, y_max = min([0.4, *(math.floor(y * 10) / 10 for y in ys)]), 1.0
    ticks = [round(t / 10, 1) for t in range(math.ceil(y_min * 10), 11)]

    def sx(x: float) -> float:
        return left + pw * x / x_max

    def sy(y: float) -> float:
        return top + ph * (1 - (min(max(y, y_min), y_max) - y_min) / (y_max - y_min))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="Learning curve: cross-validated {metric} per head against labelled images">',
        f'<rect width="{width}" height="{height}" fill="#1b1f24"/>',
    ]
    for tick in ticks:
        y = sy(tick)
        chance = metric == "auroc" and tick == 0.5
        style = 'stroke="#5c6670" stroke-dasharray="4 3" class="chance"' if chance else 'stroke="#333a42"'
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" {style}/>')
        if chance:
            parts.append(
                f'<text x="{left + pw - 4}" y="{y - 4:.1f}" fill="#7d8790" font-size="10" '
                'text-anchor="end">chance</text>'
            )
        parts.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" fill="#9aa4ad" font-size="11" text-anchor="end">{tick:.1f}</text>'
        )
    for x_val in range(0, x_max + 1, step):
        x = sx(x_val)
        parts.append(
            f'<text x="{x:.1f}" y="{top + ph + 16}" fill="#9aa4ad" font-size="11" text-anchor="middle">'
            f"{x_val:.0f}</text>"
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 8}" fill="#c9d1d9" font-size="12" text-anchor="middle">'
        "labelled images</text>"
    )
    parts.append(
        f'<text x="14" y="{top + ph / 2}" fill="#c9d1d9" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2})">CV {escape(metric.upper())}</text>'
    )
    if not series:
        # Rounds with too few answers per class have no cross-validated metric to draw.
        empty = (
            f"{len(rounds)} round{'s' if len(rounds) != 1 else ''} so far, none with enough answers of each class "
            f"for a cross-validated {metric.upper()}."
            if rounds
            else "No training rounds yet: label images or press Retrain."
        )
        parts.append(
            f'<text x="{left + pw / 2}" y="{top + ph / 2}" fill="#9aa4ad" font-size="13" text-anchor="middle">'
            f"{escape(empty)}</text>"
        )
    for n, (head, pts) in enumerate(sorted(series.items())):
        color = PALETTE[n % len(PALETTE)]
        path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(pts))
        parts.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in pts:
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}"><title>{escape(head)}: '
                         f"{y:.3f} at {x} labels</title></circle>")  # fmt: skip
        ly = top + 14 + 18 * n
        parts.append(f'<rect x="{left + pw + 14}" y="{ly - 9}" width="12" height="3" fill="{color}"/>')
        parts.append(f'<text x="{left + pw + 32}" y="{ly - 4}" fill="#c9d1d9" font-size="12">{escape(head)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
