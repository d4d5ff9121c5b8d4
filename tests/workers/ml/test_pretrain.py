"""Pretraining on a tiny model: files of a run, determinism, resume, --init, bad input, and the
inference intensity convention."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from workers.ml.augment import RadiographAugment, jitter, normalize
from workers.ml.checkpoint import load_model
from workers.ml.datacache import build_cache, list_images, load_cached
from workers.ml.device_views import DeviceViews
from workers.ml.phantoms import make_phantom
from workers.ml.preprocess import prepare
from workers.ml.pretrain import PretrainConfig, lr_at, pretrain

TINY = dict(
    patch_size=16, embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2
)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    for i in range(6):
        img, _ = make_phantom(i, (96, 72), ("lytic",) if i % 2 else ())
        Image.fromarray(img).save(root / f"p{i}.png")
    rgb = np.stack([np.asarray(make_phantom(9, (80, 60), ())[0] // 256, np.uint8)] * 3, -1)
    Image.fromarray(rgb).save(root / "colour.jpg")
    good = (root / "colour.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(good[: len(good) // 2])  # a real truncated JPEG
    return root


def tiny_config(data, out, **kw):
    base = dict(
        data=str(data),
        out=str(out),
        img_size=32,
        epochs=2,
        batch_size=3,
        workers=0,
        progress=False,
        plot_every=None,
        model_overrides=TINY,
    )
    base.update(kw)
    return PretrainConfig(**base)


@pytest.fixture(scope="module")
def first_run(image_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    messages: list[str] = []
    result = pretrain(tiny_config(image_dir, out, plot_every=0, cache_dir=str(out.parent / "cache")), messages.append)
    return out, result, messages


def test_run_writes_checkpoint_metrics_curve_and_skips_bad_file(first_run):
    out, result, messages = first_run
    assert any("truncated.jpg" in m and "skipping" in m for m in messages)
    assert result.n_images == 7 and result.epochs_done == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert metrics["history"][-1]["samples_per_s"] > 0 and "cpu_cores_used" in metrics["history"][-1]
    assert (out / "loss.png").stat().st_size > 5_000
    model = load_model(result.checkpoint, device="cpu")  # the ML engine's loader reads our files
    assert model.config.embed_dim == 32 and model.config.img_size == 32


def test_same_seed_same_losses_and_resume_continues(image_dir, first_run, tmp_path):
    out, first, _ = first_run
    again = pretrain(tiny_config(image_dir, tmp_path / "b", epochs=1, cache_dir=str(out.parent / "cache")))
    assert again.history[0]["loss"] == first.history[0]["loss"]
    shutil.copytree(out, tmp_path / "a")
    resumed = pretrain(tiny_config(image_dir, tmp_path / "a", epochs=3, resume=True))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert [h["step"] for h in resumed.history] == [2, 4, 6]  # 7 images // batch 3 = 2 steps/epoch


def test_init_continues_from_a_checkpoint(image_dir, first_run, tmp_path):
    _, first, _ = first_run
    start = load_model(first.checkpoint, device="cpu")
    cont = pretrain(tiny_config(image_dir, tmp_path / "cont", epochs=1, init=str(first.checkpoint), lr=0.0, min_lr=0.0))
    after = load_model(cont.checkpoint, device="cpu")
    for key, value in start.state_dict().items():  # lr 0: weights unchanged, so they came from --init
        torch.testing.assert_close(after.state_dict()[key], value)


def test_schedule_warms_up_then_decays_to_the_floor():
    lrs = [lr_at(s, 100, 10, 1e-3, 1e-6) for s in range(101)]
    assert lrs[0] < lrs[5] < lrs[9] == pytest.approx(1e-3)
    assert lrs[50] < lrs[10] and lrs[100] == pytest.approx(1e-6)
    assert lr_at(20, 100, 10, 1e-3, 1e-6, time_share=1.0) == pytest.approx(1e-6)  # the clock ran out


def test_letterbox_view_matches_inference_preprocessing(tmp_path):
    img, _ = make_phantom(1, (64, 48), ("sclerotic",))
    Image.fromarray(img).save(tmp_path / "x.png")
    (entry,) = build_cache(list_images(tmp_path), tmp_path / "cache", long_side=64)
    still = RadiographAugment(
        img_size=64, letterbox_p=1.0, max_rotation_deg=0, hflip_p=0, brightness=0, contrast=0, gamma=(1, 1)
    )
    view = still(load_cached(entry), np.random.default_rng(0))
    ref = prepare(img, size=64)
    np.testing.assert_allclose(view[0].numpy(), ref.unit, atol=1e-3)
    torch.testing.assert_close(normalize(view[None])[0], ref.tensor, atol=5e-3, rtol=0)


def test_device_views_are_the_per_image_views_of_the_same_parameters(image_dir, first_run):
    """The canvas trick: a batch made from the padded, stacked images equals each image resampled alone."""
    out, _, _ = first_run
    entries = build_cache(list_images(image_dir), out.parent / "cache", long_side=48)
    aug = RadiographAugment(img_size=24)
    views = DeviceViews(entries, aug, torch.device("cpu"), dtype=torch.float32)
    index = np.array([0, 3, 5, 1, 3, 6])
    params = aug.draw_batch(views.heights[index], views.widths[index], np.random.default_rng(7))
    batch = views.views(index, params)
    assert batch.shape == (6, 1, 24, 24) and 0.0 <= float(batch.min()) and float(batch.max()) <= 1.0
    for row, i in enumerate(index):
        arr = torch.from_numpy(load_cached(entries[i]))[None, None]
        grid = F.affine_grid(torch.from_numpy(params["theta"][row : row + 1]), [1, 1, 24, 24], align_corners=False)
        alone = F.grid_sample(arr, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        g, c, b = (torch.tensor([params[k][row]], dtype=torch.float32) for k in ("gamma", "contrast", "bright"))
        torch.testing.assert_close(batch[row : row + 1], jitter(alone, g, c, b), atol=1e-5, rtol=0)


def test_batch_draws_follow_the_per_sample_recipe():
    aug = RadiographAugment(img_size=32)
    n = 4000
    h, w = np.full(n, 300.0), np.full(n, 200.0)
    p = aug.draw_batch(h, w, np.random.default_rng(0))
    theta = p["theta"].astype(np.float64)
    # Corners of each view, back in pixel-edge coordinates, stay inside the image except for letterboxed ones.
    corners = np.array([[-1, -1, 1], [1, -1, 1], [-1, 1, 1], [1, 1, 1]], dtype=np.float64).T
    pts = theta @ corners  # [n, 2, 4] in image-normalised units
    # A letterboxed view spans the long side (300 px): its y row has norm 1; any crop here is at most 283 px tall.
    letterboxed = np.hypot(theta[:, 1, 0], theta[:, 1, 1]) > 0.999
    inside = np.abs(pts[~letterboxed]).max(axis=(1, 2))
    share_letterbox = letterboxed.mean()
    assert 0.2 < share_letterbox < 0.3  # letterbox_p = 0.25 (a crop never needs ten tries here)
    assert inside.max() < 1.25  # a crop fits before rotation; a 10-degree turn pokes corners out a little
    assert set(np.unique(np.sign(theta[:, 0, 0]))) == {-1.0, 1.0}  # both flips occur
    assert (p["gamma"] >= 0.8).all() and (p["gamma"] <= 1.25).all()


def test_device_views_training_is_deterministic_and_saves_at_the_end(image_dir, first_run, tmp_path):
    out, _, _ = first_run
    cache = str(out.parent / "cache")
    cfg = dict(device_views=True, save_every_min=60.0, epochs=3, cache_dir=cache)
    a = pretrain(tiny_config(image_dir, tmp_path / "a", **cfg))
    b = pretrain(tiny_config(image_dir, tmp_path / "b", **cfg))
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert all(np.isfinite(h["loss"]) for h in a.history) and a.epochs_done == 3
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["epochs_done"] == 3 and metrics["steps_done"] == 6  # saved once, at the end, with every epoch
    assert load_model(a.checkpoint, device="cpu").config.embed_dim == 32
