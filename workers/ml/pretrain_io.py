"""Files of a pretraining run: weights in our checkpoint format, resumable state, metrics and the loss curve.

Weights are written in the format every part of the ML core reads: ``<stem>.safetensors`` (the
model's ``state_dict``) and ``<stem>.json`` (the ``MAEConfig`` fields) beside it. The resumable
state (``last.pt``) additionally holds the optimizer, the step and the random generators, and is
only ever read by ``--resume``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .model import MAEConfig, MaskedAutoencoderViT


def save_weights(model: MaskedAutoencoderViT, stem: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Writes ``<stem>.safetensors`` (optionally cast, e.g. to fp16) and ``<stem>.json``; returns the weights path.

    Both files are written to temporary names first and renamed, so a reader never sees half a file.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    state = {}
    for key, value in model.state_dict().items():
        t = value.detach().to("cpu")
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        state[key] = t.contiguous()
    weights = stem.with_suffix(".safetensors")
    config = stem.with_suffix(".json")
    save_file(state, str(weights) + ".tmp")
    os.replace(str(weights) + ".tmp", weights)
    config.with_suffix(".json.tmp").write_text(model.config.to_json() + "\n")
    os.replace(config.with_suffix(".json.tmp"), config)
    return weights


def load_weights(path: str | Path) -> MaskedAutoencoderViT:
    """Rebuilds a model from ``X.safetensors`` + ``X.json`` (weights kept in fp32 whatever was stored).

    Uses the ML engine's ``checkpoint.load_model`` when it is available, so every tool reads
    checkpoints one way; falls back to reading the two files directly.
    """
    path = Path(path)
    try:
        from .checkpoint import load_model
    except ImportError:  # a checkout without the ML engine's loader: read the two files below
        pass
    else:
        return load_model(path).float()
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    config = json.loads(stem.with_suffix(".json").read_text())
    config.pop("meta", None)
    model = MaskedAutoencoderViT(MAEConfig.from_dict(config))
    state = {k: v.float() for k, v in load_file(str(stem.with_suffix(".safetensors"))).items()}
    model.load_state_dict(state)
    return model


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Atomically writes the resumable training state."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """Atomically writes the metrics JSON (readable while the run goes on)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(tmp, path)


def plot_loss(path: Path, steps: list[int], losses: list[float], epoch_ends: list[tuple[int, float]]) -> None:
    """Loss curve PNG: per-step loss (light), its running mean, and each epoch's mean loss (dots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if steps:
        ax.plot(steps, losses, color="#9ab", linewidth=0.6, label="step loss")
        k = max(1, len(losses) // 50)
        smooth = [
            sum(losses[max(0, i - k + 1) : i + 1]) / len(losses[max(0, i - k + 1) : i + 1]) for i in range(len(losses))
        ]
        ax.plot(steps, smooth, color="#146", linewidth=1.4, label=f"running mean ({k} steps)")
    if epoch_ends:
        ax.plot([s for s, _ in epoch_ends], [v for _, v in epoch_ends], "o", color="#c41", ms=3, label="epoch mean")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("masked-patch MSE (normalised pixels)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
