"""Fixed 2-D sine-cosine position embeddings, as in the MAE paper and the HF ViTMAE port.

The embedding of a grid of ``g x g`` patches has width ``dim``: half encodes the row, half the
column, each half as ``[sin(pos * omega), cos(pos * omega)]`` with ``omega = 1 / 10000^(2i/d)``.
"""

from __future__ import annotations

import numpy as np


def _sincos_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    """pos: [M] -> [M, dim]."""
    if dim % 2:
        raise ValueError(f"embedding width must be even, got {dim}")
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim: int, grid_size: int, cls_token: bool = True) -> np.ndarray:
    """Returns ``[(1 + g*g) or g*g, dim]`` float32; the CLS row (if any) is all zeros."""
    gh = np.arange(grid_size, dtype=np.float64)
    gw = np.arange(grid_size, dtype=np.float64)
    # Column index first, as the reference implementation does (w varies fastest in meshgrid).
    grid = np.stack(np.meshgrid(gw, gh), axis=0).reshape(2, -1)
    emb = np.concatenate([_sincos_1d(dim // 2, grid[0]), _sincos_1d(dim // 2, grid[1])], axis=1)
    if cls_token:
        emb = np.concatenate([np.zeros((1, dim)), emb], axis=0)
    return emb.astype(np.float32)
