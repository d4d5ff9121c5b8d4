"""``python -m workers.ml errormap --checkpoint CKPT --out DIR IMAGE...``: maps and suggested boxes.

For each image writes ``DIR/<stem>.npy`` (float32 error map on the original pixel grid) and
``DIR/<stem>.json`` (``{"boxes": [{"x0", "y0", "x1", "y1", "score"}], "image_score", ...}`` in
original pixel coordinates). Images are DICOM, PNG or JPEG, decoded by ``workers.imaging``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="DICOM, PNG or JPEG files")
    parser.add_argument("--checkpoint", required=True, help="our .safetensors checkpoint (JSON config beside it)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--mode", choices=("complementary", "reference"), default="complementary")
    parser.add_argument(
        "--passes", type=int, default=None, help="masked passes (default 8 complementary, 10 reference)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiles", choices=("auto", "1", "2", "3"), default="auto")
    parser.add_argument("--preprocess", choices=("pad", "stretch"), default="pad")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when present)")


def load_pixels(path: Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    """(uint16 [H, W] bone-bright pixels, default display window) through the imaging core."""
    from workers.imaging import load_image

    img = load_image(path, name=path.name)
    window = img.window
    return np.asarray(img.pixels), (float(window[0]), float(window[1])) if window is not None else None


def run(args: argparse.Namespace) -> int:
    from .boxes import analyse
    from .checkpoint import CheckpointError, load_model
    from .errormap import ErrorMapParams, compute_errormap

    try:
        model = load_model(args.checkpoint, device=args.device)
    except CheckpointError as exc:
        print(f"errormap: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = ErrorMapParams(
        mode=args.mode, passes=args.passes, seed=args.seed, tiles=args.tiles, preprocess=args.preprocess
    )
    failures = 0
    for name in args.images:
        path = Path(name)
        try:
            pixels, window = load_pixels(path)
        except Exception as exc:  # noqa: BLE001 - report any undecodable input and go on with the rest
            print(f"errormap: cannot read {path}: {exc}", file=sys.stderr)
            failures += 1
            continue
        result = compute_errormap(model, pixels, window, params)
        boxes, score, _ = analyse(result.pixel_map, result.prepared.original_unit)
        np.save(out / f"{path.stem}.npy", result.pixel_map.astype(np.float32))
        report: dict[str, Any] = {
            "boxes": [b.as_dict() for b in boxes],
            "image_score": round(score, 4),
            "width": int(pixels.shape[1]),
            "height": int(pixels.shape[0]),
            "mode": params.mode,
            "passes": params.num_passes(),
            "seed": params.seed,
            "tiles": result.tiles,
            "checkpoint": str(args.checkpoint),
        }
        (out / f"{path.stem}.json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"{path.name}: {len(boxes)} boxes, image score {score:.2f}")
    return 1 if failures else 0
