"""Augmentation for radiograph pretraining: one affine resample per sample, then mild intensity jitter.

Crop, rotation and flip are folded into a single ``grid_sample`` call, so a sample costs one
bilinear resample of the model input size however large the cached image is. The views:

- random resized crop (area share and aspect ratio drawn as in the usual ImageNet recipe, but
  with a larger minimum area: a radiograph's findings are small and context matters),
- a small rotation (positioning varies by a few degrees; large ones never occur in practice),
- horizontal flip (left and right limbs mirror each other; side markers become mirrored, which
  is harmless to a reconstruction objective), never vertical flips,
- with probability ``letterbox_p`` the whole image, aspect preserved, centred and padded with 0
  (black): exactly the view inference gives the model (see ``preprocess.py``),
- brightness, contrast and gamma jitter in the [0, 1] intensity space, clipped to [0, 1].

Input: a [H, W] float array in [0, 1] (the cache's per-image min/max scaling). Output: a
[1, S, S] float tensor in [0, 1]; ``normalize`` turns a batch of those into the model's input
(grey replicated to 3 channels, ImageNet mean/std).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .model import IMAGENET_MEAN, IMAGENET_STD


@dataclass
class RadiographAugment:
    """Random view of a [0, 1] radiograph as a [1, S, S] tensor; all randomness comes from ``rng``."""

    img_size: int = 224
    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    max_rotation_deg: float = 10.0
    hflip_p: float = 0.5
    letterbox_p: float = 0.25
    brightness: float = 0.08
    contrast: float = 0.15
    gamma: tuple[float, float] = (0.8, 1.25)

    def _crop(self, h: int, w: int, rng: np.random.Generator) -> tuple[float, float, float, float]:
        """Centre (cx, cy) and size (cw, ch) of the crop in pixels; whole letterboxed image as fallback."""
        if rng.random() >= self.letterbox_p:
            area = h * w
            log_r = (math.log(self.ratio[0]), math.log(self.ratio[1]))
            for _ in range(10):
                share = rng.uniform(*self.scale)
                aspect = math.exp(rng.uniform(*log_r))
                cw = math.sqrt(share * area * aspect)
                ch = math.sqrt(share * area / aspect)
                if cw <= w and ch <= h:
                    cx = rng.uniform(cw / 2, w - cw / 2)
                    cy = rng.uniform(ch / 2, h - ch / 2)
                    return cx, cy, cw, ch
        side = float(max(h, w))
        return w / 2, h / 2, side, side

    def theta(self, h: int, w: int, rng: np.random.Generator) -> torch.Tensor:
        """The [2, 3] affine map from output to input normalised coordinates (``F.affine_grid`` convention)."""
        cx, cy, cw, ch = self._crop(h, w, rng)
        angle = math.radians(rng.uniform(-self.max_rotation_deg, self.max_rotation_deg))
        flip = -1.0 if rng.random() < self.hflip_p else 1.0
        arrays = (np.array([v], dtype=np.float64) for v in (cx, cy, cw, ch, angle, flip, h, w))
        return torch.from_numpy(affine_thetas(*arrays)[0])

    def draw_batch(self, heights: np.ndarray, widths: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The random parameters of len(heights) views at once (the same distributions as ``__call__``).

        Used where views are made a whole batch at a time (``device_views.py``): one vectorised draw
        instead of a generator per sample. Returns ``theta`` [B, 2, 3] (image-normalised, as
        ``theta``) and ``gamma``, ``contrast``, ``bright`` [B].
        """
        h = np.asarray(heights, dtype=np.float64)
        w = np.asarray(widths, dtype=np.float64)
        n = len(h)
        tries = 10
        crop = rng.random(n) >= self.letterbox_p
        share = rng.uniform(*self.scale, size=(n, tries))
        aspect = np.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), size=(n, tries)))
        cw_all = np.sqrt(share * (h * w)[:, None] * aspect)
        ch_all = np.sqrt(share * (h * w)[:, None] / aspect)
        fits = (cw_all <= w[:, None]) & (ch_all <= h[:, None])
        first = fits.argmax(axis=1)
        crop &= fits.any(axis=1)  # ten misses: the letterboxed whole image, as in ``_crop``
        rows = np.arange(n)
        side = np.maximum(h, w)
        cw = np.where(crop, cw_all[rows, first], side)
        ch = np.where(crop, ch_all[rows, first], side)
        u = rng.random((n, 2))
        cx = np.where(crop, cw / 2 + u[:, 0] * (w - cw), w / 2)
        cy = np.where(crop, ch / 2 + u[:, 1] * (h - ch), h / 2)
        angle = np.radians(rng.uniform(-self.max_rotation_deg, self.max_rotation_deg, size=n))
        flip = np.where(rng.random(n) < self.hflip_p, -1.0, 1.0)
        return {
            "theta": affine_thetas(cx, cy, cw, ch, angle, flip, h, w),
            "gamma": np.exp(rng.uniform(math.log(self.gamma[0]), math.log(self.gamma[1]), size=n)),
            "contrast": 1.0 + rng.uniform(-self.contrast, self.contrast, size=n),
            "bright": rng.uniform(-self.brightness, self.brightness, size=n),
        }

    def __call__(self, arr: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """arr: [H, W] in [0, 1] -> [1, S, S] in [0, 1]."""
        h, w = arr.shape
        src = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None, None]
        grid = F.affine_grid(self.theta(h, w, rng)[None], [1, 1, self.img_size, self.img_size], align_corners=False)
        out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        gamma = math.exp(rng.uniform(math.log(self.gamma[0]), math.log(self.gamma[1])))
        contrast = 1.0 + rng.uniform(-self.contrast, self.contrast)
        bright = rng.uniform(-self.brightness, self.brightness)
        params = (torch.tensor([v], dtype=torch.float32) for v in (gamma, contrast, bright))
        return jitter(out[None], *params)[0]


def affine_thetas(
    cx: np.ndarray,
    cy: np.ndarray,
    cw: np.ndarray,
    ch: np.ndarray,
    angle: np.ndarray,
    flip: np.ndarray,
    h: np.ndarray,
    w: np.ndarray,
) -> np.ndarray:
    """[B, 2, 3] float32 maps from output to input normalised coordinates (``F.affine_grid``'s convention).

    A view is a crop of size (cw, ch) pixels centred on (cx, cy), rotated by ``angle`` (radians) and
    mirrored when ``flip`` is -1; the pixel offset from the crop centre for an output coordinate o in
    [-1, 1]^2 is rotation @ diag(flip * cw / 2, ch / 2) @ o, then scaled to the image's [-1, 1].
    """
    cos, sin = np.cos(angle), np.sin(angle)
    a, b = flip * cw / 2, ch / 2
    sx, sy = 2.0 / w, 2.0 / h
    theta = np.empty((len(cx), 2, 3), dtype=np.float32)
    theta[:, 0, 0] = sx * cos * a
    theta[:, 0, 1] = -sx * sin * b
    theta[:, 0, 2] = sx * cx - 1.0
    theta[:, 1, 0] = sy * sin * a
    theta[:, 1, 1] = sy * cos * b
    theta[:, 1, 2] = sy * cy - 1.0
    return theta


def jitter(views: torch.Tensor, gamma: torch.Tensor, contrast: torch.Tensor, bright: torch.Tensor) -> torch.Tensor:
    """Gamma, contrast and brightness per view ([B] each) on [B, 1, S, S] views in [0, 1]; result clipped to [0, 1]."""
    g, c, b = (t.to(views.dtype).view(-1, 1, 1, 1) for t in (gamma, contrast, bright))
    out = views.clamp(0.0, 1.0).pow(g)
    return ((out - 0.5) * c + 0.5 + b).clamp(0.0, 1.0)


def normalize(
    batch: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """[N, 1, H, W] in [0, 1] -> [N, C, H, W] model input: grey replicated to C = len(mean), then (x - mean) / std."""
    m = torch.tensor(mean, dtype=batch.dtype, device=batch.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=batch.dtype, device=batch.device).view(1, -1, 1, 1)
    return (batch.expand(-1, m.shape[1], -1, -1) - m) / s
