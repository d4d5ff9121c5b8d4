"""Tiny models and checkpoints shared by the ML-engine tests (CPU, well under a second each)."""

from __future__ import annotations

from pathlib import Path

import torch

from workers.ml.checkpoint import save_checkpoint
from workers.ml.model import MaskedAutoencoderViT, create_model

TINY = dict(
    img_size=32,
    patch_size=8,
    embed_dim=32,
    depth=2,
    num_heads=2,
    decoder_embed_dim=32,
    decoder_depth=2,
    decoder_num_heads=2,
)


def tiny_model(seed: int = 0, **overrides: object) -> MaskedAutoencoderViT:
    """A random tiny MAE (32 px, patch 8, depth 2) in eval mode."""
    torch.manual_seed(seed)
    return create_model("mae_vit_tiny_patch16", **{**TINY, **overrides}).eval()


def tiny_checkpoint(folder: Path, seed: int = 0) -> Path:
    """Writes a random tiny model as our checkpoint; returns the .safetensors path."""
    return save_checkpoint(tiny_model(seed), folder / "tiny.safetensors", metadata={"purpose": "test"})
