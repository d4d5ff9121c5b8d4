"""Grayscale radiograph -> model input, with an exact map between model and original pixels.

Two geometries:

* ``pad`` (default): resize keeping the aspect ratio so the long side fills the square, centre,
  pad the rest. Nothing is distorted, and a box found on the model grid maps back exactly.
* ``stretch``: resize each axis to the square (what the SKELEX / HF ``ViTImageProcessor`` does).

Intensities: the stored pixels (``uint16``, bone bright) are scaled to [0, 1] by the image's
display window when one is given (the radiologist's view of the image, and what DICOM ingest
computes), else by the image's own min/max. Values outside are clipped. Then the grey channel is
replicated to 3 channels and normalised by the model's mean/std (ImageNet by default), as SKELEX
does. The [0, 1] image is kept too: error maps are measured in that space.

Coordinates are continuous pixel-edge coordinates: pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)``,
so a box ``(x0, y0, x1, y1)`` on the original image maps to ``(x0 * sx + px, ...)`` on the model
grid and back by the inverse, with no half-pixel drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .model import IMAGENET_MEAN, IMAGENET_STD

MODES = ("pad", "stretch")


@dataclass(frozen=True)
class Transform:
    """Original image ``[orig_h, orig_w]`` <-> model square ``[size, size]``.

    ``model = original * scale + offset`` per axis; the content occupies
    ``[offset_x, offset_x + content_w) x [offset_y, offset_y + content_h)`` of the square.
    """

    orig_h: int
    orig_w: int
    size: int
    content_h: int
    content_w: int
    offset_y: int
    offset_x: int

    @property
    def scale_x(self) -> float:
        return self.content_w / self.orig_w

    @property
    def scale_y(self) -> float:
        return self.content_h / self.orig_h

    def to_model(self, boxes: np.ndarray) -> np.ndarray:
        """boxes [..., 4] as (x0, y0, x1, y1) in original pixels -> model-grid pixels (float64)."""
        b = np.asarray(boxes, dtype=np.float64)
        out = b.copy()
        out[..., 0::2] = b[..., 0::2] * self.scale_x + self.offset_x
        out[..., 1::2] = b[..., 1::2] * self.scale_y + self.offset_y
        return out

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """boxes [..., 4] on the model grid -> original pixels (float64), clipped to the image."""
        b = np.asarray(boxes, dtype=np.float64)
        out = b.copy()
        out[..., 0::2] = np.clip((b[..., 0::2] - self.offset_x) / self.scale_x, 0, self.orig_w)
        out[..., 1::2] = np.clip((b[..., 1::2] - self.offset_y) / self.scale_y, 0, self.orig_h)
        return out

    def valid_mask(self) -> np.ndarray:
        """[size, size] bool: True where the square shows image content, False on padding."""
        m = np.zeros((self.size, self.size), dtype=bool)
        m[self.offset_y : self.offset_y + self.content_h, self.offset_x : self.offset_x + self.content_w] = True
        return m

    def crop_content(self, arr: np.ndarray) -> np.ndarray:
        """The content region of a [..., size, size] array (padding dropped)."""
        return arr[..., self.offset_y : self.offset_y + self.content_h, self.offset_x : self.offset_x + self.content_w]


def make_transform(orig_h: int, orig_w: int, size: int, mode: str = "pad") -> Transform:
    """The geometry of putting an ``orig_h x orig_w`` image into a ``size`` square."""
    if mode not in MODES:
        raise ValueError(f"unknown preprocessing mode {mode!r}; use one of {', '.join(MODES)}")
    if orig_h < 1 or orig_w < 1:
        raise ValueError(f"empty image {orig_h}x{orig_w}")
    if mode == "stretch":
        return Transform(orig_h, orig_w, size, size, size, 0, 0)
    scale = size / max(orig_h, orig_w)
    ch = min(size, max(1, round(orig_h * scale)))
    cw = min(size, max(1, round(orig_w * scale)))
    return Transform(orig_h, orig_w, size, ch, cw, (size - ch) // 2, (size - cw) // 2)


def to_unit(pixels: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """[H, W] stored pixels -> float32 [0, 1] by the window (center, width) or the image min/max."""
    img = np.asarray(pixels, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"expected a grayscale [H, W] image, got shape {img.shape}")
    if window is not None and float(window[1]) > 0:
        lo = float(window[0]) - float(window[1]) / 2.0
        hi = float(window[0]) + float(window[1]) / 2.0
    else:
        lo, hi = float(np.min(img)), float(np.max(img))
    if hi <= lo:
        return np.zeros_like(img)
    return np.clip((img - lo) / (hi - lo), 0.0, 1.0)


@dataclass
class Prepared:
    """One image ready for the model.

    Attributes:
        tensor: [3, S, S] float32, normalised (mean/std), padding at the value of intensity 0.
        unit: [S, S] float32 in [0, 1]: the resized image before normalisation (0 on padding).
        valid: [S, S] bool, False on padding.
        transform: the model <-> original geometry.
        original_unit: [H, W] float32 in [0, 1]: the original grid, for foreground masks.
    """

    tensor: torch.Tensor
    unit: np.ndarray
    valid: np.ndarray
    transform: Transform
    original_unit: np.ndarray


def resize(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Antialiased bilinear resize of a float [H, W] array (area-like when shrinking)."""
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None, None]
    if (height, width) == tuple(arr.shape):
        return t[0, 0].numpy().copy()
    shrink = height < arr.shape[0] or width < arr.shape[1]
    out = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False, antialias=shrink)
    return out[0, 0].numpy()


def prepare(
    pixels: np.ndarray,
    size: int = 224,
    mode: str = "pad",
    window: tuple[float, float] | None = None,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> Prepared:
    """Grayscale [H, W] (uint16 or float) -> :class:`Prepared` for a ``size`` square model input."""
    unit_orig = to_unit(pixels, window)
    tr = make_transform(unit_orig.shape[0], unit_orig.shape[1], size=size, mode=mode)
    content = np.clip(resize(unit_orig, tr.content_h, tr.content_w), 0.0, 1.0)
    unit = np.zeros((size, size), dtype=np.float32)
    unit[tr.offset_y : tr.offset_y + tr.content_h, tr.offset_x : tr.offset_x + tr.content_w] = content
    return Prepared(normalise(unit, mean, std), unit, tr.valid_mask(), tr, unit_orig)


def normalise(unit: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """[S, S] in [0, 1] -> [C, S, S] with the grey channel replicated, then (x - mean) / std."""
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]
    x = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))[None].expand(len(mean), -1, -1)
    return (x - m) / s


def denormalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Inverse of :func:`normalise` on [N, C, H, W] -> [N, C, H, W] in [0, 1] intensity space."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device)[None, :, None, None]
    s = torch.tensor(std, dtype=x.dtype, device=x.device)[None, :, None, None]
    return x * s + m
