"""Oracle active-learning simulation: uncertainty beats random where it must; the report's shape."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.paths import FRACATLAS
from workers.ml.__main__ import main
from workers.ml.cli_simulate_al import read_labels
from workers.ml.heads import Schema
from workers.ml.simulate_al import SimulationSettings, simulate, summarise, table

BINARY = Schema.from_dict({"heads": [{"name": "abnormal", "kind": "binary", "classes": ["no", "yes"]}]})


def rare_boundary(seed: int = 0, n: int = 600, d: int = 20) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """~10% positives behind a sharp linear boundary: random sampling sees few of them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x, {"abnormal": (x[:, 0] + 0.5 * x[:, 1] > 1.3).astype(np.int64)}


def check_shape(report: dict, heads: list[str], strategies: list[str], points: int) -> None:
    assert list(report["heads"]) == heads
    for head in heads:
        entry = report["heads"][head]
        assert set(entry) == {"full_data_auroc", "strategies"}
        assert 0.5 < entry["full_data_auroc"] <= 1.0
        assert list(entry["strategies"]) == strategies
        for s in entry["strategies"].values():
            assert {"labels_to_95", "ratio_vs_random", "auc_curve", "curve"} <= set(s)
            assert {"labels_to_95_ci", "ratio_ci", "p_ratio_le_0_6", "auc_curve_ci", "seed_curves"} <= set(s)
            lo, hi = s["auc_curve_ci"]
            assert lo <= hi and 0 <= s["p_ratio_le_0_6"] <= 1
            assert len(s["curve"]) == points
            for n, mean, lo, hi in s["curve"]:
                assert isinstance(n, int) and lo <= mean <= hi
        assert entry["strategies"]["random"]["ratio_vs_random"] in (1.0, None)


def test_uncertainty_sampling_beats_random_on_a_rare_class() -> None:
    x, t = rare_boundary()
    settings = SimulationSettings(strategies=("random", "entropy", "hybrid"), seeds=3, budget=10, rounds=6, initial=10)
    report = simulate(x, t, BINARY, settings)
    check_shape(report, ["abnormal"], ["random", "entropy", "hybrid"], points=7)
    s = report["heads"]["abnormal"]["strategies"]
    assert s["entropy"]["auc_curve"] > s["random"]["auc_curve"] + 0.02
    assert s["entropy"]["labels_to_95"] < s["random"]["labels_to_95"]
    assert s["entropy"]["ratio_vs_random"] < 1.0
    assert report["settings"]["n_test"] == 180  # the fixed split: 30%


def step_curves(ns: np.ndarray, steps: list[int], low: float = 0.6, high: float = 0.9) -> np.ndarray:
    """One curve per seed: ``low`` until the seed's step, ``high`` from it on."""
    return np.array([[high if n >= step else low for n in ns] for step in steps])


def test_intervals_say_how_sure_the_ratio_is() -> None:
    ns = np.arange(10, 110, 10)
    curves = {
        "random": step_curves(ns, [50, 50, 50, 50]),
        "steady": step_curves(ns, [20, 20, 20, 20]),  # every seed needs 40% of random's labels
        "lucky": step_curves(ns, [20, 20, 90, 90]),  # two seeds early, two late
        "never": step_curves(ns, [999, 999, 999, 999]),
    }
    out = summarise(ns, curves, full=0.9, bootstrap=500)
    assert out["steady"]["ratio_vs_random"] == 0.4
    assert out["steady"]["ratio_ci"] == [0.4, 0.4] and out["steady"]["p_ratio_le_0_6"] == 1.0
    assert out["steady"]["labels_to_95_ci"] == [20, 20]
    # The mean curve of "lucky" reaches the target late; resamples of its early seeds reach it at 20.
    assert out["lucky"]["labels_to_95"] == 90 and out["lucky"]["ratio_vs_random"] == 1.8
    lo, hi = out["lucky"]["ratio_ci"]
    assert lo == 0.4 and hi == 1.8
    assert 0.0 < out["lucky"]["p_ratio_le_0_6"] < 0.5  # at least 3 of the 4 drawn seeds must be early
    assert out["never"]["labels_to_95"] is None and out["never"]["labels_to_95_ci"] == [None, None]
    assert out["never"]["ratio_ci"] == [None, None] and out["never"]["p_ratio_le_0_6"] == 0.0
    assert out["random"]["ratio_ci"] == [1.0, 1.0]
    lo, hi = out["lucky"]["auc_curve_ci"]
    assert lo < out["lucky"]["auc_curve"] < hi
    assert summarise(ns, curves, full=0.9, bootstrap=500) == out  # seeded
    rows = table({"heads": {"h": {"full_data_auroc": 0.9, "strategies": out}}}).splitlines()
    assert "0.40-1.80" in next(r for r in rows if " lucky " in r)
    assert "inf-inf" in next(r for r in rows if " never " in r)


def test_an_unreached_random_never_flatters_a_strategy() -> None:
    ns = np.arange(10, 110, 10)
    curves = {"random": step_curves(ns, [999, 999, 50, 50]), "steady": step_curves(ns, [20, 20, 20, 20])}
    out = summarise(ns, curves, full=0.9, bootstrap=500)
    assert out["random"]["labels_to_95"] is None and out["steady"]["ratio_vs_random"] is None
    # Resamples where random never gets there count it as reaching the target at 110 labels (one round
    # past the range), not as infinitely many: the ratio is 20/110 there, 20/50 when it does get there.
    assert out["steady"]["ratio_ci"] == [round(20 / 110, 5), 0.4]
    assert out["random"]["labels_to_95_ci"] == [50, None] and out["random"]["ratio_ci"] == [1.0, 1.0]
    assert len(out["steady"]["seed_curves"]) == 4 and out["steady"]["seed_curves"][0][1] == 0.9


def test_each_split_aims_at_its_own_full_data_auroc() -> None:
    ns = np.arange(10, 110, 10)
    # Split A (full AUROC 0.80) reaches 100% of its full AUROC at 40 labels, split B (full 0.95)
    # 90.5% of its own: the mean of the replicates' normalised curves is 0.9525 there, enough. The
    # raw mean curve against 0.95 x the mean full AUROC weighs split B more and gets there at 70.
    a = step_curves(ns, [40, 40], low=0.60, high=0.80)
    b = step_curves(ns, [40, 40], low=0.80, high=0.85975)
    b[:, ns >= 70] = 0.95
    curves = {"random": np.vstack([a, b]), "other": np.vstack([a, b])}
    full = np.array([0.80, 0.80, 0.95, 0.95])
    out = summarise(ns, curves, full, bootstrap=200, groups=np.array([0, 0, 1, 1]))
    assert out["random"]["labels_to_95"] == 40
    raw = np.mean(np.vstack([a, b]), axis=0)
    assert ns[np.argmax(raw >= 0.95 * full.mean())] == 70


def test_two_level_bootstrap_shows_test_split_noise() -> None:
    ns = np.arange(10, 110, 10)
    # Within each split every seed agrees, so resampling seeds alone shows no doubt; the splits
    # disagree (ratio 0.4 on one, 1.0 on the other), and resampling splits shows it.
    curves = {
        "random": step_curves(ns, [50, 50, 50, 50, 50, 50]),
        "other": step_curves(ns, [20, 20, 20, 50, 50, 50]),
    }
    groups = np.array([0, 0, 0, 1, 1, 1])
    two_level = summarise(ns, curves, 0.9, bootstrap=400, groups=groups)["other"]
    assert two_level["ratio_ci"] == [0.4, 1.0]
    assert 0.1 < two_level["p_ratio_le_0_6"] < 0.5  # both drawn splits must be the good one
    for split in (0, 1):
        rows = groups == split
        one = summarise(ns, {k: v[rows] for k, v in curves.items()}, 0.9, bootstrap=400)["other"]
        assert one["ratio_ci"][0] == one["ratio_ci"][1]


def test_several_splits_in_parallel_give_the_same_report() -> None:
    x, t = rare_boundary(n=300)
    settings = SimulationSettings(
        strategies=("random", "entropy"), seeds=2, splits=2, budget=10, rounds=3, initial=10, bootstrap=100
    )
    report = simulate(x, t, BINARY, settings)
    entry = report["heads"]["abnormal"]
    assert len(entry["full_data_auroc_splits"]) == 2
    assert entry["full_data_auroc"] == pytest.approx(np.mean(entry["full_data_auroc_splits"]), abs=1e-5)
    assert report["settings"]["replicates"] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert len(entry["strategies"]["entropy"]["seed_curves"]) == 4
    # Split 0 of a several-split run is the one-split run's split, with the same initial sets.
    single = simulate(x, t, BINARY, SimulationSettings(**{**settings.__dict__, "splits": 1}))
    assert (
        single["heads"]["abnormal"]["strategies"]["random"]["seed_curves"]
        == (entry["strategies"]["random"]["seed_curves"][:2])
    )
    parallel = simulate(x, t, BINARY, SimulationSettings(**{**settings.__dict__, "jobs": 2}))
    assert parallel == report


def test_same_seed_same_report() -> None:
    x, t = rare_boundary(n=300)
    settings = SimulationSettings(strategies=("random", "kcenter"), seeds=2, budget=10, rounds=2, initial=10)
    assert simulate(x, t, BINARY, settings) == simulate(x, t, BINARY, settings)


def test_rejects_a_budget_beyond_the_pool() -> None:
    x, t = rare_boundary(n=100)
    with pytest.raises(ValueError, match="exceeds the pool"):
        simulate(x, t, BINARY, SimulationSettings(budget=50, rounds=2, initial=10))


def fracatlas_like(folder: Path, n: int = 240, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """A dataset.csv in the FracAtlas layout whose labels follow the embeddings."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, 12)).astype(np.float32)
    part = np.argmax(emb[:, 2:7], axis=1)
    lines = ["image_id,hand,leg,hip,shoulder,mixed,hardware,fractured,fracture_count"]
    ids = []
    for i in range(n):
        onehot = [int(part[i] == k) for k in range(5)]
        if i == 0:
            onehot = [0, 0, 0, 0, 0]  # no body part: unknown
        if i == 1:
            onehot = [1, 0, 0, 1, 1]  # a mixed film, FracAtlas-style
        fractured = int(emb[i, 0] > 0.6)
        ids.append(f"IMG{i:07d}.jpg")
        lines.append(f"{ids[-1]},{','.join(map(str, onehot))},{int(emb[i, 1] > 0.8)},{fractured},{2 * fractured}")
    (folder / "dataset.csv").write_text("\n".join(lines) + "\n")
    return ids, emb


def test_command_writes_report_and_plot(tmp_path: Path) -> None:
    ids, emb = fracatlas_like(tmp_path)
    npz = tmp_path / "emb.npz"
    np.savez(npz, ids=np.array(ids[::-1]), embeddings=emb[::-1].astype(np.float16))  # any order
    out = tmp_path / "out" / "report.json"
    argv = ["simulate-al", "--data", str(tmp_path), "--embeddings", str(npz), "--heads", "fractured,hardware,bodypart"]
    argv += ["--strategies", "random,entropy,kcenter,hybrid", "--seeds", "2", "--budget", "10", "--rounds", "3"]
    argv += ["--initial", "20", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    check_shape(report, ["fractured", "hardware", "bodypart"], ["random", "entropy", "kcenter", "hybrid"], points=4)
    assert report["heads"]["bodypart"]["full_data_auroc"] > 0.8
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Two test splits: every head reports both splits' full-data AUROC and 2 x 2 replicates.
    assert main(argv[:-1] + [str(out.with_name("splits.json")), "--splits", "2", "--strategies", "random,hybrid"]) == 0
    report = json.loads(out.with_name("splits.json").read_text())
    assert report["settings"]["splits"] == 2 and len(report["settings"]["replicates"]) == 4
    assert all(len(e["full_data_auroc_splits"]) == 2 for e in report["heads"].values())
    assert out.with_name("splits.png").exists()
    # --split-seed moves the splits: a development study on splits 1-2 shares split 1 with the run above.
    dev_argv = ["--splits", "2", "--split-seed", "1", "--strategies", "random"]
    assert main(argv[:-1] + [str(out.with_name("dev.json")), *dev_argv]) == 0
    dev = json.loads(out.with_name("dev.json").read_text())
    assert dev["settings"]["split_seed"] == 1
    dev_aurocs = [e["full_data_auroc_splits"] for e in dev["heads"].values()]
    run_aurocs = [e["full_data_auroc_splits"] for e in report["heads"].values()]
    assert [d[0] for d in dev_aurocs] == [r[1] for r in run_aurocs]
    assert [d[1] for d in dev_aurocs] != [r[0] for r in run_aurocs]


def test_read_labels_binary_columns_and_bodypart(tmp_path: Path) -> None:
    fracatlas_like(tmp_path, n=30)
    ids, schema, t = read_labels(tmp_path, ["fractured", "bodypart"])
    assert [h.kind for h in schema.heads] == ["binary", "multiclass"]
    assert t["bodypart"][0] == -1 and t["bodypart"][1] == 4 and (t["bodypart"][1:] >= 0).all()
    with pytest.raises(ValueError, match="fracture_count"):
        read_labels(tmp_path, ["fracture_count"])  # counts are not a 0/1 column


@pytest.mark.skipif(not (FRACATLAS / "dataset.csv").exists(), reason="shared FracAtlas data not beside the clone")
def test_real_fracatlas_heads() -> None:
    ids, schema, t = read_labels(FRACATLAS, ["fractured", "hardware", "bodypart"])
    assert len(ids) == len(t["fractured"]) > 1700
    assert 0.2 < t["fractured"].mean() < 0.5
    assert set(np.unique(t["bodypart"])) <= {-1, 0, 1, 2, 3, 4}
    assert (t["bodypart"] >= 0).all()  # "mixed" films also set each part's column
    assert (t["bodypart"] == 4).sum() == 192


def test_auto_embeddings_skip_unreadable_images(tmp_path: Path) -> None:
    from PIL import Image

    from workers.ml.checkpoint import save_checkpoint
    from workers.ml.cli_simulate_al import compute_embeddings
    from workers.ml.model import create_model

    ckpt = save_checkpoint(
        create_model("mae_vit_tiny_patch16", img_size=32, patch_size=16, depth=2, decoder_depth=1),
        tmp_path / "tiny.safetensors",
    )
    rng = np.random.default_rng(0)
    paths = {}
    for name in ("a.png", "b.jpg"):
        paths[name] = tmp_path / name
        Image.fromarray(rng.integers(0, 255, (40, 30), dtype=np.uint8)).save(paths[name])
    paths["c.jpg"] = tmp_path / "c.jpg"
    paths["c.jpg"].write_bytes(paths["b.jpg"].read_bytes()[:100])  # truncated, like FracAtlas' corrupt ones
    ids, emb = compute_embeddings(paths, ckpt, batch_size=2)
    assert ids == ["a.png", "b.jpg"]
    assert emb.shape == (2, 384) and emb.dtype == np.float16  # mean + max of the 192-d tokens (default pooling)
    np.testing.assert_allclose(np.linalg.norm(emb.astype(np.float32), axis=1), 1.0, atol=1e-2)
    # The simulation measures the embedding the platform stores: same pooling, same scales.
    from workers.ml.checkpoint import load_model
    from workers.tasks import engine

    stored = engine.embed(
        load_model(ckpt, device="cpu"),
        [np.asarray(Image.open(paths["a.png"]).convert("L"))],
        [None],
        engine.analysis_params(),
    )
    np.testing.assert_allclose(emb[0], stored[0], atol=1e-3)
    # The pretraining cache (336 px) is too coarse for a 224 px model's 2 x 2 tiles (384 px canvas).
    big = save_checkpoint(create_model("mae_vit_tiny_patch16", depth=1, decoder_depth=1), tmp_path / "big.safetensors")
    with pytest.raises(SystemExit, match="coarser than the 544 px canvas of scale 3"):
        compute_embeddings(paths, big, cache_dir=tmp_path / "cache")
    ids1, one_scale = compute_embeddings(paths, ckpt, scales=(1,))
    assert ids1 == ids and not np.allclose(one_scale, emb, atol=1e-2)


def test_embed_scales_argument_is_checked() -> None:
    import argparse

    from workers.ml.cli_simulate_al import parse_scales

    assert parse_scales("1,2,3") == (1, 2, 3) and parse_scales("1") == (1,)
    with pytest.raises(argparse.ArgumentTypeError, match="1, 2 or 3; got 5"):
        parse_scales("1,5")
    with pytest.raises(argparse.ArgumentTypeError, match="not a list of integers: '1,x'"):
        parse_scales("1,x")


def test_hybrid_by_ensemble_disagreement_also_finds_the_rare_class() -> None:
    x, t = rare_boundary()
    settings = SimulationSettings(
        strategies=("random", "hybrid"), seeds=3, budget=10, rounds=6, initial=10, hybrid_uncertainty="disagreement"
    )
    report = simulate(x, t, BINARY, settings)
    s = report["heads"]["abnormal"]["strategies"]
    assert s["hybrid"]["auc_curve"] > s["random"]["auc_curve"] + 0.02
    assert report["settings"]["hybrid_uncertainty"] == "disagreement"
    by_entropy = simulate(
        x, t, BINARY, SimulationSettings(strategies=("random", "hybrid"), seeds=3, budget=10, rounds=6, initial=10)
    )
    assert by_entropy["heads"]["abnormal"]["strategies"]["hybrid"]["curve"] != s["hybrid"]["curve"]  # it is used


def test_a_focus_finding_is_learned_faster_and_the_others_are_still_scored() -> None:
    """Two findings: a rare one behind a sharp boundary and a common, noisy one elsewhere. Ranked
    by both, half the uncertain picks go to the common finding's boundary; ranked for the rare one
    (``focus``), it reaches its full-data AUROC with fewer labels. Random order is unchanged."""
    x, t = rare_boundary(n=800)
    rng = np.random.default_rng(1)
    t["common"] = (x[:, 2] + 0.7 * rng.normal(size=len(x)) > 0).astype(np.int64)
    schema = Schema.from_dict({"heads": [
        {"name": "abnormal", "kind": "binary", "classes": ["no", "yes"]},
        {"name": "common", "kind": "binary", "classes": ["no", "yes"]},
    ]})  # fmt: skip
    base = dict(strategies=("random", "entropy"), seeds=3, budget=10, rounds=6, initial=10, bootstrap=0)
    both = simulate(x, t, schema, SimulationSettings(**base))
    rare_first = simulate(x, t, schema, SimulationSettings(**base, focus=("abnormal",)))
    assert rare_first["settings"]["focus"] == ["abnormal"] and both["settings"]["focus"] == []
    b, f = (r["heads"]["abnormal"]["strategies"] for r in (both, rare_first))
    assert f["entropy"]["auc_curve"] > b["entropy"]["auc_curve"] + 0.01
    assert f["random"]["curve"] == b["random"]["curve"]
    assert set(rare_first["heads"]) == {"abnormal", "common"}  # every finding is still trained and scored
    with pytest.raises(ValueError, match="focus on unknown head spleen; heads: abnormal, common"):
        simulate(x, t, schema, SimulationSettings(**base, focus=("spleen",)))


def test_the_command_names_a_focus_that_is_not_among_its_heads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate-al", "--data", str(tmp_path), "--embeddings", str(tmp_path / "none.npz"), "--heads", "fractured"]
    assert main([*argv, "--focus", "hardware", "--out", str(tmp_path / "r.json")]) == 2
    assert "--focus hardware is not among --heads fractured" in capsys.readouterr().err
