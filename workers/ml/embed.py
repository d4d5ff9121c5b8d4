"""Image embeddings for the label heads and active learning: the unmasked encoder, pooled.

Default pooling ``meanmax``: the mean and the maximum of the patch tokens (CLS excluded) of the
full, unmasked encoder after its final norm, each L2-normalised, concatenated and L2-normalised
again (``2 x embed_dim`` values: 384 for ViT-Tiny), stored as float16. The mean says what the
whole film looks like; the maximum keeps what is strong in a few patches only (a plate, a bright
cortex edge, a small bone at the image border), which the mean dilutes. On FracAtlas with the demo
checkpoint, linear heads scored in 5-fold cross-validation on the simulation's pool (the test
split never used for the choice) reach AUROC fractured / hardware / bodypart 0.716 / 0.786 / 0.948
with ``meanmax``, against 0.702 / 0.759 / 0.936 with ``mean`` and 0.713 / 0.753 / 0.940 with
``max`` (docs/active-learning.md). ``mean`` (the usual MAE choice; the CLS token is not trained by
the MAE objective) and ``cls`` stay available. float16 halves storage, and after L2 normalisation
its ~1e-3 relative error does not change nearest neighbours or linear heads in practice.

Several scales (``embed_images``, what the platform and ``simulate-al`` use): at 224 px a fracture
line or a screw spans a patch or less, so the image is also read at the error maps' tiled working
sizes (2 x 2 tiles of 224 on a 384 px canvas, 3 x 3 on 544 px; ``errormap.tile_geometry``). Each
scale is pooled over the tokens of all its tiles, counting only patches that are mostly image
(padding says nothing about the film, and its share changes with the aspect ratio); the unit vectors
of the scales are summed and normalised again, so the length stays ``2 x embed_dim``. On FracAtlas
with the demo checkpoint, 5-fold cross-validated AUROC on the simulation pools of split seeds 5-9
(fractured / hardware / bodypart): scale 1 alone 0.746 / 0.815 / 0.963, scales 1 + 2 + 3 0.770 /
0.852 / 0.971 (docs/ml-engine.md, Embeddings). The cost is 14 encoder passes per image instead of 1
(``python -m workers.ml bench-embed``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .errormap import tile_geometry
from .model import MaskedAutoencoderViT, autocast_for
from .preprocess import prepare

POOLINGS = ("meanmax", "mean", "cls")
DEFAULT_POOLING = "meanmax"
# Tiles per side of each scale read by ``embed_images`` (1: the whole image at the model's size).
DEFAULT_SCALES = (1, 2, 3)


def embedding_dim(model: MaskedAutoencoderViT, pooling: str = DEFAULT_POOLING) -> int:
    """Length of one embedding of ``model`` under ``pooling``."""
    return model.config.embed_dim * (2 if pooling == "meanmax" else 1)


def pool_tokens(tokens: torch.Tensor, pooling: str = DEFAULT_POOLING) -> torch.Tensor:
    """Encoder tokens [N, 1 + L, D] (CLS first) -> [N, D'] unit rows (D' = 2D for ``meanmax``)."""
    normalize = torch.nn.functional.normalize
    patches = tokens[:, 1:, :]
    if pooling == "meanmax":
        vec = torch.cat([normalize(patches.mean(dim=1), dim=-1), normalize(patches.amax(dim=1), dim=-1)], dim=-1)
    elif pooling == "mean":
        vec = patches.mean(dim=1)
    elif pooling == "cls":
        vec = tokens[:, 0, :]
    else:
        raise ValueError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
    return normalize(vec, dim=-1)


@torch.no_grad()
def embed(
    model: MaskedAutoencoderViT, imgs: torch.Tensor, pooling: str = DEFAULT_POOLING, batch_size: int = 64
) -> np.ndarray:
    """imgs [N, C, S, S] (normalised model inputs) -> [N, D'] float16, each row of unit L2 norm.

    Args:
        model: the MAE (eval mode).
        imgs: normalised inputs at the model's image size.
        pooling: ``meanmax`` (default), ``mean`` of patch tokens, or the ``cls`` token.
        batch_size: images per forward.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
    device = next(model.parameters()).device
    out = []
    for start in range(0, imgs.shape[0], batch_size):
        x = imgs[start : start + batch_size].to(device)
        with autocast_for(device):
            tokens = model.forward_features(x)
        out.append(pool_tokens(tokens.float(), pooling).cpu())
    if not out:
        return np.zeros((0, embedding_dim(model, pooling)), dtype=np.float16)
    return torch.cat(out).numpy().astype(np.float16)


def check_scales(scales: Sequence[int]) -> tuple[int, ...]:
    """``scales`` as a tuple, or ValueError naming what is wrong (each 1, 2 or 3, none twice)."""
    out = tuple(scales)
    if not out:
        raise ValueError("embedding scales: give at least one of 1, 2, 3")
    for t in out:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t not in (1, 2, 3):
            raise ValueError(f"embedding scales must be tiles per side 1, 2 or 3; got {t!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"embedding scales repeat a value: {list(out)}")
    return tuple(int(t) for t in out)


def _pool_scale(tokens: torch.Tensor, valid: torch.Tensor, pooling: str) -> torch.Tensor:
    """Tokens [T, 1 + L, D] of one scale's T tiles, patch validity [T, L] -> one unit vector."""
    normalize = torch.nn.functional.normalize
    if pooling == "cls":
        return normalize(tokens[:, 0, :].mean(dim=0), dim=-1)
    patches = tokens[:, 1:, :].reshape(-1, tokens.shape[-1])
    keep = valid.reshape(-1)
    if bool(keep.any()):
        patches = patches[keep]
    mean = normalize(patches.mean(dim=0), dim=-1)
    if pooling == "mean":
        return mean
    return normalize(torch.cat([mean, normalize(patches.amax(dim=0), dim=-1)]), dim=-1)


@torch.no_grad()
def embed_images(
    model: MaskedAutoencoderViT,
    images: Sequence[np.ndarray],
    windows: Sequence[tuple[float, float] | None] | None = None,
    preprocess: str = "pad",
    pooling: str = DEFAULT_POOLING,
    scales: Sequence[int] = DEFAULT_SCALES,
    batch_size: int = 64,
) -> np.ndarray:
    """Grayscale images [H, W] -> [N, D'] float16 unit rows, read at several scales (module docstring).

    Args:
        model: the MAE (eval mode).
        images: grayscale pixel arrays (any size, uint or float).
        windows: intensity window per image (DICOM), or None.
        preprocess: ``pad`` (aspect kept) or ``stretch``, as ``preprocess.prepare``.
        pooling: ``meanmax`` (default), ``mean`` or ``cls`` (the mean of the tiles' CLS tokens).
        scales: tiles per side of each scale; ``(1,)`` is the whole image at the model's size only.
        batch_size: tiles per forward (an image's tiles are never split across two).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
    scales = check_scales(scales)
    windows = list(windows) if windows is not None else [None] * len(images)
    if len(windows) != len(images):
        raise ValueError(f"{len(images)} images but {len(windows)} windows")
    c = model.config
    size, patch = c.img_size, c.patch_size
    grid = size // patch
    device = next(model.parameters()).device
    out: list[torch.Tensor] = []
    crops: list[torch.Tensor] = []
    valids: list[torch.Tensor] = []
    owners: list[tuple[int, int]] = []  # (image, scale) of each crop

    def flush() -> None:
        tokens = []
        for start in range(0, len(crops), batch_size):
            with autocast_for(device):
                tokens.append(
                    model.forward_features(torch.stack(crops[start : start + batch_size]).to(device)).float().cpu()
                )
        all_tokens, all_valid = torch.cat(tokens), torch.stack(valids)
        keys = np.array(owners)
        for i in np.unique(keys[:, 0]):
            per_scale = [
                _pool_scale(all_tokens[sel], all_valid[sel], pooling)
                for t in scales
                for sel in [torch.from_numpy(np.flatnonzero((keys[:, 0] == i) & (keys[:, 1] == t)))]
            ]
            out.append(torch.nn.functional.normalize(torch.stack(per_scale).sum(dim=0), dim=-1))
        crops.clear()
        valids.clear()
        owners.clear()

    for i, (pixels, window) in enumerate(zip(images, windows)):
        for t in scales:
            stride, work = tile_geometry(size, patch, t)
            prep = prepare(pixels, size=work, mode=preprocess, window=window, mean=c.mean, std=c.std)
            for ty in range(t):
                for tx in range(t):
                    y0, x0 = ty * stride, tx * stride
                    crops.append(prep.tensor[:, y0 : y0 + size, x0 : x0 + size])
                    cell = prep.valid[y0 : y0 + size, x0 : x0 + size].reshape(grid, patch, grid, patch)
                    valids.append(torch.from_numpy(cell.mean(axis=(1, 3)).reshape(-1) > 0.5))
                    owners.append((i, t))
        if len(crops) >= batch_size:
            flush()
    if crops:
        flush()
    if not out:
        return np.zeros((0, embedding_dim(model, pooling)), dtype=np.float16)
    return torch.stack(out).numpy().astype(np.float16)
