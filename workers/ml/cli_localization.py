"""``python -m workers.ml evaluate-localization``: the zero-shot localization harness (see ``localization.py``).

Example (the demo checkpoint's numbers in its model card)::

    nice -n 10 python -m workers.ml evaluate-localization --checkpoint workers/ml/checkpoints/demo.safetensors \\
        --data ../shared/data/fracatlas --limit-fractured 300 --limit-normal 150 --tiles 1 --passes 4 \\
        --out /work/runs/loc/report.json

Writes the report JSON, and ``<out stem>_panel.png`` (best and worst cases of the model).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="X.safetensors (with X.json beside it)")
    parser.add_argument("--data", required=True, help="folder in the FracAtlas layout (images/, Annotations/YOLO/)")
    parser.add_argument("--out", required=True, help="report JSON path")
    parser.add_argument("--limit", type=int, default=None, help="at most N images: N/2 fractured, the rest normal")
    parser.add_argument("--limit-fractured", type=int, default=None)
    parser.add_argument("--limit-normal", type=int, default=None)
    parser.add_argument("--calib-share", type=float, default=0.3, help="share used only to choose thresholds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiles", choices=("auto", "1", "2", "3"), default="1")
    parser.add_argument("--passes", type=int, default=4, help="complementary masked passes (4 = every patch 3x)")
    parser.add_argument("--bootstrap", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-random-init", action="store_true", help="skip the random-weights baseline")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--map-cache",
        default=None,
        help="folder to keep reduced error maps in (re-runs with other box settings are fast)",
    )
    parser.add_argument("--baselines-only", action="store_true", help="only the random-init maps (fills --map-cache)")
    parser.add_argument("--z-high", type=float, default=None, help="fix z_high (z_low = z_high / 2) instead of tuning")
    parser.add_argument("--smooth", type=float, default=None, help="map smoothing sigma as a share of the long side")


def model_provider(model, tiles: str, passes: int, seed: int):
    """Images -> original-grid error maps from ``errormap.compute_errormaps`` (no gradients)."""
    import torch

    from .errormap import ErrorMapParams, compute_errormaps

    params = ErrorMapParams(
        mode="complementary", passes=passes, seed=seed, tiles=tiles if tiles == "auto" else int(tiles)
    )

    def provide(images):
        with torch.no_grad():
            return [r.pixel_map for r in compute_errormaps(model, images, params=params)]

    return provide


def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def run(args: argparse.Namespace) -> int:
    import torch

    from .boxes import BoxParams
    from .checkpoint import load_model
    from .localization import Z_GRID, evaluate
    from .localization_panel import write_panel
    from .model import MaskedAutoencoderViT

    if args.threads:
        torch.set_num_threads(args.threads)
    limit_f, limit_n = args.limit_fractured, args.limit_normal
    if args.limit is not None:
        limit_f = limit_f if limit_f is not None else args.limit // 2
        limit_n = limit_n if limit_n is not None else args.limit - limit_f
    model = load_model(args.checkpoint, device=args.device)
    providers = {"model": model_provider(model, args.tiles, args.passes, args.seed)}
    settings = f"tiles{args.tiles}_passes{args.passes}_seed{args.seed}"
    caches = {"model": f"model_{_file_digest(Path(args.checkpoint))}_{settings}"}
    if not args.no_random_init:
        torch.manual_seed(args.seed)
        device = next(model.parameters()).device
        random_model = MaskedAutoencoderViT(model.config).to(device).eval()
        providers["random_init"] = model_provider(random_model, args.tiles, args.passes, args.seed)
        arch = hashlib.sha1(model.config.to_json().encode()).hexdigest()[:12]
        caches["random_init"] = f"random_{arch}_{settings}"
    if args.baselines_only:  # precompute the random-weights maps while a model still trains
        providers = {"random_init": providers["random_init"]}
    map_cache = {k: Path(args.map_cache) / v for k, v in caches.items()} if args.map_cache else None
    params = BoxParams()
    if args.z_high is not None:
        params = dataclasses.replace(params, z_high=args.z_high, z_low=args.z_high / 2)
    if args.smooth is not None:
        params = dataclasses.replace(params, smooth_sigma_frac=args.smooth)
    report, details = evaluate(
        args.data,
        providers,
        limit_f,
        limit_n,
        args.calib_share,
        args.seed,
        args.bootstrap,
        params=params,
        progress=not args.no_progress,
        map_cache=map_cache,
        z_grid=None if args.z_high is not None else Z_GRID,
    )
    report["checkpoint"] = str(args.checkpoint)
    report["settings"].update({"tiles": args.tiles, "passes": args.passes, "errormap_mode": "complementary"})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    _, reduced, records = details[next(iter(details))]
    panel = write_panel(out.with_name(out.stem + "_panel.png"), reduced, records, title=f"{Path(args.checkpoint).name}")
    m = report["model"]
    print(
        f"{report['n_images']} images scored: pointing {m['pointing_game']}, hit@0.3 top3 {m['hit_rate_iou30_top3']}, "
        f"sens@1FP {m['sensitivity_at_1fp']}, AUROC {m['auroc']}; report {out}, panel {panel}"
    )
    for name, b in report["baselines"].items():
        print(
            f"  baseline {name}: pointing {b['pointing_game']}, "
            f"hit@0.3 top3 {b['hit_rate_iou30_top3']}, AUROC {b['auroc']}"
        )
    return 0
