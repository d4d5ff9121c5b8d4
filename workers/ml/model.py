"""Masked-autoencoder Vision Transformer (He et al., 2022) built from timm's blocks.

This is the backbone of the SKELEX approach: pretrained to reconstruct masked patches of
radiographs, its reconstruction error localizes what it has not seen often (abnormalities), and
its unmasked encoder gives image embeddings for the label heads.

Shapes used throughout:
    imgs:        [N, C, H, W]  normalised pixels (ImageNet mean/std by default), H = W = img_size
    patches:     [N, L, p*p*C] L = (H/p) * (W/p), row-major over the patch grid
    noise:       [N, L]        any floats; patches with the smallest noise are kept
    mask:        [N, L]        0 = kept (visible to the encoder), 1 = removed (to reconstruct)
    ids_restore: [N, L]        undoes the shuffle that put kept patches first
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
import torch.nn as nn
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block

from .posembed import sincos_2d

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class MAEConfig:
    """Everything needed to rebuild a model; stored as JSON beside every checkpoint."""

    variant: str = "mae_vit_tiny_patch16"
    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 192
    depth: int = 12
    num_heads: int = 3
    mlp_ratio: float = 4.0
    decoder_embed_dim: int = 256
    decoder_depth: int = 4
    decoder_num_heads: int = 8
    decoder_mlp_ratio: float = 4.0
    # timm's ViTs use 1e-6; HF ViTMAE (and so SKELEX) uses 1e-12. Carried over on conversion.
    layer_norm_eps: float = 1e-6
    norm_pix_loss: bool = False
    mean: tuple[float, ...] = field(default=IMAGENET_MEAN)
    std: tuple[float, ...] = field(default=IMAGENET_STD)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MAEConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown MAE config keys: {', '.join(unknown)}")
        values = dict(data)
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        return cls(**values)

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2


# name -> architecture. Decoders of the small variants are slimmer than the paper's 512 x 8 so
# that a CPU can pretrain them and the demo checkpoint stays small; base/large match MAE/SKELEX.
VARIANTS: dict[str, dict[str, Any]] = {
    "mae_vit_tiny_patch16": dict(
        embed_dim=192, depth=12, num_heads=3, decoder_embed_dim=256, decoder_depth=4, decoder_num_heads=8
    ),
    "mae_vit_small_patch16": dict(
        embed_dim=384, depth=12, num_heads=6, decoder_embed_dim=256, decoder_depth=4, decoder_num_heads=8
    ),
    "mae_vit_base_patch16": dict(
        embed_dim=768, depth=12, num_heads=12, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16
    ),
    "mae_vit_large_patch16": dict(
        embed_dim=1024, depth=24, num_heads=16, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16
    ),
}


def variant_config(variant: str, **overrides: Any) -> MAEConfig:
    """The config of a registered variant, with keyword overrides (e.g. tiny test sizes)."""
    if variant not in VARIANTS:
        raise KeyError(f"unknown variant {variant!r}; known: {', '.join(sorted(VARIANTS))}")
    return MAEConfig.from_dict({"variant": variant, **VARIANTS[variant], **overrides})


def create_model(variant: str, **overrides: Any) -> MaskedAutoencoderViT:
    """Builds a registered variant with fresh weights: ``create_model("mae_vit_tiny_patch16")``."""
    return MaskedAutoencoderViT(variant_config(variant, **overrides))


class MaskedAutoencoderViT(nn.Module):
    """MAE with a ViT encoder and a lightweight ViT decoder; position embeddings are fixed sin-cos."""

    # Fixed (non-trained) buffers: [1, 1 + L, D] with an all-zero CLS row.
    pos_embed: torch.Tensor
    decoder_pos_embed: torch.Tensor

    def __init__(self, config: MAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        if c.img_size % c.patch_size:
            raise ValueError(f"img_size {c.img_size} is not a multiple of patch_size {c.patch_size}")
        # timm types norm_layer as a class; a partial with our eps is what it calls in practice.
        norm_layer: Any = partial(nn.LayerNorm, eps=c.layer_norm_eps)

        # Encoder.
        self.patch_embed = PatchEmbed(c.img_size, c.patch_size, c.in_chans, c.embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.register_buffer("pos_embed", torch.from_numpy(sincos_2d(c.embed_dim, c.grid_size))[None])
        self.blocks = nn.ModuleList(
            Block(c.embed_dim, c.num_heads, c.mlp_ratio, qkv_bias=True, norm_layer=norm_layer) for _ in range(c.depth)
        )
        self.norm = norm_layer(c.embed_dim)

        # Decoder.
        self.decoder_embed = nn.Linear(c.embed_dim, c.decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.decoder_embed_dim))
        self.register_buffer("decoder_pos_embed", torch.from_numpy(sincos_2d(c.decoder_embed_dim, c.grid_size))[None])
        self.decoder_blocks = nn.ModuleList(
            Block(c.decoder_embed_dim, c.decoder_num_heads, c.decoder_mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
            for _ in range(c.decoder_depth)
        )
        self.decoder_norm = norm_layer(c.decoder_embed_dim)
        self.decoder_pred = nn.Linear(c.decoder_embed_dim, c.patch_size**2 * c.in_chans, bias=True)
        self.initialize_weights()

    # -- initialisation -------------------------------------------------------------------
    def initialize_weights(self) -> None:
        """Xavier for linear layers and the patch projection, small normal for tokens (as MAE)."""
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    # -- patches --------------------------------------------------------------------------
    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """imgs: [N, C, H, W] -> patches: [N, L, p*p*C] (pixel order inside a patch: row, col, channel)."""
        p = self.config.patch_size
        n, c, h, w = imgs.shape
        if h % p or w % p:
            raise ValueError(f"image {h}x{w} is not divisible into {p}x{p} patches")
        x = imgs.reshape(n, c, h // p, p, w // p, p)
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(n, (h // p) * (w // p), p * p * c)

    def unpatchify(self, x: torch.Tensor, height: int | None = None, width: int | None = None) -> torch.Tensor:
        """patches: [N, L, p*p*C] -> imgs: [N, C, H, W] (square unless height/width are given)."""
        p = self.config.patch_size
        c = self.config.in_chans
        n, num, _ = x.shape
        if height is None or width is None:
            g = int(round(num**0.5))
            gh = gw = g
        else:
            gh, gw = height // p, width // p
        if gh * gw != num:
            raise ValueError(f"{num} patches do not tile a {gh}x{gw} grid")
        x = x.reshape(n, gh, gw, p, p, c)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(n, c, gh * p, gw * p)

    # -- masking --------------------------------------------------------------------------
    @staticmethod
    def random_masking(
        x: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keeps the ``(1 - mask_ratio) * L`` tokens with the smallest noise.

        Args:
            x: [N, L, D] patch tokens (position embedding already added).
            mask_ratio: share of tokens removed.
            noise: [N, L]; random uniform when None. Supplying it makes masking reproducible and
                lets callers choose exactly which patches are removed (complementary error maps).

        Returns:
            x_kept [N, L_keep, D], mask [N, L] (1 = removed), ids_restore [N, L].
        """
        n, length, dim = x.shape
        len_keep = int(length * (1 - mask_ratio))
        if noise is None:
            noise = torch.rand(n, length, device=x.device)
        if noise.shape != (n, length):
            raise ValueError(f"noise must be [{n}, {length}], got {list(noise.shape)}")
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, dim))
        mask = torch.ones(n, length, device=x.device, dtype=x.dtype)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, 1, ids_restore)
        return x_kept, mask, ids_restore

    # -- forward passes -------------------------------------------------------------------
    def forward_encoder(
        self, imgs: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """imgs [N, C, H, W] -> latent [N, 1 + L_keep, D] (CLS first), mask [N, L], ids_restore [N, L]."""
        x = self.patch_embed(imgs)
        x = x + self.pos_embed[:, 1:, :]
        x, mask, ids_restore = self.random_masking(x, mask_ratio, noise)
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x), mask, ids_restore

    def forward_features(self, imgs: torch.Tensor) -> torch.Tensor:
        """Unmasked encoder: imgs [N, C, H, W] -> tokens [N, 1 + L, D] (CLS first), final norm applied."""
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:, :]
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """latent [N, 1 + L_keep, D] -> pred [N, L, p*p*C] in the (normalised) pixel space of the input."""
        x = self.decoder_embed(latent)
        n, kept_plus_cls, dim = x.shape
        length = ids_restore.shape[1]
        mask_tokens = self.mask_token.expand(n, length + 1 - kept_plus_cls, -1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
        x_ = torch.gather(x_, 1, ids_restore.unsqueeze(-1).expand(-1, -1, dim))
        x = torch.cat([x[:, :1, :], x_], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_pred(self.decoder_norm(x))
        return x[:, 1:, :]

    def loss_target(self, imgs: torch.Tensor) -> torch.Tensor:
        """The per-patch target: raw patches, or per-patch normalised ones with ``norm_pix_loss``."""
        target = self.patchify(imgs)
        if self.config.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        return target

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error over removed patches only: imgs [N, C, H, W], pred [N, L, pC], mask [N, L]."""
        loss = (pred - self.loss_target(imgs)) ** 2
        loss = loss.mean(dim=-1)
        return (loss * mask).sum() / mask.sum().clamp_min(1.0)

    def forward(
        self, imgs: torch.Tensor, mask_ratio: float = 0.75, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns loss (scalar), pred [N, L, p*p*C], mask [N, L]."""
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio, noise)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(imgs, pred, mask), pred, mask


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA when present (or as asked), else CPU."""
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_for(device: torch.device) -> torch.autocast:
    """bf16 autocast on GPU; a disabled autocast (fp32) on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)
