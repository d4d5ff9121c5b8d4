"""Reconstruction-error maps: where the MAE fails to fill in masked patches, something is unusual.

Per pass, a set of patches is removed, the model reconstructs them, and each pixel of a removed
patch gets its squared error in [0, 1] intensity space (normalisation undone, channels averaged).
A pixel's map value is the mean of its errors over the passes in which it was removed.

Two ways to choose the masks (``mode``):

* ``reference``: the SKELEX release's procedure: ``passes`` (10) independent random masks at ratio
  0.75. A patch is removed a random number of times (Binomial(10, 0.75): sometimes only 4).
* ``complementary`` (default): each round draws one random permutation of the patches and splits
  it into ``K = 1 / (1 - ratio)`` (4) disjoint *kept* sets; pass ``k`` keeps set ``k``. Every patch
  is then removed exactly ``K - 1`` times per round, so ``passes = 8`` (two rounds) removes each
  patch 6 times, with no patch left under-sampled. Deterministic for a seed.

All passes of all images (and tiles) go through the model as one batch (in chunks of
``batch_size``), instead of one image and one pass at a time.

Tiling (``tiles`` 2 or 3, or ``auto`` by image size): the image is prepared at a higher working
resolution and covered by ``tiles x tiles`` overlapping model-sized squares, aligned to the patch
grid; errors and removal counts of all tiles are summed on the working canvas, so overlaps are
averaged by how often each pixel was removed. Thin findings survive that a single 224 downscale
blurs away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .model import MaskedAutoencoderViT, autocast_for
from .preprocess import Prepared, Transform, denormalise, prepare, resize

MODES = ("complementary", "reference")
DEFAULT_PASSES = {"complementary": 8, "reference": 10}


@dataclass(frozen=True)
class ErrorMapParams:
    """How to compute a map; defaults are the production settings.

    Attributes:
        mode: ``complementary`` (default: equal coverage, fewer passes) or ``reference``.
        passes: masked passes per image (per tile); None: 8 complementary / 10 reference.
        mask_ratio: share of patches removed per pass; 0.75 as in MAE/SKELEX pretraining.
        seed: seeds the masks; same seed, same map.
        tiles: ``"auto"``, 1, 2 or 3 tiles per side.
        batch_size: sequences per forward; bounds memory (64 x 197 tokens is small on any GPU).
        preprocess: ``pad`` (default, exact box mapping) or ``stretch`` (SKELEX processor).
    """

    mode: str = "complementary"
    passes: int | None = None
    mask_ratio: float = 0.75
    seed: int = 0
    tiles: str | int = "auto"
    batch_size: int = 64
    preprocess: str = "pad"

    def num_passes(self) -> int:
        if self.mode not in MODES:
            raise ValueError(f"unknown error-map mode {self.mode!r}; use one of {', '.join(MODES)}")
        n = DEFAULT_PASSES[self.mode] if self.passes is None else int(self.passes)
        if n < 1:
            raise ValueError("passes must be at least 1")
        return n


def mask_noise(mode: str, passes: int, num_patches: int, mask_ratio: float, generator: torch.Generator) -> torch.Tensor:
    """Noise [passes, L] for ``random_masking``: per row, the smallest ``(1 - ratio) * L`` are kept.

    In complementary mode each group of ``K`` rows keeps disjoint sets (a rotation through one
    random permutation), so every patch is removed exactly ``K - 1`` times per group when ``L``
    divides by ``K`` (off by at most one otherwise).
    """
    length = num_patches
    len_keep = int(length * (1 - mask_ratio))
    if len_keep < 1:
        raise ValueError(f"mask_ratio {mask_ratio} keeps no patch of {length}")
    if mode == "reference":
        return torch.rand(passes, length, generator=generator)
    if mode != "complementary":
        raise ValueError(f"unknown error-map mode {mode!r}")
    k = max(1, round(1.0 / (1.0 - mask_ratio)))
    rows: list[torch.Tensor] = []
    for _ in range(math.ceil(passes / k)):
        perm = torch.randperm(length, generator=generator)
        for j in range(k):
            if len(rows) == passes:
                break
            # removed patches get noise in [1, 2), kept ones [0, 1): kept sort first.
            row = 1.0 + torch.rand(length, generator=generator)
            keep = perm[(j * len_keep + torch.arange(len_keep)) % length]
            row[keep] -= 1.0
            rows.append(row)
    return torch.stack(rows)


@torch.no_grad()
def accumulate_errors(
    model: MaskedAutoencoderViT, imgs: torch.Tensor, noise: torch.Tensor, mask_ratio: float, batch_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Runs every (image, pass) and sums errors where removed.

    Args:
        imgs: [B, C, S, S] normalised inputs (on the model's device).
        noise: [B, P, L] masking noise per image and pass.

    Returns:
        err_sum [B, S, S]: summed per-pixel squared error in [0, 1] space over passes removing it;
        count [B, S, S]: in how many passes each pixel was removed.
    """
    c = model.config
    b, p, length = noise.shape
    s, g = imgs.shape[-1], imgs.shape[-1] // c.patch_size
    device = imgs.device
    err_sum = torch.zeros(b, s, s, device=device)
    count = torch.zeros(b, s, s, device=device)
    flat_img = torch.arange(b, device=device).repeat_interleave(p)
    flat_noise = noise.reshape(b * p, length).to(device)
    for start in range(0, b * p, batch_size):
        idx = flat_img[start : start + batch_size]
        x = imgs[idx]
        with autocast_for(device):
            _, pred, mask = model(x, mask_ratio=mask_ratio, noise=flat_noise[start : start + batch_size])
        pred = pred.float()
        if c.norm_pix_loss:
            # The model predicts per-patch normalised pixels; undo with the true patch statistics
            # (the standard way to view norm-pix MAE reconstructions).
            target = model.patchify(x)
            mu, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            pred = pred * (var + 1.0e-6) ** 0.5 + mu
        rec = denormalise(model.unpatchify(pred), c.mean, c.std)
        err = ((rec - denormalise(x, c.mean, c.std)) ** 2).mean(dim=1)  # [n, S, S]
        mask_px = mask.float().reshape(-1, g, g).repeat_interleave(c.patch_size, 1).repeat_interleave(c.patch_size, 2)
        err_sum.index_add_(0, idx, err * mask_px)
        count.index_add_(0, idx, mask_px)
    return err_sum, count


def tiles_for(height: int, width: int, tiles: str | int) -> int:
    """``auto``: 1 tile up to 600 px on the long side, 2 up to 1200 px, else 3."""
    if tiles == "auto":
        side = max(height, width)
        return 1 if side <= 600 else 2 if side <= 1200 else 3
    t = int(tiles)
    if t not in (1, 2, 3):
        raise ValueError(f"tiles must be auto, 1, 2 or 3; got {tiles!r}")
    return t


def tile_geometry(size: int, patch: int, tiles: int) -> tuple[int, int]:
    """(stride, working size): tiles overlap by about a quarter, rounded to whole patches."""
    overlap = max(patch, round(size / 4 / patch) * patch)
    stride = size - overlap
    return stride, size + (tiles - 1) * stride


@dataclass
class ErrorMapResult:
    """One image's map.

    Attributes:
        pixel_map: [H, W] float32 on the original pixel grid.
        work_map: [W, W] float32 on the (working) model square; 0 on padding.
        patch_map: [W/p, W/p] float32, mean over valid pixels per patch; NaN on all-padding patches.
        valid: [W, W] bool, False on padding.
        transform: working square <-> original pixels.
        tiles: tiles per side used.
        prepared: the preprocessed working image (its ``original_unit`` feeds the foreground mask).
    """

    pixel_map: np.ndarray
    work_map: np.ndarray
    patch_map: np.ndarray
    valid: np.ndarray
    transform: Transform
    tiles: int
    prepared: Prepared


def compute_errormaps(
    model: MaskedAutoencoderViT,
    images: list[np.ndarray],
    windows: list[tuple[float, float] | None] | None = None,
    params: ErrorMapParams | None = None,
) -> list[ErrorMapResult]:
    """Error maps for grayscale [H, W] images; all tiles and passes of all images in one batch."""
    params = params or ErrorMapParams()
    passes = params.num_passes()
    if not images:
        return []
    c = model.config
    device = next(model.parameters()).device
    windows = windows or [None] * len(images)
    batch: list[torch.Tensor] = []
    owners: list[tuple[int, int, int]] = []
    preps: list[Prepared] = []
    tile_counts: list[int] = []
    for i, (pixels, window) in enumerate(zip(images, windows)):
        h, w = np.shape(pixels)[:2]
        t = tiles_for(h, w, params.tiles)
        stride, work = tile_geometry(c.img_size, c.patch_size, t)
        prep = prepare(pixels, size=work, mode=params.preprocess, window=window, mean=c.mean, std=c.std)
        preps.append(prep)
        tile_counts.append(t)
        for ty in range(t):
            for tx in range(t):
                y, x = ty * stride, tx * stride
                if prep.valid[y : y + c.img_size, x : x + c.img_size].any():
                    batch.append(prep.tensor[:, y : y + c.img_size, x : x + c.img_size])
                    owners.append((i, y, x))
    imgs = torch.stack(batch).to(device)
    # One generator per image, seeded alike: an image's masks (so its map) do not depend on which
    # other images share the batch; its tiles draw successive mask sets.
    gens = [torch.Generator().manual_seed(int(params.seed)) for _ in preps]
    noise = torch.stack(
        [mask_noise(params.mode, passes, c.num_patches, params.mask_ratio, gens[i]) for i, _, _ in owners]
    )
    err_t, count_t = accumulate_errors(model, imgs, noise, params.mask_ratio, params.batch_size)
    err_sum, count = err_t.cpu().numpy(), count_t.cpu().numpy()

    sums = [np.zeros(p.valid.shape, np.float64) for p in preps]
    counts = [np.zeros(p.valid.shape, np.float64) for p in preps]
    for k, (i, y, x) in enumerate(owners):
        sums[i][y : y + c.img_size, x : x + c.img_size] += err_sum[k]
        counts[i][y : y + c.img_size, x : x + c.img_size] += count[k]
    return [_finish(sums[i], counts[i], preps[i], tile_counts[i], c.patch_size) for i in range(len(preps))]


def _finish(err_sum: np.ndarray, count: np.ndarray, prep: Prepared, tiles: int, patch: int) -> ErrorMapResult:
    valid = prep.valid
    with np.errstate(invalid="ignore", divide="ignore"):
        work = err_sum / count
    seen = valid & (count > 0)
    # A pixel never removed (possible only in reference mode: 0.25^10 per patch) takes the mean.
    fill = float(work[seen].mean()) if seen.any() else 0.0
    work = np.where(valid, np.where(count > 0, work, fill), 0.0).astype(np.float32)
    g = work.shape[0] // patch
    blocks_sum = (work * valid).reshape(g, patch, g, patch).sum(axis=(1, 3))
    blocks_n = valid.reshape(g, patch, g, patch).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        patch_map = np.where(blocks_n > 0, blocks_sum / np.maximum(blocks_n, 1), np.nan).astype(np.float32)
    tr = prep.transform
    pixel_map = np.maximum(resize(tr.crop_content(work), tr.orig_h, tr.orig_w), 0.0).astype(np.float32)
    return ErrorMapResult(pixel_map, work, patch_map, valid, tr, tiles, prep)


def compute_errormap(
    model: MaskedAutoencoderViT,
    pixels: np.ndarray,
    window: tuple[float, float] | None = None,
    params: ErrorMapParams | None = None,
) -> ErrorMapResult:
    """The map of one grayscale [H, W] image (see :func:`compute_errormaps`)."""
    return compute_errormaps(model, [pixels], [window], params)[0]
