"""``python -m workers.ml pretrain``: MAE pretraining on a folder or list of images (see ``pretrain.py``).

Example (the demo checkpoint's run)::

    python -m workers.ml pretrain --data ../shared/data/fracatlas/images --variant mae_vit_tiny_patch16 \\
        --epochs 40 --batch-size 64 --threads 2 --out /work/runs/demo
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .model import VARIANTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="image folder (recursive) or a .txt list of image paths")
    parser.add_argument("--out", required=True, help="run directory (checkpoints, metrics.json, loss.png)")
    parser.add_argument("--variant", default="mae_vit_tiny_patch16", choices=sorted(VARIANTS))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--blr", type=float, default=1.5e-3, help="base lr; lr = blr * batch / 256")
    parser.add_argument("--lr", type=float, default=None, help="absolute peak lr (overrides --blr)")
    parser.add_argument("--warmup-epochs", type=float, default=1.0)
    parser.add_argument("--mask-ratio", type=float, default=0.75)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="data loader (and cache decoding) processes")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    parser.add_argument("--init", default=None, help="checkpoint to continue pretraining from (X.safetensors)")
    parser.add_argument("--cache-dir", default=None, help="16-bit image cache (default <out>/cache)")
    parser.add_argument("--device", default=None, help="cuda / cpu (default: cuda when present)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after the epoch that crosses this")
    parser.add_argument(
        "--time-budget-min", type=float, default=None, help="cosine schedule over wall time; the run ends at the budget"
    )
    parser.add_argument(
        "--device-views",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="make augmented views on the training device, a batch at a time (default: on for CUDA)",
    )
    parser.add_argument(
        "--save-every-min",
        type=float,
        default=None,
        help="write weights and last.pt at most this often (default: each epoch)",
    )
    parser.add_argument("--export-fp16", default=None, help="also write final fp16 weights to this X.safetensors")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from .pretrain import PretrainConfig, pretrain
    from .pretrain_io import load_weights, save_weights

    cfg = PretrainConfig(
        data=args.data,
        out=args.out,
        variant=args.variant,
        img_size=args.img_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        blr=args.blr,
        lr=args.lr,
        warmup_epochs=args.warmup_epochs,
        mask_ratio=args.mask_ratio,
        seed=args.seed,
        workers=args.workers,
        threads=args.threads,
        resume=args.resume,
        init=args.init,
        cache_dir=args.cache_dir,
        device=args.device,
        max_minutes=args.max_minutes,
        time_budget_min=args.time_budget_min,
        progress=not args.no_progress,
        device_views=args.device_views,
        save_every_min=args.save_every_min,
    )
    result = pretrain(cfg)
    print(
        f"done: {result.epochs_done} epochs, final loss {result.final_loss:.4f}, "
        f"{result.samples_per_s:.1f} img/s, weights {result.checkpoint}"
    )
    if args.export_fp16:
        import torch

        path = save_weights(load_weights(result.checkpoint), Path(args.export_fp16).with_suffix(""), torch.float16)
        print(f"fp16 weights: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
