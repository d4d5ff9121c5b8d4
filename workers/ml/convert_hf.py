"""Hugging Face ``ViTMAEForPreTraining`` folders (the format SKELEX publishes) -> our checkpoint.

A folder holds ``config.json`` and ``model.safetensors`` or ``pytorch_model.bin`` (and maybe
``preprocessor_config.json`` with the normalisation). The conversion is a key mapping:

* encoder layers ``vit.encoder.layer.{i}.`` (transformers 4.x) or ``vit.layers.{i}.`` (5.x) and
  decoder layers ``decoder.decoder_layers.{i}.`` -> timm ``blocks.{i}.`` / ``decoder_blocks.{i}.``;
* separate query/key/value projections (4.x ``attention.attention.query``, 5.x
  ``attention.q_proj``) are concatenated, in that order, into timm's fused ``attn.qkv``;
* HF's LayerNorm eps (1e-12) and its fixed sin-cos position embeddings are carried over as they
  are, so outputs match to float rounding (checked in tests against transformers itself).

The 4.x names are verified against the installed transformers. The 5.x names are those of the
refactored ViT (``layers``, ``q_proj``/``k_proj``/``v_proj``/``o_proj``, ``mlp.fc1``/``mlp.fc2``)
as read from the transformers source; the tests exercise them by renaming a 4.x state dict.
Every source key must be consumed: an unknown key is an error, not silently dropped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from .checkpoint import CheckpointError, load_into, save_checkpoint
from .model import IMAGENET_MEAN, IMAGENET_STD, VARIANTS, MAEConfig, MaskedAutoencoderViT

# Defaults of transformers' ViTMAEConfig, used when config.json omits a key (save_pretrained
# drops values equal to the defaults in some versions).
HF_DEFAULTS: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "image_size": 224,
    "patch_size": 16,
    "num_channels": 3,
    "qkv_bias": True,
    "decoder_hidden_size": 512,
    "decoder_num_hidden_layers": 8,
    "decoder_num_attention_heads": 16,
    "decoder_intermediate_size": 2048,
    "mask_ratio": 0.75,
    "norm_pix_loss": False,
}

# Layer-local names: our timm suffix -> the HF suffixes that may hold it (4.x first, then 5.x).
_LAYER_NAMES: dict[str, tuple[str, ...]] = {
    "norm1": ("layernorm_before",),
    "norm2": ("layernorm_after",),
    "attn.q": ("attention.attention.query", "attention.q_proj"),
    "attn.k": ("attention.attention.key", "attention.k_proj"),
    "attn.v": ("attention.attention.value", "attention.v_proj"),
    "attn.proj": ("attention.output.dense", "attention.o_proj"),
    "mlp.fc1": ("intermediate.dense", "mlp.fc1"),
    "mlp.fc2": ("output.dense", "mlp.fc2"),
}
_HF_TO_LOCAL = {hf: ours for ours, names in _LAYER_NAMES.items() for hf in names}
_LAYER_RE = re.compile(
    r"^(?:(?P<enc>vit\.(?:encoder\.layer|encoder\.layers|layers))|(?P<dec>decoder\.decoder_layers))"
    r"\.(?P<idx>\d+)\.(?P<rest>.+)\.(?P<param>weight|bias)$"
)
_GLOBAL_NAMES: dict[str, str] = {
    "vit.embeddings.cls_token": "cls_token",
    "vit.embeddings.position_embeddings": "pos_embed",
    "vit.embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "vit.embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "vit.layernorm.weight": "norm.weight",
    "vit.layernorm.bias": "norm.bias",
    "decoder.decoder_embed.weight": "decoder_embed.weight",
    "decoder.decoder_embed.bias": "decoder_embed.bias",
    "decoder.mask_token": "mask_token",
    "decoder.decoder_pos_embed": "decoder_pos_embed",
    "decoder.decoder_norm.weight": "decoder_norm.weight",
    "decoder.decoder_norm.bias": "decoder_norm.bias",
    "decoder.decoder_pred.weight": "decoder_pred.weight",
    "decoder.decoder_pred.bias": "decoder_pred.bias",
}


def _two(value: Any, name: str) -> int:
    """HF allows ints or [h, w] pairs for image/patch size; we support square only."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise CheckpointError(f"{name} {value} is not square; only square inputs are supported")
        value = value[0]
    return int(value)


def config_from_hf(hf: dict[str, Any], preprocessor: dict[str, Any] | None = None) -> MAEConfig:
    """Our ``MAEConfig`` from a HF ``config.json`` dict (and ``preprocessor_config.json`` if any)."""
    c = {**HF_DEFAULTS, **hf}
    if c.get("model_type", "vit_mae") != "vit_mae":
        raise CheckpointError(f"config.json has model_type {c.get('model_type')!r}, expected 'vit_mae'")
    if c["hidden_act"] != "gelu":
        raise CheckpointError(f"hidden_act {c['hidden_act']!r} is not supported (timm blocks use exact GELU)")
    if not c["qkv_bias"]:
        raise CheckpointError("qkv_bias=False is not supported (timm blocks here use qkv_bias=True)")
    embed, dec = int(c["hidden_size"]), int(c["decoder_hidden_size"])
    arch = dict(
        embed_dim=embed,
        depth=int(c["num_hidden_layers"]),
        num_heads=int(c["num_attention_heads"]),
        decoder_embed_dim=dec,
        decoder_depth=int(c["decoder_num_hidden_layers"]),
        decoder_num_heads=int(c["decoder_num_attention_heads"]),
    )
    patch = _two(c["patch_size"], "patch_size")
    variant = next((name for name, spec in VARIANTS.items() if spec == arch and name.endswith(f"patch{patch}")), None)
    pre = preprocessor or {}
    return MAEConfig(
        variant=variant or f"mae_vit_hf{embed}x{arch['depth']}_patch{patch}",
        img_size=_two(c["image_size"], "image_size"),
        patch_size=patch,
        in_chans=int(c["num_channels"]),
        mlp_ratio=int(c["intermediate_size"]) / embed,
        decoder_mlp_ratio=int(c["decoder_intermediate_size"]) / dec,
        layer_norm_eps=float(c["layer_norm_eps"]),
        norm_pix_loss=bool(c["norm_pix_loss"]),
        mean=tuple(float(v) for v in pre.get("image_mean", IMAGENET_MEAN)),
        std=tuple(float(v) for v in pre.get("image_std", IMAGENET_STD)),
        **arch,
    )


def convert_state_dict(hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames (and fuses q/k/v of) a ``ViTMAEForPreTraining`` state dict into our key space.

    Raises:
        CheckpointError: a key is not understood, or a layer lacks one of q/k/v.
    """
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    unknown = []
    for key, tensor in hf_state.items():
        if key in _GLOBAL_NAMES:
            out[_GLOBAL_NAMES[key]] = tensor
            continue
        m = _LAYER_RE.match(key)
        local = _HF_TO_LOCAL.get(m["rest"]) if m else None
        if m is None or local is None:
            unknown.append(key)
            continue
        prefix = f"{'blocks' if m['enc'] else 'decoder_blocks'}.{int(m['idx'])}"
        if local in ("attn.q", "attn.k", "attn.v"):
            qkv.setdefault((prefix, m["param"]), {})[local[-1]] = tensor
        else:
            out[f"{prefix}.{local}.{m['param']}"] = tensor
    if unknown:
        raise CheckpointError(f"unrecognised keys in HF state dict ({len(unknown)}): {', '.join(unknown[:8])}")
    for (prefix, param), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise CheckpointError(f"{prefix}: attention {param} lacks {sorted({'q', 'k', 'v'} - set(parts))}")
        # timm's qkv output is laid out [q | k | v], each split into heads the same way as HF's.
        out[f"{prefix}.attn.qkv.{param}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def read_hf_folder(folder: str | Path) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, torch.Tensor]]:
    """``(config.json, preprocessor_config.json or None, state dict)`` of a HF model folder."""
    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{folder} has no config.json; is it a Hugging Face model folder?")
    try:
        hf_config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{cfg_path} is not valid JSON: {exc}") from exc
    pre_path = folder / "preprocessor_config.json"
    preprocessor = json.loads(pre_path.read_text()) if pre_path.is_file() else None
    st, binary = folder / "model.safetensors", folder / "pytorch_model.bin"
    try:
        if st.is_file():
            state = load_file(str(st))
        elif binary.is_file():
            # weights_only: a .bin is a pickle; never let it run code.
            state = torch.load(binary, map_location="cpu", weights_only=True)
        else:
            raise CheckpointError(
                f"{folder} has neither model.safetensors nor pytorch_model.bin (sharded folders unsupported)"
            )
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means a corrupt file; say which
        raise CheckpointError(f"weights in {folder} are unreadable: {exc}") from exc
    return hf_config, preprocessor, state


def model_from_hf(folder: str | Path) -> MaskedAutoencoderViT:
    """Our model (float32, eval mode, CPU) with the weights of a HF ``ViTMAEForPreTraining`` folder."""
    hf_config, preprocessor, hf_state = read_hf_folder(folder)
    model = MaskedAutoencoderViT(config_from_hf(hf_config, preprocessor))
    state = {k: v.float() for k, v in convert_state_dict(hf_state).items()}
    load_into(model, state, source=f"HF folder {folder}")
    return model.eval()


def convert_folder(folder: str | Path, out: str | Path, dtype: str = "float32") -> Path:
    """Converts a HF folder into ``out`` (``.safetensors``) + sidecar; returns ``out``."""
    model = model_from_hf(folder)
    hf_config = json.loads((Path(folder) / "config.json").read_text())
    meta = {"converted_from": str(Path(folder).resolve()), "hf_mask_ratio": float(hf_config.get("mask_ratio", 0.75))}
    return save_checkpoint(model, out, dtype=dtype, metadata=meta)


def hf_config_dict(config: MAEConfig) -> dict[str, Any]:
    """The ``ViTMAEConfig`` keyword arguments describing our architecture (for the reverse export)."""
    return {
        "hidden_size": config.embed_dim,
        "num_hidden_layers": config.depth,
        "num_attention_heads": config.num_heads,
        "intermediate_size": int(config.embed_dim * config.mlp_ratio),
        "decoder_hidden_size": config.decoder_embed_dim,
        "decoder_num_hidden_layers": config.decoder_depth,
        "decoder_num_attention_heads": config.decoder_num_heads,
        "decoder_intermediate_size": int(config.decoder_embed_dim * config.decoder_mlp_ratio),
        "image_size": config.img_size,
        "patch_size": config.patch_size,
        "num_channels": config.in_chans,
        "layer_norm_eps": config.layer_norm_eps,
        "norm_pix_loss": config.norm_pix_loss,
        "hidden_act": "gelu",
        "qkv_bias": True,
    }


def to_hf_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict -> transformers 4.x ``ViTMAEForPreTraining`` names (splits the fused qkv).

    Used by the benchmark to give the reference implementation exactly our weights.
    """
    back = {ours: hf for hf, ours in _GLOBAL_NAMES.items()}
    out: dict[str, torch.Tensor] = {}
    layer_re = re.compile(r"^(?P<where>blocks|decoder_blocks)\.(?P<idx>\d+)\.(?P<local>.+)\.(?P<param>weight|bias)$")
    for key, tensor in state.items():
        if key in back:
            out[back[key]] = tensor
            continue
        m = layer_re.match(key)
        if m is None:
            raise CheckpointError(f"cannot export key {key}")
        prefix = f"vit.encoder.layer.{m['idx']}" if m["where"] == "blocks" else f"decoder.decoder_layers.{m['idx']}"
        if m["local"] == "attn.qkv":
            for part, chunk in zip("qkv", tensor.chunk(3, dim=0)):
                out[f"{prefix}.{_LAYER_NAMES['attn.' + part][0]}.{m['param']}"] = chunk.contiguous()
        else:
            out[f"{prefix}.{_LAYER_NAMES[m['local']][0]}.{m['param']}"] = tensor
    return out
