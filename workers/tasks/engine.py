"""The one place the tasks call the ML engine: a batch of decoded images -> embeddings, maps, boxes.

Keeping the calls here means the Celery task (``analysis.py``) is about ids, rows and retries,
and the benchmark can time exactly the same ML work with and without the worker around it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skelex_web.learning.pipeline import DEFAULT_PARAMS, analysis_params, embedding_hash, params_hash


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


def errormap_params(params: dict[str, Any]) -> Any:
    from workers.ml.errormap import ErrorMapParams

    keys = {f for f in ErrorMapParams.__dataclass_fields__}
    return ErrorMapParams(**{k: v for k, v in params.items() if k in keys})


def embed(
    model: Any, images: list[np.ndarray], windows: list[tuple[float, float] | None], params: dict[str, Any]
) -> np.ndarray:
    """Embeddings of the unmasked encoder with the pipeline's readout (``preprocess``, ``pooling``,
    ``embed_scales`` of ``params``): [N, D'] float16, L2-normalised rows (D' = 2 x width for ``meanmax``)."""
    from workers.ml.embed import embed_images

    return embed_images(
        model,
        images,
        windows,
        preprocess=str(params["preprocess"]),
        pooling=str(params["pooling"]),
        scales=params["embed_scales"],
    )


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

    vectors = embed(model, images, windows, params)
    maps = compute_errormaps(model, images, windows, errormap_params(params))
    out = []
    for vector, result in zip(vectors, maps):
        boxes, score = boxes_for(result, int(params.get("max_boxes", 5)), params.get("fallback_z"))
        out.append(Analysis(vector, result.pixel_map, score, boxes))
    return out


def describe(params: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy of the parameters (stored on the ErrorMap row)."""
    return json.loads(json.dumps(params, default=str))


__all__ = ["DEFAULT_PARAMS", "Analysis", "analyse", "analysis_params", "describe", "embedding_hash", "params_hash"]
