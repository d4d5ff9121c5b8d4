"""Our checkpoint format: ``X.safetensors`` (weights) + ``X.json`` beside it (config + metadata).

Why two files: safetensors holds tensors only and loads without executing code (unlike pickled
``.pt`` files), and a JSON sidecar is readable by people and by the web app (which never imports
torch) to show the variant, image size, normalisation and provenance of a model version.

Sidecar shape (a bare ``MAEConfig`` JSON, as pretraining runs write, is read too)::

    {"format": "skelex-mae", "format_version": 1, "dtype": "float16" | "float32",
     "config": {...MAEConfig...}, "metadata": {...free-form, e.g. source, converted_from...}}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .model import MAEConfig, MaskedAutoencoderViT, pick_device

FORMAT = "skelex-mae"
FORMAT_VERSION = 1
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not fit the model its config describes."""


def sidecar_path(path: str | Path) -> Path:
    """``X.safetensors`` -> ``X.json``."""
    return Path(path).with_suffix(".json")


def save_checkpoint(
    model: MaskedAutoencoderViT,
    path: str | Path,
    dtype: str = "float32",
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Writes ``path`` (must end in ``.safetensors``) and its JSON sidecar; returns ``path``.

    Args:
        model: the model to store (any device; tensors are copied to CPU).
        path: target ``.safetensors`` file; parent folders are created.
        dtype: storage dtype, ``float32`` (default, exact) or ``float16`` (half the size; the
            model is always rebuilt in float32 on load).
        metadata: JSON-serialisable provenance (source folder, training run, ...).
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"checkpoint path must end in .safetensors, got {path.name}")
    if dtype not in _DTYPES:
        raise CheckpointError(f"unknown storage dtype {dtype!r}; use one of {', '.join(_DTYPES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", _DTYPES[dtype]).contiguous() for k, v in model.state_dict().items()}
    # Temporary names then rename: a reader (a worker loading the model) never sees half a file.
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": FORMAT})
    tmp.replace(path)
    sidecar = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dtype": dtype,
        "config": json.loads(model.config.to_json()),
        "metadata": metadata or {},
    }
    side_tmp = sidecar_path(path).with_suffix(".json.tmp")
    side_tmp.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    side_tmp.replace(sidecar_path(path))
    return path


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The parsed JSON sidecar of a checkpoint (no torch work), validated."""
    side = sidecar_path(path)
    if not side.is_file():
        raise CheckpointError(f"checkpoint config {side} not found (expected beside {Path(path).name})")
    try:
        data = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint config {side} is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and "format" not in data and "variant" in data and "embed_dim" in data:
        # A bare MAEConfig JSON (as pretraining runs write it, provenance optionally under "meta").
        meta = data.pop("meta", {})
        return {"format": FORMAT, "format_version": 0, "dtype": None, "config": data, "metadata": meta or {}}
    if not isinstance(data, dict) or data.get("format") != FORMAT or "config" not in data:
        raise CheckpointError(f"{side} is not a {FORMAT} checkpoint config")
    if int(data.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{side} has format_version {data['format_version']}; this code reads up to {FORMAT_VERSION}"
        )
    return data


def read_config(path: str | Path) -> MAEConfig:
    """The model config of a checkpoint, from its sidecar."""
    try:
        return MAEConfig.from_dict(read_sidecar(path)["config"])
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"bad model config in {sidecar_path(path)}: {exc}") from exc


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The raw tensors of ``X.safetensors``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint weights {path} not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint weights {path} are unreadable or corrupt: {exc}") from exc


def load_into(model: MaskedAutoencoderViT, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Strictly copies ``state`` into ``model``; names every missing, unexpected or mis-shaped key."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: {tuple(state[k].shape)} != {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {', '.join(missing[:8])}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:8])}")
    if shapes:
        problems.append(f"shape mismatches ({len(shapes)}): {'; '.join(shapes[:8])}")
    if problems:
        raise CheckpointError(f"{source} does not fit the model: " + " | ".join(problems))
    with torch.no_grad():
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def load_model(path: str | Path, device: str | torch.device | None = None) -> MaskedAutoencoderViT:
    """Rebuilds the model from ``X.safetensors`` + ``X.json``, in float32 and eval mode.

    Args:
        path: the ``.safetensors`` file.
        device: target device; CUDA when present if None.
    """
    config = read_config(path)
    state = load_state(path)
    model = MaskedAutoencoderViT(config)
    load_into(model, state, source=str(path))
    dev = device if isinstance(device, torch.device) else pick_device(device)
    return model.to(dev).eval()
