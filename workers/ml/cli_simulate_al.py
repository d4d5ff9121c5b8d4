"""``python -m workers.ml simulate-al``: the oracle active-learning simulation on a labelled folder.

Reads a folder in the FracAtlas layout (``dataset.csv`` + ``images/**``): every 0/1 column is a
binary head, and ``bodypart`` is a multiclass head made from the hand/leg/hip/shoulder/mixed
columns: ``mixed`` when set (FracAtlas then also sets each part shown), else the one part set; an
image with none, or several parts but not ``mixed``, counts as unknown. Embeddings come from a file
(``.npz`` with ``ids`` and ``embeddings``) or are computed with the checkpoint (``auto``, cached in
an ``.npz`` next to ``--out``). Writes the JSON report, a PNG of the learning curves beside it, and
prints a table. ``--splits K`` repeats the protocol on K test splits so that the intervals include
the test split's own noise; ``--jobs`` runs the simulation in that many processes.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .embed import DEFAULT_POOLING, DEFAULT_SCALES, POOLINGS, check_scales
from .heads import HeadConfig, HeadSpec, Schema
from .simulate_al import SimulationSettings, simulate, table

BODYPARTS = ("hand", "leg", "hip", "shoulder", "mixed")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="folder with dataset.csv and images/")
    p.add_argument(
        "--embeddings", default="auto", help="'auto' (compute with --checkpoint) or an .npz (ids, embeddings)"
    )
    p.add_argument("--checkpoint", type=Path, help="MAE checkpoint (.safetensors + .json) for --embeddings auto")
    p.add_argument("--heads", default="fractured,hardware,bodypart", help="comma-separated heads")
    p.add_argument("--strategies", default="random,entropy,kcenter,hybrid", help="comma-separated strategies")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--budget", type=int, default=20, help="labels added per round")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--initial", type=int, default=20, help="random labelled images to start from")
    p.add_argument("--test-fraction", type=float, default=0.3)
    p.add_argument(
        "--splits",
        type=int,
        default=1,
        help="repeat on this many test splits (seeds 0, 1, ...) so the intervals include test-split noise",
    )
    p.add_argument(
        "--split-seed",
        type=int,
        default=SimulationSettings.split_seed,
        help="seed of the first test split (keep 0 for reported figures; others for development studies)",
    )
    p.add_argument("--jobs", type=int, default=1, help="simulation processes (one thread each)")
    p.add_argument(
        "--bootstrap",
        type=int,
        default=SimulationSettings.bootstrap,
        help="paired resamples of the seeds for the 95%% intervals (0 = none)",
    )
    p.add_argument("--weight-decay", type=float, default=HeadConfig.weight_decay)
    p.add_argument(
        "--hybrid-uncertainty",
        choices=("entropy", "disagreement"),
        default="entropy",
        help="what the hybrid ranks its candidates by: the model's entropy, or a bootstrap ensemble's disagreement",
    )
    p.add_argument(
        "--focus",
        default="",
        help="comma-separated heads the rankings rank by (default: all); every head is still trained and scored",
    )
    p.add_argument("--batch-size", type=int, default=32, help="images per forward when embedding")
    p.add_argument(
        "--pooling",
        default=DEFAULT_POOLING,
        choices=POOLINGS,
        help=f"token pooling for --embeddings auto (default {DEFAULT_POOLING}, as the platform)",
    )
    p.add_argument(
        "--embed-scales",
        type=parse_scales,
        default=DEFAULT_SCALES,
        help="tiles per side of each scale for --embeddings auto, e.g. 1,2,3 (default, as the platform) or 1",
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads for embedding (0 = torch's default)")
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="decode-once image cache (datacache.py, 336 px long side) to read pixels from; only with --embed-scales 1",
    )
    p.add_argument("--out", required=True, type=Path, help="report JSON (the PNG goes beside it)")


def parse_scales(text: str) -> tuple[int, ...]:
    """``"1,2,3"`` -> (1, 2, 3); argparse reports the ValueError's message."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    try:
        return check_scales(values)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def read_labels(data: Path, heads: list[str]) -> tuple[list[str], Schema, dict[str, np.ndarray]]:
    """Image ids, the schema of the requested heads and their encoded targets from ``dataset.csv``."""
    with open(data / "dataset.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{data / 'dataset.csv'} has no rows")
    id_col = next(iter(rows[0]))
    ids = [r[id_col] for r in rows]
    binary_cols = [c for c in rows[0] if c != id_col and all(r[c].strip() in ("0", "1") for r in rows)]
    specs, targets = [], {}
    for name in heads:
        if name == "bodypart":
            onehot = np.array([[int(r[c]) for c in BODYPARTS] for r in rows])
            single = np.where(onehot[:, :4].sum(axis=1) == 1, onehot[:, :4].argmax(axis=1), -1)
            # FracAtlas marks a film of several parts with "mixed" *and* each part's column.
            targets[name] = np.where(onehot[:, 4] == 1, 4, single).astype(np.int64)
            specs.append(HeadSpec(name, "multiclass", BODYPARTS))
        elif name in binary_cols:
            targets[name] = np.array([int(r[name]) for r in rows], dtype=np.int64)
            specs.append(HeadSpec(name, "binary", ("no", "yes")))
        else:
            raise ValueError(
                f"head {name!r}: not a 0/1 column of dataset.csv nor 'bodypart' (0/1 columns: {binary_cols})"
            )
    return ids, Schema(tuple(specs)), targets


def find_images(data: Path, ids: list[str]) -> dict[str, Path]:
    """id → image path under ``data/images`` (first match by file name)."""
    wanted = set(ids)
    found: dict[str, Path] = {}
    for p in sorted((data / "images").rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.name in wanted and p.name not in found:
            found[p.name] = p
    return found


def compute_embeddings(
    paths: dict[str, Path],
    checkpoint: Path,
    batch_size: int = 32,
    cache_dir: Path | None = None,
    pooling: str = DEFAULT_POOLING,
    scales: tuple[int, ...] = DEFAULT_SCALES,
) -> tuple[list[str], np.ndarray]:
    """Embeds every readable image with ``embed.embed_images``, as the platform does (unreadable
    ones are skipped, with a message).

    Args:
        paths: image id → file.
        checkpoint: the MAE checkpoint.
        batch_size: images per call of ``embed_images``.
        pooling: token pooling (default ``meanmax``, what the platform stores).
        scales: tiles per side of each scale (default 1, 2, 3, what the platform stores).
        cache_dir: optional decode-once cache (``datacache.py``, long side 336, e.g. pretraining's),
            which skips JPEG decoding for images already there; else files are decoded here. Its
            pixels are too coarse for tiled scales, so it is refused unless ``scales`` is ``(1,)``.
    """
    from PIL import Image, ImageOps

    from .checkpoint import load_model
    from .datacache import build_cache, load_cached
    from .embed import embed_images
    from .errormap import tile_geometry

    model = load_model(checkpoint, device="cpu")
    cfg = model.config
    work = max(tile_geometry(cfg.img_size, cfg.patch_size, t)[1] for t in scales)
    cached = {}
    if cache_dir is not None:
        if work > 336:
            raise SystemExit(
                f"--cache-dir holds 336 px images, coarser than the {work} px canvas of scale {max(scales)}; "
                "drop --cache-dir or use --embed-scales 1"
            )
        cached = {e.source: e for e in build_cache(sorted(map(str, paths.values())), cache_dir, long_side=336)}
    ok_ids: list[str] = []
    chunks: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    batch_ids: list[str] = []
    items = sorted(paths.items())
    t0 = time.perf_counter()
    for k, (image_id, path) in enumerate(items):
        try:
            if cache_dir is not None:
                if str(path) not in cached:
                    continue  # unreadable: build_cache said so
                pixels = load_cached(cached[str(path)])
            else:
                with Image.open(path) as im:
                    im.draft("L", (work * 2, work * 2))  # JPEG: decode at reduced scale
                    pixels = np.asarray(ImageOps.exif_transpose(im).convert("L"), dtype=np.float32)
        except (OSError, ValueError) as exc:
            print(f"skipped {path}: {exc}", file=sys.stderr)
            continue
        batch.append(pixels)
        batch_ids.append(image_id)
        if len(batch) == batch_size or k == len(items) - 1:
            chunks.append(embed_images(model, batch, pooling=pooling, scales=scales))
            ok_ids += batch_ids
            batch, batch_ids = [], []
            if len(chunks) % 10 == 0 or k == len(items) - 1:
                print(f"embedded {len(ok_ids)}/{len(items)} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    if batch:  # the last files were unreadable after a partial batch
        chunks.append(embed_images(model, batch, pooling=pooling, scales=scales))
        ok_ids += batch_ids
    return ok_ids, np.concatenate(chunks)


def load_or_compute(args: argparse.Namespace, ids: list[str]) -> tuple[list[str], np.ndarray]:
    if args.embeddings != "auto":
        z = np.load(args.embeddings, allow_pickle=False)
        return [str(i) for i in z["ids"]], np.asarray(z["embeddings"])
    if args.checkpoint is None:
        raise SystemExit("--embeddings auto needs --checkpoint")
    scales = "".join(str(t) for t in args.embed_scales)
    cache = args.out.with_name(f"{args.out.stem}.embeddings.{args.checkpoint.stem}.{args.pooling}.s{scales}.npz")
    if cache.exists() and cache.stat().st_mtime >= args.checkpoint.stat().st_mtime:
        print(f"using cached embeddings {cache}", file=sys.stderr)
        z = np.load(cache, allow_pickle=False)
        return [str(i) for i in z["ids"]], np.asarray(z["embeddings"])
    paths = find_images(args.data, ids)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # on a busy shared CPU, 1 thread beats 2 contended ones
    got_ids, emb = compute_embeddings(
        paths, args.checkpoint, args.batch_size, args.cache_dir, args.pooling, tuple(args.embed_scales)
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, ids=np.array(got_ids), embeddings=emb)
    return got_ids, emb


def plot(report: dict, path: Path) -> None:
    """Top row, one panel per head: mean test AUROC vs labels with the 95% band, per strategy.

    Bottom row (when the report has bootstrap intervals): each strategy's ratio of labels to random's
    with its 95% interval, against the 0.6 target and parity.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = list(report["heads"])
    with_ci = any("ratio_ci" in s for e in report["heads"].values() for s in e["strategies"].values())
    rows = 2 if with_ci else 1
    fig, axes = plt.subplots(
        rows,
        len(heads),
        figsize=(5 * len(heads), 4 + 2.2 * (rows - 1)),
        squeeze=False,
        gridspec_kw={"height_ratios": [4, 2.2][:rows]},
    )
    for ax, head in zip(axes[0], heads):
        plot_curves(ax, head, report["heads"][head])
    if with_ci:
        for ax, head in zip(axes[1], heads):
            plot_ratios(ax, report["heads"][head]["strategies"])
    st = report.get("settings", {})
    if st:
        fig.suptitle(
            f"{st.get('splits', 1)} test split(s) x {st.get('seeds')} seeds; {st.get('initial')} initial labels, "
            f"{st.get('budget')} per round",
            fontsize=10,
        )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(ax: Any, head: str, entry: dict) -> None:
    """One head's panel: mean test AUROC vs labels with the 95% band per strategy, and the
    full-data AUROC with its 95% line."""
    for name, s in entry["strategies"].items():
        c = np.array([[np.nan if v is None else v for v in row] for row in s["curve"]], dtype=float)
        ax.plot(c[:, 0], c[:, 1], label=name)
        ax.fill_between(c[:, 0], c[:, 2], c[:, 3], alpha=0.15)
    if entry["full_data_auroc"] is not None:
        several = "full_data_auroc_splits" in entry
        label = "all pool labels" + (" (mean of splits)" if several else "")
        ax.axhline(entry["full_data_auroc"], color="k", lw=0.8, ls="--", label=label)
        ax.axhline(0.95 * entry["full_data_auroc"], color="grey", lw=0.8, ls=":", label="95% of that")
    ax.set_title(head)
    ax.set_xlabel("labelled images")
    ax.set_ylabel("test AUROC")
    ax.legend(fontsize=8)


def plot_ratios(ax: Any, strategies: dict) -> None:
    """Horizontal 95% intervals of ``ratio_vs_random`` per strategy; an open upper end runs off the axis."""
    names = [n for n in strategies if n != "random"]
    right = 2.5
    for y, name in enumerate(names):
        s = strategies[name]
        lo, hi = s.get("ratio_ci") or (None, None)
        point = s["ratio_vs_random"]
        if lo is not None or hi is not None:
            a, b = (0.0 if lo is None else lo), (right if hi is None else min(hi, right))
            ax.plot([a, b], [y, y], color="C0", lw=2)
        if point is not None:
            ax.plot([min(point, right)], [y], "o", color="k", ms=4)
    ax.axvline(0.6, color="C3", lw=0.8, ls="--", label="target 0.6")
    ax.axvline(1.0, color="grey", lw=0.8, ls=":", label="random")
    labels = [f"{n}\nP(<=0.6) {p:.2f}" if (p := strategies[n].get("p_ratio_le_0_6")) is not None else n for n in names]
    ax.set_yticks(range(len(names)), labels, fontsize=8)
    ax.set_xlim(0, right)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlabel("labels to 95% of full-data AUROC / random's (95% CI)")
    ax.legend(fontsize=7, loc="upper right")


def run(args: argparse.Namespace) -> int:
    heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    focus = tuple(h.strip() for h in args.focus.split(",") if h.strip())
    if unknown := [h for h in focus if h not in heads]:
        print(f"simulate-al: --focus {','.join(unknown)} is not among --heads {','.join(heads)}", file=sys.stderr)
        return 2
    ids, schema, targets = read_labels(args.data, heads)
    emb_ids, emb = load_or_compute(args, ids)
    row = {image_id: i for i, image_id in enumerate(ids)}
    keep = [(j, row[e]) for j, e in enumerate(emb_ids) if e in row]
    if len(keep) < len(ids):
        print(
            f"{len(ids) - len(keep)} labelled images have no embedding (unreadable or missing); left out",
            file=sys.stderr,
        )
    emb_rows, label_rows = (np.array(v, dtype=np.int64) for v in zip(*keep))
    x = np.asarray(emb, dtype=np.float32)[emb_rows]
    t = {name: arr[label_rows] for name, arr in targets.items()}
    settings = SimulationSettings(
        strategies=tuple(s.strip() for s in args.strategies.split(",") if s.strip()),
        seeds=args.seeds,
        budget=args.budget,
        rounds=args.rounds,
        initial=args.initial,
        test_fraction=args.test_fraction,
        bootstrap=args.bootstrap,
        splits=args.splits,
        split_seed=args.split_seed,
        jobs=args.jobs,
        head_config=HeadConfig(weight_decay=args.weight_decay),
        hybrid_uncertainty=args.hybrid_uncertainty,
        focus=focus,
    )
    t0 = time.perf_counter()
    report = simulate(x, t, schema, settings, log=lambda s: print(s, file=sys.stderr))
    report["settings"].update(
        embeddings=str(args.embeddings if args.embeddings != "auto" else args.checkpoint),
        embedding_dim=int(x.shape[1]),
        pooling=args.pooling if args.embeddings == "auto" else "as in the file",
        embed_scales=list(args.embed_scales) if args.embeddings == "auto" else "as in the file",
        seconds=round(time.perf_counter() - t0, 1),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    png = args.out.with_suffix(".png")
    plot(report, png)
    print(table(report))
    print(f"wrote {args.out} and {png}")
    return 0
