"""Builders shared by the task, event and pipeline tests: a tiny random backbone and stored images.

The backbone is random (tests never depend on a trained model's quality), tiny (img 32, patch 8,
depth 2) so a CPU analyses an image in milliseconds.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

TINY = dict(
    img_size=32,
    patch_size=8,
    embed_dim=32,
    depth=2,
    num_heads=2,
    decoder_embed_dim=32,
    decoder_depth=1,
    decoder_num_heads=2,
)


def tiny_checkpoint(folder: Path, seed: int = 0, name: str = "tiny") -> Path:
    """Writes a random tiny MAE checkpoint (``name.safetensors`` + ``name.json``) and returns its path."""
    import torch

    from workers.ml.checkpoint import save_checkpoint
    from workers.ml.model import create_model

    torch.manual_seed(seed)
    model = create_model("mae_vit_tiny_patch16", **TINY)
    return save_checkpoint(model, Path(folder) / f"{name}.safetensors", metadata={"source": "tests, random"})


def radiograph(seed: int, height: int = 64, width: int = 48) -> np.ndarray:
    """A radiograph-like uint16 [H, W]: dark air, a bright bone band, noise, a dense spot."""
    rng = np.random.default_rng(seed)
    img = rng.normal(6000, 800, size=(height, width))
    band = slice(width // 3, 2 * width // 3)
    img[:, band] += 30000
    cy, cx = rng.integers(8, height - 8), rng.integers(band.start, band.stop)
    yy, xx = np.mgrid[:height, :width]
    spread = 2.0 * (max(3.0, min(height, width) / 20.0)) ** 2  # a finding a few percent of the image wide
    img += 20000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / spread)
    return np.clip(img, 0, 65535).astype(np.uint16)


def png16(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(pixels.astype(np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def stored_image(
    project: Any,
    media_root: Path,
    seed: int,
    data: bytes | None = None,
    using: str = "default",
    height: int = 64,
    width: int = 48,
    **fields: Any,
) -> Any:
    """An ``Image`` row whose original and display files exist under ``media_root``.

    ``data`` replaces the display PNG's bytes (e.g. garbage for a corrupt image); ``using`` is
    the database alias to write to.
    """
    from skelex_web.studies.models import Image, ImageStatus

    pixels = radiograph(seed, height, width)
    payload = png16(pixels) if data is None else data
    digest = hashlib.sha256(payload + str(seed).encode()).hexdigest()
    for sub in ("originals", "display"):
        (Path(media_root) / sub).mkdir(parents=True, exist_ok=True)
        (Path(media_root) / sub / f"{digest[:16]}.png").write_bytes(payload)
    defaults = dict(
        project=project,
        file=f"originals/{digest[:16]}.png",
        display=f"display/{digest[:16]}.png",
        name=f"phantom-{seed}.png",
        file_format="png",
        sha256=digest,
        pixel_sha256=digest,
        rows=pixels.shape[0],
        cols=pixels.shape[1],
        bits=16,
        status=ImageStatus.QUEUED,
    )
    defaults.update(fields)
    return Image.objects.using(using).create(**defaults)
