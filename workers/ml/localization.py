"""Zero-shot localization harness: do error maps point at fractures? Model against two baselines.

Data: a folder in the FracAtlas layout: ``images/**`` and ``Annotations/YOLO/<stem>.txt`` (one
``cls cx cy w h`` line per box, normalised to the EXIF-rotated image; an empty file = normal).

Procedure:

1. Select images (``limit_fractured`` / ``limit_normal``, seeded) and split them, stratified and
   seeded, into a calibration part and a scored part. Everything tuned (the box threshold
   ``z_high`` from a grid, the centre box size) is chosen on the calibration part only; all
   reported numbers come from the scored part.
2. Map providers turn images into error maps: the model, the same architecture with random
   weights, or anything with the same signature (tests use crafted maps). Each map is reduced to
   the analysis grid of ``boxes.py`` together with the image, once.
3. ``boxes.analyse`` gives boxes and the image score; the peak of the smoothed map inside the
   body mask gives the pointing-game point. The centre baseline needs no map.
4. Metrics and bootstrap CIs from ``localization_metrics``; a PNG panel of best and worst cases.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from . import boxes as boxes_mod
from .datacache import decode_gray, list_images
from .localization_metrics import Record, all_metrics, bootstrap_ci
from .preprocess import resize, to_unit

# images [H, W] (original pixels) -> error maps [H, W] on the same grids
MapProvider = Callable[[list[np.ndarray]], list[np.ndarray]]
Z_GRID = (2.5, 3.0, 3.5, 4.0, 5.0, 6.0)


@dataclass
class Sample:
    """One image of the data set: where it is and its ground-truth boxes, normalised (x0, y0, x1, y1)."""

    image_id: str
    path: Path
    gt_norm: list[tuple[float, float, float, float]]

    @property
    def fractured(self) -> bool:
        return bool(self.gt_norm)


@dataclass
class Reduced:
    """An image and its map on the analysis grid (long side ``BoxParams.work_side``)."""

    unit: np.ndarray  # [h, w] intensities in [0, 1]
    emap: np.ndarray  # [h, w] error map
    orig_shape: tuple[int, int]


def read_yolo(path: Path) -> list[tuple[float, float, float, float]]:
    """YOLO ``cls cx cy w h`` lines -> normalised (x0, y0, x1, y1); a missing or empty file -> []."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        cx, cy, w, h = map(float, parts[1:5])
        out.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return out


def load_samples(data: str | Path, log: Callable[[str], None] | None = None) -> list[Sample]:
    """Every decodable-looking image with an annotation file; images without one are skipped with a message."""
    say = log or (lambda msg: print(msg, file=sys.stderr))
    root = Path(data)
    ann = root / "Annotations" / "YOLO"
    samples, missing = [], 0
    for path in list_images(root / "images"):
        if "corrupt" in path.parts:
            say(f"skipping {path}: in images/corrupt (truncated files shipped as bad input)")
            continue
        label = ann / f"{path.stem}.txt"
        if not label.exists():
            missing += 1
            continue
        samples.append(Sample(path.stem, path, read_yolo(label)))
    if missing:
        say(f"skipping {missing} images without an annotation file in {ann}")
    return samples


def select_and_split(
    samples: Sequence[Sample],
    limit_fractured: int | None,
    limit_normal: int | None,
    calib_share: float,
    seed: int,
) -> tuple[list[Sample], list[Sample]]:
    """Seeded stratified subsample, then a stratified (calibration, scored) split."""
    rng = np.random.default_rng(seed)
    calib, scored = [], []
    for group, limit in (
        ([s for s in samples if s.fractured], limit_fractured),
        ([s for s in samples if not s.fractured], limit_normal),
    ):
        order = rng.permutation(len(group))
        if limit is not None:
            order = order[:limit]
        chosen = [group[i] for i in order]
        n_cal = int(round(len(chosen) * calib_share))
        calib += chosen[:n_cal]
        scored += chosen[n_cal:]
    return calib, scored


def reduce_pair(unit: np.ndarray, emap: np.ndarray, params: boxes_mod.BoxParams) -> Reduced:
    """Both to the analysis grid of ``boxes.analyse`` (which is then the identity resize)."""
    h, w = unit.shape
    scale = min(1.0, params.work_side / max(h, w))
    wh, ww = max(8, round(h * scale)), max(8, round(w * scale))
    return Reduced(resize(unit, wh, ww), resize(emap, wh, ww), (h, w))


def compute_reduced(
    samples: Sequence[Sample],
    provider: MapProvider,
    params: boxes_mod.BoxParams,
    chunk: int = 8,
    progress: bool = True,
    cache: Path | None = None,
) -> list[Reduced]:
    """Decodes the images, runs the provider in chunks and keeps only analysis-grid copies.

    With ``cache`` (a folder named for the provider and its settings), reduced maps are stored as
    ``<image id>.npz`` and reused: box settings can then be varied without recomputing maps.
    """
    out: dict[int, Reduced] = {}
    todo = list(range(len(samples)))
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(samples):
            f = cache / f"{s.image_id}.npz"
            if f.exists():
                with np.load(f) as z:
                    out[i] = Reduced(z["unit"].astype(np.float32), z["emap"].astype(np.float32), tuple(z["shape"]))
        todo = [i for i in todo if i not in out]
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="error maps", mininterval=5.0, file=sys.stderr)
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        images = [decode_gray(samples[i].path) for i in part]
        maps = provider(images)
        for i, img, emap in zip(part, images, maps, strict=True):
            red = reduce_pair(to_unit(img), np.asarray(emap, np.float32), params)
            out[i] = red
            if cache is not None:
                np.savez(cache / f"{samples[i].image_id}.npz", unit=red.unit, emap=red.emap, shape=red.orig_shape)
        if bar is not None:
            bar.update(len(part))
    if bar is not None:
        bar.close()
    return [out[i] for i in range(len(samples))]


def peak_point(red: Reduced, params: boxes_mod.BoxParams) -> tuple[float, float]:
    """(x, y) on the analysis grid of the smoothed map's maximum inside the body mask."""
    fg = boxes_mod.foreground_mask(red.unit, params)
    h, w = red.emap.shape
    smooth = ndimage.gaussian_filter(red.emap, sigma=max(0.5, params.smooth_sigma_frac * max(h, w)))
    smooth = np.where(fg, smooth, -np.inf)
    y, x = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    return float(x) + 0.5, float(y) + 0.5


def to_record(sample: Sample, red: Reduced, params: boxes_mod.BoxParams) -> Record:
    """Boxes, score and peak of one map; all on the analysis grid (GT scaled onto it)."""
    h, w = red.emap.shape
    found, score, _ = boxes_mod.analyse(red.emap, red.unit, params)
    gt = [(x0 * w, y0 * h, x1 * w, y1 * h) for x0, y0, x1, y1 in sample.gt_norm]
    return Record(
        sample.image_id,
        gt,
        [(b.x0, b.y0, b.x1, b.y1) for b in found],
        [b.score for b in found],
        peak_point(red, params),
        score,
    )


def tune_z(
    samples: Sequence[Sample], reduced: Sequence[Reduced], params: boxes_mod.BoxParams, grid: Sequence[float] = Z_GRID
) -> tuple[boxes_mod.BoxParams, dict[str, float]]:
    """The ``z_high`` (with ``z_low = z_high / 2``) maximising top-3 hit rate at IoU 0.1 on calibration images."""
    results: dict[str, float] = {}
    best, best_key = params, (-1.0, -1.0)
    for z in grid:
        p = dataclasses.replace(params, z_high=z, z_low=z / 2)
        recs = [to_record(s, r, p) for s, r in zip(samples, reduced, strict=True)]
        m = all_metrics(recs)
        results[str(z)] = round(m["hit_rate_iou10_top3"], 4)
        key = (m["hit_rate_iou10_top3"], m["sensitivity_at_1fp_iou10"])
        if key > best_key:
            best, best_key = p, key
    return best, results


def centre_records(scored: Sequence[Sample], calib: Sequence[Sample]) -> list[Record]:
    """The centre baseline: one box of the median calibration GT size, centred; a constant image score."""
    sizes = [(x1 - x0, y1 - y0) for s in calib for x0, y0, x1, y1 in s.gt_norm] or [(0.2, 0.2)]
    bw, bh = float(np.median([a for a, _ in sizes])), float(np.median([b for _, b in sizes]))
    box = (0.5 - bw / 2, 0.5 - bh / 2, 0.5 + bw / 2, 0.5 + bh / 2)
    # Unit grid: IoU and point-in-box do not depend on the per-axis scale.
    return [Record(s.image_id, list(s.gt_norm), [box], [1.0], (0.5, 0.5), 0.0) for s in scored]


def evaluate(
    data: str | Path,
    providers: dict[str, MapProvider],
    limit_fractured: int | None = None,
    limit_normal: int | None = None,
    calib_share: float = 0.3,
    seed: int = 0,
    n_boot: int = 500,
    params: boxes_mod.BoxParams | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    map_cache: dict[str, Path] | None = None,
    z_grid: Sequence[float] | None = Z_GRID,
) -> tuple[dict[str, Any], dict[str, tuple[list[Sample], list[Reduced], list[Record]]]]:
    """Runs the harness; the first provider is "model", the others are baselines (plus "center").

    ``map_cache`` names a folder per provider whose reduced maps are reused (see ``compute_reduced``).

    Returns:
        The report dict (see the CLI for its shape) and, per provider, the scored samples, their
        reduced maps and records (for the panel).
    """
    say = log or (lambda msg: print(msg, file=sys.stderr))
    params = params or boxes_mod.BoxParams()
    calib, scored = select_and_split(load_samples(data, say), limit_fractured, limit_normal, calib_share, seed)
    say(
        f"{len(calib)} calibration images, {len(scored)} scored "
        f"({sum(s.fractured for s in scored)} fractured, {sum(not s.fractured for s in scored)} normal)"
    )
    results: dict[str, dict[str, Any]] = {}
    details: dict[str, tuple[list[Sample], list[Reduced], list[Record]]] = {}
    for name, provider in providers.items():
        say(f"[{name}] error maps ...")
        cache = (map_cache or {}).get(name)
        cal_red = compute_reduced(calib, provider, params, progress=progress, cache=cache)
        tuned, grid = tune_z(calib, cal_red, params, z_grid) if z_grid else (params, {})
        red = compute_reduced(scored, provider, params, progress=progress, cache=cache)
        recs = [to_record(s, r, tuned) for s, r in zip(scored, red, strict=True)]
        metrics: dict[str, Any] = {k: round(v, 4) for k, v in all_metrics(recs).items()}
        metrics["ci"] = bootstrap_ci(recs, n_boot=n_boot, seed=seed)
        metrics["tuned_on_calibration"] = {"z_high": tuned.z_high, "z_low": tuned.z_low, "calib_hit_iou10_top3": grid}
        results[name] = metrics
        details[name] = (list(scored), red, recs)
        say(f"[{name}] " + ", ".join(f"{k} {v}" for k, v in metrics.items() if isinstance(v, float)))
    centre = centre_records(scored, calib)
    c_metrics: dict[str, Any] = {k: round(v, 4) for k, v in all_metrics(centre).items()}
    c_metrics["ci"] = bootstrap_ci(centre, n_boot=n_boot, seed=seed)
    names = list(providers)
    report = {
        "n_images": len(scored),
        "n_fractured": sum(s.fractured for s in scored),
        "n_normal": sum(not s.fractured for s in scored),
        "n_lesions": sum(len(s.gt_norm) for s in scored),
        "n_calibration": len(calib),
        "model": results[names[0]],
        "baselines": {"center": c_metrics, **{n: results[n] for n in names[1:]}},
        "settings": {
            "box_params": dataclasses.asdict(params),
            "seed": seed,
            "n_boot": n_boot,
            "calib_share": calib_share,
        },
    }
    return report, details
