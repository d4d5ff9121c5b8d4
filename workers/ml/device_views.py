"""Augmented views made on the training device, a whole batch at a time, for when the GPU outruns the CPU.

A data loader builds one view per sample on the CPU (``augment.RadiographAugment``, about 3.6 ms
each). That is fine for CPU training, where the model step costs far more, but a GPU trains a
ViT-tiny MAE on thousands of images a second and would wait on 16 loader processes. Here every
cached image is put on the device once, top-left in a zero canvas of the largest long side, and a
batch of views is one gather, one ``affine_grid`` and one ``grid_sample``.

The views have the same distribution as ``RadiographAugment``'s (crop, rotation, flip, letterbox,
intensity jitter), drawn by ``RadiographAugment.draw_batch`` from one generator per batch; they are
not the same samples as the CPU path's for a seed (that draws one generator per sample).

Why the canvas gives the same pixels: with ``align_corners=False`` the image-normalised coordinate
u maps to pixel-edge coordinate x = (u + 1) * w / 2, and the canvas-normalised one is
2 * x / L - 1, so a canvas theta is the image theta scaled by w / L (rows of x) and h / L (rows of
y) with w / L - 1 (and h / L - 1) added to the translation. Outside the image the canvas is 0,
which is what ``padding_mode="zeros"`` reads outside an image of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .augment import RadiographAugment, jitter
from .datacache import CacheEntry, load_cached


def canvas_thetas(theta: np.ndarray, heights: np.ndarray, widths: np.ndarray, side: int) -> np.ndarray:
    """Image-normalised [B, 2, 3] thetas -> the same maps on a ``side`` x ``side`` canvas holding the image top-left."""
    out = theta.astype(np.float32).copy()
    for row, extent in ((0, np.asarray(widths, np.float32)), (1, np.asarray(heights, np.float32))):
        k = extent / side
        out[:, row, :] *= k[:, None]
        out[:, row, 2] += k - 1.0
    return out


class DeviceViews:
    """All cached images resident on ``device``; ``batch`` returns [B, 1, S, S] augmented views in [0, 1]."""

    def __init__(
        self,
        entries: Sequence[CacheEntry],
        augment: RadiographAugment,
        device: torch.device,
        dtype: torch.dtype = torch.float16,
    ) -> None:
        if not entries:
            raise ValueError("no images to put on the device")
        self.augment = augment
        self.device = device
        self.side = max(max(e.height, e.width) for e in entries)
        self.heights = np.array([e.height for e in entries])
        self.widths = np.array([e.width for e in entries])
        canvas = torch.zeros((len(entries), 1, self.side, self.side), dtype=dtype)
        for i, entry in enumerate(entries):
            arr = load_cached(entry)
            canvas[i, 0, : arr.shape[0], : arr.shape[1]] = torch.from_numpy(arr)
        self.canvas = canvas.to(device)

    def __len__(self) -> int:
        return len(self.heights)

    @property
    def nbytes(self) -> int:
        return self.canvas.numel() * self.canvas.element_size()

    def views(self, index: np.ndarray, params: dict[str, np.ndarray]) -> torch.Tensor:
        """The views of images ``index`` for parameters from ``RadiographAugment.draw_batch``."""
        theta = canvas_thetas(params["theta"], self.heights[index], self.widths[index], self.side)
        dev = self.device
        src = self.canvas[torch.as_tensor(index, device=dev)].float()
        size = self.augment.img_size
        grid = F.affine_grid(torch.from_numpy(theta).to(dev), [len(index), 1, size, size], align_corners=False)
        out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        jit = {k: torch.as_tensor(params[k], dtype=torch.float32, device=dev) for k in ("gamma", "contrast", "bright")}
        return jitter(out, jit["gamma"], jit["contrast"], jit["bright"])

    def batch(self, index: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """Fresh random views of images ``index`` (a numpy array of positions in ``entries``)."""
        return self.views(index, self.augment.draw_batch(self.heights[index], self.widths[index], rng))
