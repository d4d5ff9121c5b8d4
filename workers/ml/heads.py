"""Light label heads on frozen embeddings: one model per project covering every head of its schema.

The backbone stays frozen; each project's questions ("fractured?", "which body part?", "which
implants?") are answered by small heads on the image embeddings, retrained in seconds whenever
new labels arrive. As in SKELEX's multi-head scheme, an answer that is unknown or missing does
not count in the loss, so one image labelled for a single head still teaches that head.

Schema JSON (one per project)::

    {"heads": [{"name": "fractured", "kind": "binary", "classes": ["no", "yes"]},
               {"name": "bodypart", "kind": "multiclass", "classes": ["hand", "leg", "hip"]},
               {"name": "implants", "kind": "multilabel", "classes": ["plate", "screw"]}]}

binary → one sigmoid (positive = classes[1]); multiclass → softmax; multilabel → one sigmoid per class.

Encoded targets (``encode_answers``), per head:
    binary, multiclass: int   [N]     class index, -1 = unknown
    multilabel:         float [N, C]  1 / 0, NaN = unknown

Training is full-batch L-BFGS on standardised embeddings with L2 weight decay and balanced class
weights: the convex linear default is solved in numpy/SciPy (``heads_linear.py``), the optional
MLP with torch; deterministic for a seed, and seconds for 10k x 384 on CPU.
Temperatures and cross-validated metrics come from ``fit_heads`` (see ``heads_cv.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .calibration import probabilities
from .heads_linear import LinearProblem, fit_linear

KINDS = ("binary", "multiclass", "multilabel")
UNKNOWN_ANSWERS = (None, "", "unknown", "?")


@dataclass(frozen=True)
class HeadSpec:
    """One question of a project's schema."""

    name: str
    kind: str
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"head {self.name!r}: kind must be one of {KINDS}, not {self.kind!r}")
        if self.kind == "binary" and len(self.classes) != 2:
            raise ValueError(f"binary head {self.name!r} needs exactly 2 classes (negative, positive)")
        if len(self.classes) < 2 and self.kind == "multiclass":
            raise ValueError(f"multiclass head {self.name!r} needs at least 2 classes")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"head {self.name!r} has duplicate classes")

    @property
    def n_outputs(self) -> int:
        """Logits of the head: 1 for binary, one per class otherwise."""
        return 1 if self.kind == "binary" else len(self.classes)


@dataclass(frozen=True)
class Schema:
    """The heads of a project, in order."""

    heads: tuple[HeadSpec, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        heads = tuple(HeadSpec(h["name"], h["kind"], tuple(str(c) for c in h["classes"])) for h in data["heads"])
        names = [h.name for h in heads]
        if len(set(names)) != len(names) or not heads:
            raise ValueError("a schema needs at least one head and unique head names")
        return cls(heads)

    @classmethod
    def from_json(cls, text: str) -> Schema:
        return cls.from_dict(json.loads(text))

    def to_dict(self) -> dict[str, Any]:
        return {"heads": [{"name": h.name, "kind": h.kind, "classes": list(h.classes)} for h in self.heads]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def __getitem__(self, name: str) -> HeadSpec:
        for h in self.heads:
            if h.name == name:
                return h
        raise KeyError(name)


def encode_answers(schema: Schema, answers: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Turns image-level answers into target arrays (see the module docstring).

    Args:
        schema: the project's heads.
        answers: one mapping per image, head name → class name (binary/multiclass) or a list of
            present class names (multilabel; a dict ``{class: bool|None}`` gives per-class unknowns).
            A missing key, ``None``, ``""``, ``"unknown"`` or ``"?"`` means unknown.

    Returns:
        ``{head: targets}``.
    """
    out: dict[str, np.ndarray] = {}
    for h in schema.heads:
        index = {c: i for i, c in enumerate(h.classes)}
        t: np.ndarray
        if h.kind == "multilabel":
            t = np.full((len(answers), len(h.classes)), np.nan)
            for i, a in enumerate(answers):
                v = a.get(h.name)
                if isinstance(v, Mapping):
                    for c, present in v.items():
                        if present is not None:
                            t[i, index[c]] = float(bool(present))
                elif v is not None and not _is_unknown(v):
                    t[i] = 0.0
                    for c in v:
                        t[i, index[c]] = 1.0
        else:
            t = np.full(len(answers), -1, dtype=np.int64)
            for i, a in enumerate(answers):
                v = a.get(h.name)
                if not _is_unknown(v):
                    t[i] = index[str(v)]
        out[h.name] = t
    return out


def _is_unknown(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip().lower() in UNKNOWN_ANSWERS)


def known_mask(spec: HeadSpec, targets: np.ndarray) -> np.ndarray:
    """Where a head's target is known: [N] for binary/multiclass, [N, C] for multilabel."""
    t = np.asarray(targets)
    return ~np.isnan(t.astype(np.float64)) if spec.kind == "multilabel" else t >= 0


def learnable_heads(schema: Schema, targets: Mapping[str, np.ndarray]) -> list[str]:
    """Heads whose known answers include at least two classes (for a multilabel head: some label
    both present and absent). The others have nothing to tell apart: a model trained on them
    predicts a prior, not a finding, so it suggests nothing."""
    out = []
    for h in schema.heads:
        if h.name not in targets:
            continue
        t = np.asarray(targets[h.name])
        k = known_mask(h, t)
        if h.kind == "multilabel":
            seen = [set(t[k[:, j], j].tolist()) for j in range(t.shape[1])]
            if any(len(v) >= 2 for v in seen):
                out.append(h.name)
        elif len(np.unique(t[k])) >= 2:
            out.append(h.name)
    return out


@dataclass
class HeadConfig:
    """Training hyper-parameters; stored with every trained model."""

    hidden: int = 0  # 0 = linear heads; > 0 = one shared GELU layer of this width (small MLP)
    weight_decay: float = 1e-2  # L2 on weights (not biases), on the mean loss of standardised inputs
    max_iter: int = 100  # L-BFGS iterations (full batch)
    class_weighting: bool = True  # balanced weights: each class counts as much as the others
    seed: int = 0


class MultiHeadNet(nn.Module):
    """Standardise → (optional shared hidden layer) → one linear layer per head.

    ``forward(emb: [N, D]) -> {head: logits [N, n_outputs]}``.
    """

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, schema: Schema, dim: int, hidden: int = 0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.trunk: nn.Module = nn.Sequential(nn.Linear(dim, hidden), nn.GELU()) if hidden else nn.Identity()
        width = hidden or dim
        self.heads = nn.ModuleDict({h.name: nn.Linear(width, h.n_outputs) for h in schema.heads})

    def head_layers(self) -> list[nn.Linear]:
        """The per-head output layers, in schema order."""
        return [m for m in self.heads.values() if isinstance(m, nn.Linear)]

    def forward(self, emb: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.trunk((emb - self.mean) / self.scale)
        return {name: layer(x) for name, layer in self.heads.items()}


def masked_loss(
    spec: HeadSpec, logits: torch.Tensor, target: torch.Tensor, known: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Class-weighted mean loss over the known answers of one head; unknowns contribute exactly 0.

    Args:
        spec: the head.
        logits: [N, n_outputs].
        target: [N] class indices or [N, C] 0/1 floats; values where ``known`` is False are ignored.
        known: [N] or [N, C] bool.
        weights: [N] or [N, C] per-answer weights (class balancing), any value where unknown.

    Returns:
        A scalar; 0 when nothing is known.
    """
    w = torch.where(known, weights, torch.zeros_like(weights))
    if spec.kind == "multiclass":
        safe = torch.where(known, target, torch.zeros_like(target)).long()
        per = F.cross_entropy(logits, safe, reduction="none")
    else:
        t = torch.where(known, target.float(), torch.zeros_like(target, dtype=torch.float32))
        per = F.binary_cross_entropy_with_logits(logits.reshape(t.shape), t, reduction="none")
    total = w.sum()
    return (per * w).sum() / total if total > 0 else logits.sum() * 0.0


def class_weights(spec: HeadSpec, targets: np.ndarray, balanced: bool = True) -> np.ndarray:
    """Per-answer weights: n / (n_classes * n_c) for an answer of class c (1 where unbalanced/unknown)."""
    t = np.asarray(targets)
    known = known_mask(spec, t)
    w = np.ones(t.shape, dtype=np.float32)
    if not balanced:
        return w
    if spec.kind == "multilabel":
        for k in range(t.shape[1]):
            col, kn = t[:, k], known[:, k]
            for v in (0.0, 1.0):
                sel = kn & (col == v)
                if sel.any():
                    w[sel, k] = kn.sum() / (2.0 * sel.sum())
        return w
    counts = np.bincount(t[known], minlength=len(spec.classes))
    present = counts > 0
    for c in np.flatnonzero(present):
        w[known & (t == c)] = known.sum() / (present.sum() * counts[c])
    return w


@dataclass
class HeadsModel:
    """A trained multi-head model: network, schema, temperatures and (optional) CV metrics."""

    schema: Schema
    config: HeadConfig
    net: MultiHeadNet
    temperatures: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def logits(self, emb: np.ndarray, batch: int = 65536) -> dict[str, np.ndarray]:
        """Raw head logits for embeddings [N, D]."""
        x = torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float32))
        parts: dict[str, list[np.ndarray]] = {h.name: [] for h in self.schema.heads}
        self.net.eval()
        with torch.no_grad():
            for s in range(0, max(len(x), 1), batch):
                for name, z in self.net(x[s : s + batch]).items():
                    parts[name].append(z.double().numpy())
        return {name: np.concatenate(v) if v else np.zeros((0, 1)) for name, v in parts.items()}

    def predict_proba(self, emb: np.ndarray, calibrated: bool = True) -> dict[str, np.ndarray]:
        """``{head: [N, C] probabilities}`` (binary gives [N, 2]: negative, positive)."""
        out = {}
        for name, z in self.logits(emb).items():
            spec = self.schema[name]
            t = self.temperatures.get(name, 1.0) if calibrated else 1.0
            out[name] = probabilities(spec.kind, z, t)
        return out

    def to_bytes(self) -> bytes:
        """One safetensors blob: tensors plus schema, config, temperatures and metrics as metadata."""
        tensors = {k: v.detach().contiguous().clone() for k, v in self.net.state_dict().items()}
        meta = {
            "format": "skelex-heads/1",
            "schema": self.schema.to_json(),
            "config": json.dumps(asdict(self.config)),
            "dim": str(int(self.net.mean.shape[0])),
            "temperatures": json.dumps(self.temperatures),
            "metrics": json.dumps(self.metrics),
        }
        return st_save(tensors, metadata=meta)

    @classmethod
    def from_bytes(cls, blob: bytes) -> HeadsModel:
        tensors = st_load(blob)
        meta = _read_metadata(blob)
        schema = Schema.from_json(meta["schema"])
        config = HeadConfig(**json.loads(meta["config"]))
        net = MultiHeadNet(schema, int(meta["dim"]), config.hidden)
        net.load_state_dict(tensors)
        return cls(schema, config, net, json.loads(meta["temperatures"]), json.loads(meta["metrics"]))

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> HeadsModel:
        return cls.from_bytes(Path(path).read_bytes())


def _read_metadata(blob: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors blob (8-byte little-endian header length, then JSON)."""
    n = int.from_bytes(blob[:8], "little")
    return dict(json.loads(blob[8 : 8 + n].decode("utf-8")).get("__metadata__", {}))


def train_heads(
    emb: np.ndarray,
    targets: Mapping[str, np.ndarray],
    schema: Schema,
    config: HeadConfig | None = None,
    known: Mapping[str, np.ndarray] | None = None,
) -> HeadsModel:
    """Fits all heads at once on frozen embeddings (no calibration; see ``fit_heads`` for that).

    Args:
        emb: [N, D] embeddings.
        targets: ``{head: encoded targets}`` (see the module docstring); heads absent = all unknown.
        schema: the heads.
        config: hyper-parameters (defaults: linear, balanced, L-BFGS).
        known: optional explicit masks overriding the ones read from ``targets`` (True = counts).

    Returns:
        The trained model, temperatures 1.
    """
    cfg = config or HeadConfig()
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    n, d = emb.shape
    torch.manual_seed(cfg.seed)  # the MLP's init; the linear default starts at zero
    gen = torch.Generator().manual_seed(cfg.seed)
    net = MultiHeadNet(schema, d, cfg.hidden)
    if cfg.hidden:
        for m in net.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=1.0 / np.sqrt(m.in_features), generator=gen)
                nn.init.zeros_(m.bias)
    else:
        for layer in net.head_layers():
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    per_head = []
    any_known = np.zeros(n, dtype=bool)
    for h in schema.heads:
        t = np.asarray(targets[h.name]) if h.name in targets else _all_unknown(h, n)
        k = np.asarray(known[h.name]) if known is not None and h.name in known else known_mask(h, t)
        t_clean = np.where(k, t, 0)
        w = class_weights(h, np.where(k, t, -1 if h.kind != "multilabel" else np.nan), cfg.class_weighting)
        any_known |= k if k.ndim == 1 else k.any(axis=1)
        t_torch = torch.from_numpy(t_clean.astype(np.float32 if h.kind == "multilabel" else np.int64))
        per_head.append((h, t_torch, torch.from_numpy(k), torch.from_numpy(w)))

    # Standardise on the rows that teach something, so unlabelled rows never move the weights.
    rows = emb[any_known] if any_known.any() else emb
    mean = rows.mean(axis=0)
    scale = rows.std(axis=0) + 1e-6 if len(rows) > 1 else np.ones(d, dtype=np.float32)
    net.mean.copy_(torch.from_numpy(mean))
    net.scale.copy_(torch.from_numpy(scale.astype(np.float32)))

    if not cfg.hidden:
        xs = (emb.astype(np.float64) - mean) / scale
        problems = [LinearProblem(h.kind, h.n_outputs, t.numpy(), w.numpy() * k.numpy()) for h, t, k, w in per_head]
        with torch.no_grad():
            solved = fit_linear(xs, problems, cfg.weight_decay, cfg.max_iter)
            for layer, (wt, b) in zip(net.head_layers(), solved):
                layer.weight.copy_(torch.from_numpy(wt.T.astype(np.float32)))
                layer.bias.copy_(torch.from_numpy(b.astype(np.float32)))
        return HeadsModel(schema, cfg, net)

    x = torch.from_numpy(emb)
    decay = [p for name, p in net.named_parameters() if name.endswith("weight")]
    opt = torch.optim.LBFGS(
        net.parameters(),
        lr=1.0,
        max_iter=cfg.max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        out = net(x)
        loss = sum((masked_loss(h, out[h.name], t, k, w) for h, t, k, w in per_head), torch.zeros(()))
        loss = loss + cfg.weight_decay * sum((p.pow(2).sum() for p in decay), torch.zeros(()))
        loss.backward()
        return loss

    # These matrices are small: extra intra-op threads only contend (10x slower on a busy CPU).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net.train()
        opt.step(closure)
    finally:
        torch.set_num_threads(threads)
        net.eval()
    return HeadsModel(schema, cfg, net)


def _all_unknown(spec: HeadSpec, n: int) -> np.ndarray:
    return np.full((n, len(spec.classes)), np.nan) if spec.kind == "multilabel" else np.full(n, -1, dtype=np.int64)


def suggestions(
    schema: Schema,
    probs: Mapping[str, np.ndarray],
    threshold: float = 0.5,
    heads: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Image-level suggestions (pre-filled answers) from ``predict_proba`` output.

    Args:
        schema: the heads.
        probs: ``{head: [N, C]}``.
        threshold: multilabel classes at or above it are suggested as present.
        heads: only these heads (default all; the platform passes :func:`learnable_heads`).

    Returns:
        One dict per image: ``{head: {"answer": cls (list of cls for multilabel), "probabilities": {cls: p}}}``.
    """
    n = len(next(iter(probs.values()))) if probs else 0
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for h in schema.heads:
        if heads is not None and h.name not in heads:
            continue
        p = np.asarray(probs[h.name])
        for i in range(n):
            row = {c: round(float(p[i, j]), 4) for j, c in enumerate(h.classes)}
            if h.kind == "multilabel":
                answer: Any = [c for j, c in enumerate(h.classes) if p[i, j] >= threshold]
            else:
                answer = h.classes[int(np.argmax(p[i]))]
            out[i][h.name] = {"answer": answer, "probabilities": row}
    return out
