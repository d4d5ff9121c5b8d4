"""``python -m workers.ml bench-embed``: what reading the embedding at several scales costs.

Same FracAtlas films, same model, same process, one run: per round, three jobs on the same batch,
in an order that rotates between rounds so that load from other jobs on a shared machine falls on
each alike:

* ``embed 1``: the embedding at one scale (``embed_images(scales=(1,))``, the readout until 2026-11-29);
* ``embed 1+2+3``: the platform's embedding (whole film, 2 x 2 and 3 x 3 tiles; ``DEFAULT_SCALES``);
* ``error maps``: the error maps at the pipeline's settings (8 complementary passes, tiles by size),
  the rest of an analysis (boxes cost milliseconds).

Prints seconds per image (median over rounds) and the ratios that matter side by side: the
embedding's own cost, and a whole analysis (embedding + error maps) with the new readout against
the old. Decoding is done once before timing, as the worker's cost does not depend on it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None, help="FracAtlas folder (default: ../shared/data/fracatlas)")
    parser.add_argument(
        "--checkpoint", default="workers/ml/checkpoints/demo.safetensors", help="MAE checkpoint (default: the demo's)"
    )
    parser.add_argument("--images", type=int, default=16, help="films per batch")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each timing all three jobs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--out", type=Path, help="write the report JSON here too")


def _films(folder: Path, n: int) -> list[np.ndarray]:
    """``n`` readable films spread over the folder's sorted images (FracAtlas has 3 truncated JPEGs)."""
    from .datacache import decode_gray, list_images

    paths = list_images(folder / "images")
    step = max(1, len(paths) // max(1, n))
    films: list[np.ndarray] = []
    for p in paths[::step]:
        try:
            films.append(decode_gray(p))
        except OSError:
            continue
        if len(films) == n:
            break
    if not films:
        raise SystemExit(f"no readable image under {folder / 'images'}")
    return films


def run(args: argparse.Namespace) -> int:
    import torch

    from .bench_errormap import _data_root
    from .checkpoint import load_model
    from .embed import DEFAULT_SCALES, embed_images
    from .errormap import ErrorMapParams, compute_errormaps

    if args.threads:
        torch.set_num_threads(args.threads)
    films = _films(_data_root(args.data), args.images)
    model = load_model(Path(args.checkpoint), device="cpu").eval()
    jobs: dict[str, Any] = {
        "embed 1": lambda: embed_images(model, films, scales=(1,)),
        "embed 1+2+3": lambda: embed_images(model, films, scales=DEFAULT_SCALES),
        "error maps": lambda: compute_errormaps(model, films, [None] * len(films), ErrorMapParams()),
    }
    names = list(jobs)
    jobs[names[0]]()  # warm-up: first-call allocations
    per_image: dict[str, list[float]] = {k: [] for k in names}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            t0 = time.perf_counter()
            jobs[name]()
            per_image[name].append((time.perf_counter() - t0) / len(films))
    med = {k: statistics.median(v) for k, v in per_image.items()}
    shapes = sorted({f.shape for f in films}, key=lambda s: s[0] * s[1])
    report = {
        "images": len(films),
        "rounds": args.rounds,
        "threads": torch.get_num_threads(),
        "film_sizes": f"{shapes[0][1]}x{shapes[0][0]} to {shapes[-1][1]}x{shapes[-1][0]}",
        "seconds_per_image": med,
        "rounds_seconds_per_image": per_image,
        "embedding_ratio": med["embed 1+2+3"] / med["embed 1"],
        "analysis_ratio": (med["embed 1+2+3"] + med["error maps"]) / (med["embed 1"] + med["error maps"]),
    }
    print(f"{len(films)} films ({report['film_sizes']} px), {args.rounds} rounds, {report['threads']} threads")
    print(f"{'job':<14}{'s/image':>10}   per round")
    for k in names:
        print(f"{k:<14}{med[k]:>10.3f}   " + " ".join(f"{v:.3f}" for v in per_image[k]))
    print(f"embedding, 1+2+3 / 1:                          {report['embedding_ratio']:.2f}x")
    print(f"analysis (embedding + error maps), new / old:  {report['analysis_ratio']:.2f}x")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0
