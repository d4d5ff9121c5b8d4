"""Backbones loaded once per worker process and kept, keyed by ``ModelVersion`` id.

Loading a checkpoint costs seconds (and GPU memory); a worker analyses thousands of images with
the same backbone, so the model stays resident. A small LRU bound keeps a worker that serves
projects with different backbones from holding every model ever used. Thread-safe: the embedded
worker runs tasks in threads of the web process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

MAX_MODELS = 2

_lock = threading.Lock()
_models: OrderedDict[tuple[int, str], Any] = OrderedDict()
loads = 0  # how many times a checkpoint was actually read (tests and the benchmark watch it)


def get_model(model_version_id: int, checkpoint: Path, device: str | None = None) -> Any:
    """The model of ``model_version_id``, loaded from ``checkpoint`` on first use.

    Args:
        model_version_id: cache key (with the checkpoint path, so a moved file reloads).
        checkpoint: the ``.safetensors`` file.
        device: ``cuda``, ``cpu`` or None (CUDA when present).
    """
    global loads
    from workers.ml.checkpoint import load_model

    key = (int(model_version_id), str(checkpoint))
    with _lock:
        model = _models.get(key)
        if model is not None:
            _models.move_to_end(key)
            return model
        model = load_model(checkpoint, device=device or None)
        loads += 1
        _models[key] = model
        while len(_models) > MAX_MODELS:
            _models.popitem(last=False)
        return model


def clear() -> None:
    """Forgets every loaded model (tests; a worker never needs it)."""
    with _lock:
        _models.clear()
