"""Self-supervised MAE pretraining on unlabelled radiographs (SKELEX's recipe at any scale).

``pretrain(PretrainConfig(...)) -> RunResult`` is the whole job, free of Django and Celery: the
command line (``python -m workers.ml pretrain``) and the gpu-queue task both call it.

Recipe: AdamW (betas 0.9/0.95, weight decay 0.05 on weights only), linear warmup then cosine
decay per step, mask ratio 0.75, bf16 autocast on GPU, augmentation from ``augment.py``, images
from the decode-once 16-bit cache in ``datacache.py``. After every epoch the run directory holds
``checkpoint.safetensors``/``.json`` (current weights), ``last.pt`` (resumable state),
``metrics.json`` and ``loss.png``.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from .augment import RadiographAugment, normalize
from .datacache import CacheEntry, build_cache, list_images, load_cached
from .device_views import DeviceViews
from .model import MaskedAutoencoderViT, autocast_for, create_model, pick_device
from .pretrain_io import load_weights, plot_loss, save_state, save_weights, write_metrics


@dataclass
class PretrainConfig:
    """Everything a run needs; ``data`` is a folder, a ``.txt`` list of paths, or a list of paths."""

    data: str | Sequence[str]
    out: str
    variant: str = "mae_vit_tiny_patch16"
    img_size: int = 224
    epochs: int = 10
    batch_size: int = 64
    blr: float = 1.5e-3  # lr = blr * batch_size / 256 (MAE's scaling rule)
    lr: float | None = None  # absolute lr; overrides blr
    min_lr: float = 1e-6
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    mask_ratio: float = 0.75
    seed: int = 0
    workers: int = 1
    threads: int | None = None  # torch intra-op threads (None: torch's default)
    resume: bool = False
    init: str | None = None  # checkpoint to continue pretraining from
    cache_dir: str | None = None  # default: <out>/cache
    cache_long_side: int | None = None  # default: 1.5 x img_size
    device: str | None = None
    max_minutes: float | None = None  # safety stop after the epoch that crosses it
    time_budget_min: float | None = None  # schedule over wall time: cosine ends and the run stops at the budget
    progress: bool = True
    plot_every: int | None = 5  # loss.png every N epochs and at the end; 0: only at the end; None: never
    model_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. tiny test sizes
    device_views: bool | None = None  # augment on the device (see device_views.py); None: on for CUDA
    save_every_min: float | None = None  # write checkpoint + last.pt at most this often (None: every epoch)


@dataclass
class RunResult:
    """What a finished (or stopped) run produced."""

    checkpoint: Path  # <out>/checkpoint.safetensors (fp32), with checkpoint.json beside it
    metrics_path: Path
    loss_curve: Path
    epochs_done: int
    final_loss: float
    samples_per_s: float
    n_images: int
    history: list[dict[str, Any]]


class CachedImages(Dataset):
    """Augmented views of cached radiographs; sample i of epoch e is a pure function of (seed, e, i)."""

    def __init__(self, entries: Sequence[CacheEntry], augment: RadiographAugment, seed: int) -> None:
        self.entries = list(entries)
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        return self.augment(load_cached(self.entries[i]), rng)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # workers share 2 cores with the model; one thread each


def lr_at(step: int, total: int, warmup: int, peak: float, floor: float, time_share: float = 0.0) -> float:
    """Linear warmup to ``peak`` over ``warmup`` steps, then half-cosine down to ``floor`` at ``total``.

    ``time_share`` (elapsed / time budget) advances the cosine when wall time, not the step count,
    is what runs out first: on a shared CPU the number of steps an hour holds is not known ahead.
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), time_share))
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only; biases, norms and tokens are not decayed (as MAE)."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name.endswith(".bias") or "token" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _build_model(cfg: PretrainConfig) -> MaskedAutoencoderViT:
    if cfg.init:
        model = load_weights(cfg.init)
        if model.config.img_size != cfg.img_size:
            raise ValueError(f"--init checkpoint is for {model.config.img_size}px input, run asks {cfg.img_size}px")
        return model
    return create_model(cfg.variant, img_size=cfg.img_size, **cfg.model_overrides)


def pretrain(cfg: PretrainConfig, log: Callable[[str], None] | None = None) -> RunResult:
    """Runs (or resumes) MAE pretraining; see the module docstring for what lands in ``cfg.out``."""
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    device = pick_device(cfg.device)

    long_side = cfg.cache_long_side or round(cfg.img_size * 1.5)
    t0 = time.perf_counter()
    paths = list_images(cfg.data)
    entries = build_cache(paths, cfg.cache_dir or out / "cache", long_side, max(1, cfg.workers), log=say)
    if not entries:
        raise ValueError(f"no readable images in {cfg.data}")
    say(f"{len(entries)} images ready ({len(paths) - len(entries)} skipped) in {time.perf_counter() - t0:.1f}s")

    model = _build_model(cfg).to(device)
    batch_size = min(cfg.batch_size, len(entries))
    peak_lr = cfg.lr if cfg.lr is not None else cfg.blr * batch_size / 256
    fused = device.type == "cuda"  # one kernel for the whole update: a small model's step is launch-bound
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=peak_lr, betas=(0.9, 0.95), fused=fused)
    dataset = CachedImages(entries, RadiographAugment(img_size=cfg.img_size), cfg.seed)
    on_device = cfg.device_views if cfg.device_views is not None else device.type == "cuda"
    views = DeviceViews(entries, dataset.augment, device) if on_device else None
    if views is not None:
        say(f"augmenting on {device}: {len(views)} images resident ({views.nbytes / 1e6:.0f} MB)")
    steps_per_epoch = len(entries) // batch_size
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = max(1, round(cfg.warmup_epochs * steps_per_epoch))

    start_epoch, step, history, trained_s = 0, 0, [], 0.0
    step_log: dict[str, list] = {"step": [], "loss": []}
    state_path = out / "last.pt"
    if cfg.resume and state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, step, history, step_log = state["epoch"], state["step"], state["history"], state["step_log"]
        trained_s = state.get("trained_s", 0.0)
        torch.set_rng_state(state["torch_rng"])
        say(f"resumed from {state_path} at epoch {start_epoch}, step {step}")
    elif cfg.resume:
        say(f"--resume: no {state_path} yet, starting fresh")

    say(
        f"pretraining {model.config.variant} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params) "
        f"on {device}, {cfg.img_size}px, batch {batch_size}, {steps_per_epoch} steps/epoch, "
        f"epochs {start_epoch}->{cfg.epochs}, peak lr {peak_lr:.2e}, threads {torch.get_num_threads()}"
    )
    run_start = time.perf_counter() - trained_s
    budget_s = cfg.time_budget_min * 60 if cfg.time_budget_min else None
    out_of_time = False
    last_save = last_say = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        dataset.epoch = epoch
        if views is None:
            batches: Any = DataLoader(
                dataset,
                batch_size=batch_size,
                sampler=RandomSampler(dataset, generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch)),
                num_workers=cfg.workers,
                drop_last=True,
                worker_init_fn=_worker_init if cfg.workers else None,
                pin_memory=device.type == "cuda",
            )
        else:
            batches = _device_batches(views, cfg.seed, epoch, batch_size, steps_per_epoch)
        model.train()
        ep_start, cpu_start, wait = time.perf_counter(), _cpu_seconds(), 0.0
        pending: list[torch.Tensor] = []  # losses stay on the device until the epoch ends: no sync per step
        bar = _progress(cfg.progress and views is None, steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}")
        fetch = time.perf_counter()
        for batch in batches:
            wait += time.perf_counter() - fetch
            share = (time.perf_counter() - run_start) / budget_s if budget_s else 0.0
            if share >= 1.0:
                out_of_time = True
                break
            lr = lr_at(step, total_steps, warmup_steps, peak_lr, cfg.min_lr, share)
            for group in optimizer.param_groups:
                group["lr"] = lr
            imgs = normalize(batch.to(device, non_blocking=True), model.config.mean, model.config.std)
            with autocast_for(device):
                loss, _, _ = model(imgs, mask_ratio=cfg.mask_ratio)
            if device.type == "cpu" and not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at step {step}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            pending.append(loss.detach())
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(pending[-1]):.4f}", lr=f"{lr:.1e}")
            fetch = time.perf_counter()
        if bar is not None:
            bar.close()
        losses = torch.stack(pending).float().cpu().tolist() if pending else []
        bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(f"loss is {losses[bad[0]]} at step {step - len(losses) + bad[0]}; lower the lr")
        step_log["step"].extend(range(step - len(losses), step))
        step_log["loss"].extend(losses)
        wall = time.perf_counter() - ep_start
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": step,
            "loss": float(np.mean(losses)) if losses else float("nan"),
            "lr": lr if losses else None,
            "wall_s": round(wall, 2),
            "samples_per_s": round(len(losses) * batch_size / wall, 2),
            "data_wait_share": round(wait / wall, 4),
            "cpu_cores_used": round((_cpu_seconds() - cpu_start) / wall, 2),
        }
        history.append(record)
        now = time.perf_counter()
        last = out_of_time or epoch + 1 == cfg.epochs
        if views is None or last or now - last_say >= 15.0:  # short device-side epochs: a line every 15 s
            last_say = now
            say(
                f"epoch {epoch + 1}: loss {record['loss']:.4f}, {record['samples_per_s']} img/s, "
                f"data wait {100 * record['data_wait_share']:.1f}%, {record['cpu_cores_used']} cores"
                + (f", {(now - run_start) / 60:.1f} min" if views is not None else "")
            )
        trained_s = now - run_start
        plot = cfg.plot_every is not None and (last or (cfg.plot_every > 0 and (epoch + 1) % cfg.plot_every == 0))
        n = len(entries)
        due = cfg.save_every_min is None or last or now - last_save >= 60 * cfg.save_every_min
        if due:
            last_save = now
            _save_epoch(out, model, optimizer, epoch + 1, step, history, step_log, cfg, n, device, trained_s, plot)
        if out_of_time:
            say(f"stopping in epoch {epoch + 1}: time budget of {cfg.time_budget_min} min used (schedule completed)")
            break
        if cfg.max_minutes is not None and (time.perf_counter() - run_start) / 60 > cfg.max_minutes:
            say(f"stopping after epoch {epoch + 1}: --max-minutes {cfg.max_minutes} reached")
            if not due:
                _save_epoch(out, model, optimizer, epoch + 1, step, history, step_log, cfg, n, device, trained_s, plot)
            if cfg.plot_every is not None and not plot:
                plot_loss(
                    out / "loss.png", step_log["step"], step_log["loss"], [(h["step"], h["loss"]) for h in history]
                )
            break

    if not history:  # resumed a finished run: still hand back the files
        _save_epoch(
            out, model, optimizer, start_epoch, step, history, step_log, cfg, len(entries), device, trained_s, False
        )
    return RunResult(
        checkpoint=out / "checkpoint.safetensors",
        metrics_path=out / "metrics.json",
        loss_curve=out / "loss.png",
        epochs_done=history[-1]["epoch"] if history else start_epoch,
        final_loss=history[-1]["loss"] if history else float("nan"),
        samples_per_s=float(np.mean([h["samples_per_s"] for h in history])) if history else 0.0,
        n_images=len(entries),
        history=history,
    )


def _device_batches(views: DeviceViews, seed: int, epoch: int, batch_size: int, steps: int):
    """An epoch of device-side batches: a seeded permutation, one generator per batch (deterministic for a seed)."""
    order = np.random.default_rng([seed, epoch]).permutation(len(views))
    for b in range(steps):
        yield views.batch(order[b * batch_size : (b + 1) * batch_size], np.random.default_rng([seed, epoch, b]))


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, mininterval=5.0 if not sys.stderr.isatty() else 0.1, file=sys.stderr)


def _save_epoch(
    out: Path,
    model: MaskedAutoencoderViT,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    step: int,
    history: list[dict[str, Any]],
    step_log: dict[str, list],
    cfg: PretrainConfig,
    n_images: int,
    device: torch.device,
    trained_s: float,
    plot: bool,
) -> None:
    save_weights(model, out / "checkpoint")
    save_state(
        out / "last.pt",
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "step": step,
            "history": history,
            "step_log": step_log,
            "torch_rng": torch.get_rng_state(),
            "trained_s": trained_s,
        },
    )
    config = {k: (v if not isinstance(v, Path) else str(v)) for k, v in asdict(cfg).items()}
    if not isinstance(config["data"], str):
        config["data"] = f"{len(config['data'])} paths"
    write_metrics(
        out / "metrics.json",
        {
            "config": config,
            "model": asdict(model.config),
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "n_images": n_images,
            "epochs_done": epoch,
            "steps_done": step,
            "train_wall_s": round(trained_s, 1),
            "final_loss": history[-1]["loss"] if history else None,
            "history": history,
        },
    )
    if plot:
        plot_loss(out / "loss.png", step_log["step"], step_log["loss"], [(h["step"], h["loss"]) for h in history])
