"""The one place the tasks call the ML engine: a batch of decoded images -> embeddings, maps, boxes.

Keeping the calls here means the Celery task (``analysis.py``) is about ids, rows and retries,
and the benchmark can time exactly the same ML work with and without the worker around it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Error-map and box settings used by the pipeline. Their hash is stored with every ErrorMap and
# Suggestion, so changing a value here re-analyses images instead of mixing two settings.
DEFAULT_PARAMS: dict[str, Any] = {
    "mode": "complementary",
    "passes": 8,
    "mask_ratio": 0.75,
    "seed": 0,
    "tiles": "auto",
    "preprocess": "pad",
    # Embedding pooling (workers/ml/embed.py): a change re-analyses images, so a project never
    # trains heads on a mix of two embeddings.
    "pooling": "meanmax",
    "max_boxes": 5,
    # When the box finder's strict thresholds (z 3 / 2) find nothing, one candidate found with these
    # looser ones is still offered, so every image with a clearly unusual region gets something to
    # accept or reject; its lower score says it is a weak candidate. None disables the fallback.
    "fallback_z": [2.0, 1.5],
}


@dataclass
class Analysis:
    """What the engine computes for one image.

    Attributes:
        embedding: [D] float16, L2-normalised.
        error_map: [H, W] float32 on the original pixel grid (squared error in [0, 1] intensity space).
        image_score: how unusual the whole image is (higher = more unusual).
        boxes: ``{"x0", "y0", "x1", "y1", "score"}`` in original pixels, best first.
    """

    embedding: np.ndarray
    error_map: np.ndarray
    image_score: float
    boxes: list[dict[str, float]] = field(default_factory=list)


def analysis_params(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The pipeline's parameters with a project's overrides (unknown keys refused)."""
    params = dict(DEFAULT_PARAMS)
    for key, value in (overrides or {}).items():
        if key not in DEFAULT_PARAMS:
            raise ValueError(f"unknown analysis parameter {key!r}")
        params[key] = value
    return params


def params_hash(params: dict[str, Any]) -> str:
    """A stable 16-hex-digit digest of ``params`` (key order does not matter)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def errormap_params(params: dict[str, Any]) -> Any:
    from workers.ml.errormap import ErrorMapParams

    keys = {f for f in ErrorMapParams.__dataclass_fields__}
    return ErrorMapParams(**{k: v for k, v in params.items() if k in keys})


def embed(
    model: Any,
    images: list[np.ndarray],
    windows: list[tuple[float, float] | None],
    preprocess: str = "pad",
    pooling: str = "meanmax",
) -> np.ndarray:
    """Embeddings of the unmasked encoder: [N, D'] float16, L2-normalised rows (D' = 2 x width for
    ``meanmax``)."""
    import torch

    from workers.ml.embed import embed as embed_batch
    from workers.ml.preprocess import prepare

    c = model.config
    tensors = [
        prepare(p, size=c.img_size, mode=preprocess, window=w, mean=c.mean, std=c.std).tensor
        for p, w in zip(images, windows)
    ]
    return embed_batch(model, torch.stack(tensors), pooling=pooling)


def boxes_for(
    result: Any, max_boxes: int, fallback_z: list[float] | None = None
) -> tuple[list[dict[str, float]], float]:
    """Boxes (original pixels, best first) and the image score of one error-map result."""
    from workers.ml.boxes import BoxParams
    from workers.ml.boxes import analyse as find_boxes

    found, score, _ = find_boxes(result.pixel_map, result.prepared.original_unit, BoxParams(top_k=max_boxes))
    if not found and fallback_z:
        z_high, z_low = (float(v) for v in fallback_z)
        relaxed = BoxParams(top_k=1, z_high=z_high, z_low=z_low)
        found, _, _ = find_boxes(result.pixel_map, result.prepared.original_unit, relaxed)
    boxes = [
        {"x0": float(b.x0), "y0": float(b.y0), "x1": float(b.x1), "y1": float(b.y1), "score": float(b.score)}
        for b in found
    ]
    return boxes, float(score)


def analyse(
    model: Any, images: list[np.ndarray], windows: list[tuple[float, float] | None], params: dict[str, Any]
) -> list[Analysis]:
    """Runs the whole analysis for a batch: one embedding pass and one batched error-map pass."""
    from workers.ml.errormap import compute_errormaps

    vectors = embed(model, images, windows, str(params.get("preprocess", "pad")), str(params.get("pooling", "meanmax")))
    maps = compute_errormaps(model, images, windows, errormap_params(params))
    out = []
    for vector, result in zip(vectors, maps):
        boxes, score = boxes_for(result, int(params.get("max_boxes", 5)), params.get("fallback_z"))
        out.append(Analysis(vector, result.pixel_map, score, boxes))
    return out


def describe(params: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy of the parameters (stored on the ErrorMap row)."""
    return json.loads(json.dumps(params, default=str))


__all__ = ["DEFAULT_PARAMS", "Analysis", "analyse", "analysis_params", "describe", "params_hash"]
