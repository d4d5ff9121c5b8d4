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
        cos, sin = math.cos(angle), math.sin(angle)
        # Pixel offset from the crop centre for an output coordinate o in [-1, 1]^2:
        # rotation @ diag(flip * cw / 2, ch / 2) @ o.
        m = np.array([[cos, -sin], [sin, cos]]) @ np.diag([flip * cw / 2, ch / 2])
        sx, sy = 2.0 / w, 2.0 / h
        theta = np.array(
            [[sx * m[0, 0], sx * m[0, 1], sx * cx - 1.0], [sy * m[1, 0], sy * m[1, 1], sy * cy - 1.0]],
            dtype=np.float32,
        )
        return torch.from_numpy(theta)

    def __call__(self, arr: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """arr: [H, W] in [0, 1] -> [1, S, S] in [0, 1]."""
        h, w = arr.shape
        src = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None, None]
        grid = F.affine_grid(self.theta(h, w, rng)[None], [1, 1, self.img_size, self.img_size], align_corners=False)
        out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        gamma = math.exp(rng.uniform(math.log(self.gamma[0]), math.log(self.gamma[1])))
        contrast = 1.0 + rng.uniform(-self.contrast, self.contrast)
        bright = rng.uniform(-self.brightness, self.brightness)
        out = out.clamp(0.0, 1.0).pow(gamma)
        return ((out - 0.5) * contrast + 0.5 + bright).clamp(0.0, 1.0)


def normalize(
    batch: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """[N, 1, H, W] in [0, 1] -> [N, C, H, W] model input: grey replicated to C = len(mean), then (x - mean) / std."""
    m = torch.tensor(mean, dtype=batch.dtype, device=batch.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=batch.dtype, device=batch.device).view(1, -1, 1, 1)
    return (batch.expand(-1, m.shape[1], -1, -1) - m) / s
