"""``python -m workers.ml convert-hf HF_DIR OUT.safetensors``: SKELEX/HF ViTMAE weights -> our checkpoint."""

from __future__ import annotations

import argparse
import sys

from .checkpoint import CheckpointError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("hf_dir", help="folder with config.json and model.safetensors or pytorch_model.bin")
    parser.add_argument("out", help="output .safetensors path (a .json config is written beside it)")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="storage dtype")


def run(args: argparse.Namespace) -> int:
    from .convert_hf import convert_folder

    try:
        out = convert_folder(args.hf_dir, args.out, dtype=args.dtype)
    except CheckpointError as exc:
        print(f"convert-hf: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0
