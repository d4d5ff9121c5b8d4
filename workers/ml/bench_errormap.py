"""``python -m workers.ml bench-errormap --out report.json``: our error maps vs the reference procedure.

Both sides get exactly the same weights (our model, exported into transformers'
``ViTMAEForPreTraining`` by key mapping) and the same preprocessed FracAtlas images:

* reference: the SKELEX release's procedure as it runs it: transformers' model, one image at a
  time, 10 sequential passes with random masks (ratio 0.75), per-pixel squared error in [0, 1]
  space averaged over the passes that removed each pixel;
* ours: complementary masks, all passes of all images batched through our timm-based model.

Fidelity: Pearson r, over the image's non-padding pixels, of each map with a 64-pass random-mask
map of the same image (an independent, much less noisy estimate of the same quantity); the
mean over images is reported. Timing covers model passes and error accumulation, not decoding
or resizing (identical on both sides). Weights are random (seeded) unless ``--checkpoint``
gives a trained one: the speed does not depend on them, the fidelities do somewhat.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

VARIANT_NAMES = {"tiny": "mae_vit_tiny_patch16", "base": "mae_vit_base_patch16"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="report.json", help="JSON report path")
    parser.add_argument("--variants", default="tiny,base", help="comma list of tiny, base")
    parser.add_argument("--images", type=int, default=8, help="FracAtlas images to use")
    parser.add_argument("--passes", type=int, default=8, help="our complementary passes")
    parser.add_argument("--sweep", default="4,12", help="extra complementary pass counts to report, comma list")
    parser.add_argument("--truth-passes", type=int, default=64, help="passes of the fidelity reference map")
    parser.add_argument("--quick", action="store_true", help="3 images, tiny and base: a couple of minutes on 2 cores")
    parser.add_argument("--checkpoint", default=None, help="our checkpoint instead of random weights (one variant)")
    parser.add_argument("--data", default=None, help="FracAtlas folder (default: ../shared/data/fracatlas)")
    parser.add_argument("--device", default="cpu", help="cpu (default, as the issue asks) or cuda")
    parser.add_argument("--seed", type=int, default=0)


def _images(folder: Path, n: int, size: int) -> tuple[torch.Tensor, np.ndarray]:
    from workers.imaging import ImagingError, load_image

    from .preprocess import prepare

    files = sorted((folder / "images" / "Fractured").glob("*.jpg")) + sorted(
        (folder / "images" / "Non_fractured").glob("*.jpg")
    )
    tensors: list[torch.Tensor] = []
    valids: list[np.ndarray] = []
    for path in files:
        if len(tensors) == n:
            break
        try:
            img = load_image(path)
        except ImagingError:
            continue  # FracAtlas holds a few truncated JPEGs on purpose
        prep = prepare(img.pixels, size=size, window=img.window)
        tensors.append(prep.tensor)
        valids.append(prep.valid)
    if len(tensors) < n:
        raise SystemExit(f"bench-errormap: only {len(tensors)} readable images under {folder}")
    return torch.stack(tensors), np.stack(valids)


def _pixel_errors(
    pred: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, model: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference-side error of one pass: ([N, S, S] squared error in [0, 1], [N, S, S] removed)."""
    from .preprocess import denormalise

    c = model.config
    rec = denormalise(model.unpatchify(pred), c.mean, c.std)
    err = ((rec - denormalise(x, c.mean, c.std)) ** 2).mean(dim=1)
    g = c.img_size // c.patch_size
    m = mask.reshape(-1, g, g).repeat_interleave(c.patch_size, 1).repeat_interleave(c.patch_size, 2)
    return err * m, m


@torch.no_grad()
def reference_maps(hf: Any, ours: Any, imgs: torch.Tensor, passes: int, seed: int) -> tuple[np.ndarray, float]:
    """The release procedure with transformers: per image, ``passes`` sequential random-mask passes."""
    gen = torch.Generator().manual_seed(seed)
    g2 = ours.config.num_patches
    maps = []
    start = time.perf_counter()
    for x in imgs:
        x = x[None].to(imgs.device)
        total = torch.zeros(1, x.shape[-1], x.shape[-1], device=x.device)
        count = torch.zeros_like(total)
        for _ in range(passes):
            out = hf(pixel_values=x, noise=torch.rand(1, g2, generator=gen).to(x.device))
            e, m = _pixel_errors(out.logits, x, out.mask, ours)
            total += e
            count += m
        maps.append((total / count.clamp_min(1))[0].cpu().numpy())
    return np.stack(maps), time.perf_counter() - start


@torch.no_grad()
def our_maps(model: Any, imgs: torch.Tensor, mode: str, passes: int, seed: int) -> tuple[np.ndarray, float]:
    """Our batched maps (all images and passes together)."""
    from .errormap import accumulate_errors, mask_noise

    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    noise = torch.stack([mask_noise(mode, passes, model.config.num_patches, 0.75, gen) for _ in range(len(imgs))])
    total, count = accumulate_errors(model, imgs, noise, 0.75, batch_size=64)
    maps = (total / count.clamp_min(1)).cpu().numpy()
    return maps, time.perf_counter() - start


def fidelity(maps: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    """Mean over images of the Pearson r between map and truth on valid pixels."""
    rs = [float(np.corrcoef(m[v], t[v])[0, 1]) for m, t, v in zip(maps, truth, valid)]
    return float(np.mean(rs))


def bench_variant(model: Any, imgs: torch.Tensor, valid: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """One variant's row of the report."""
    import transformers

    from .convert_hf import hf_config_dict, to_hf_state_dict
    from .embed import embed

    device = imgs.device
    hf = transformers.ViTMAEForPreTraining(transformers.ViTMAEConfig(**hf_config_dict(model.config), mask_ratio=0.75))
    hf.load_state_dict(to_hf_state_dict(model.state_dict()), strict=True)
    hf.to(device)  # type: ignore[arg-type]  # transformers types .to() for its dtype wrapper only
    hf.eval()
    model = model.to(device).eval()
    n = len(imgs)
    # warm-up both sides (allocator, kernels), untimed
    reference_maps(hf, model, imgs[:1], 1, 99)
    our_maps(model, imgs[:1], "complementary", 4, 99)
    truth, _ = our_maps(model, imgs, "reference", args.truth_passes, args.seed + 1000)
    ref, ref_s = reference_maps(hf, model, imgs, 10, args.seed)
    row: dict[str, Any] = {
        "reference": {"images_per_s": n / ref_s, "fidelity": fidelity(ref, truth, valid), "passes": 10},
    }
    extra = {int(v) for v in str(args.sweep).split(",") if v.strip()}
    for passes in sorted(extra | {args.passes}):
        ours, ours_s = our_maps(model, imgs, "complementary", passes, args.seed)
        entry = {"images_per_s": n / ours_s, "fidelity": fidelity(ours, truth, valid), "passes": passes}
        row["ours" if passes == args.passes else f"ours_{passes}_passes"] = entry
    ours_ref, _ = our_maps(model, imgs, "reference", 10, args.seed)
    row["ours_reference_mode_fidelity"] = fidelity(ours_ref, truth, valid)
    row["speedup"] = row["ours"]["images_per_s"] / row["reference"]["images_per_s"]
    start = time.perf_counter()
    embed(model, imgs, batch_size=32)
    row["embeddings_per_s"] = n / (time.perf_counter() - start)
    row["images"] = n
    return row


def _data_root(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fracatlas"


def run(args: argparse.Namespace) -> int:
    from .checkpoint import load_model
    from .model import create_model, pick_device

    if args.quick:
        args.images = min(args.images, 3)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    report: dict[str, Any] = {
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "weights": args.checkpoint or f"random (seed {args.seed})",
        "truth_passes": args.truth_passes,
        "variants": {},
    }
    if args.checkpoint:
        models = {"checkpoint": load_model(args.checkpoint, device="cpu")}
    else:
        models = {}
        for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
            if name not in VARIANT_NAMES:
                raise SystemExit(f"bench-errormap: unknown variant {name!r}; use {', '.join(VARIANT_NAMES)}")
            models[VARIANT_NAMES[name]] = create_model(VARIANT_NAMES[name]).eval()
    for name, model in models.items():
        imgs, valid = _images(_data_root(args.data), args.images, model.config.img_size)
        row = bench_variant(model, imgs.to(device), valid, args)
        report["variants"][model.config.variant if name == "checkpoint" else name] = row
        r, o = row["reference"], row["ours"]
        print(
            f"{name}: reference {r['images_per_s']:.2f} img/s (r={r['fidelity']:.3f}) | "
            f"ours {o['images_per_s']:.2f} img/s (r={o['fidelity']:.3f}) | "
            f"speedup {row['speedup']:.1f}x | embeddings {row['embeddings_per_s']:.1f}/s",
            flush=True,
        )
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0
