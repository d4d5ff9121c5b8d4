"""The analysis pipeline's settings: what the worker computes per image, and their digests.

They live on the web side because both sides need them: the worker (``workers/tasks/engine.py``)
analyses with them and stores their hash with every error map, suggestion and embedding; the web
side (``manage.py reanalyse``, ``services.outdated_images``) compares stored hashes with the current
ones to find images analysed by an older release. Plain data, no ML imports.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

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
    # Tiles per side of each scale the embedding reads (workers/ml/embed.py, embed_images): the
    # whole image at 224 px, then 2 x 2 and 3 x 3 tiles, so small findings count in the vector.
    "embed_scales": [1, 2, 3],
    "max_boxes": 5,
    # When the box finder's strict thresholds (z 3 / 2) find nothing, one candidate found with these
    # looser ones is still offered, so every image with a clearly unusual region gets something to
    # accept or reject; its lower score says it is a weak candidate. None disables the fallback.
    "fallback_z": [2.0, 1.5],
}


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


def embedding_hash(params: dict[str, Any]) -> str:
    """Digest of the settings an embedding depends on (stored with it): vectors of two readouts may
    have the same length, so only this tells a retrain which ones belong together."""
    return params_hash({k: params.get(k) for k in ("preprocess", "pooling", "embed_scales")})
