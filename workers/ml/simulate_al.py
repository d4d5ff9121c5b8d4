"""Oracle active-learning simulation: does a sampling strategy need fewer labels than random order?

On a fully labelled set, the labels are hidden and revealed only for the images a strategy picks
(the oracle answers every head at once, as a radiologist filling the whole form). Protocol:

1. A fixed test split (``test_fraction``, stratified on the first head, seed ``split_seed``) is set
   aside and never seen by any loop. The rest is the pool.
2. ``full_data_auroc``: heads trained on every pool label, scored on the test split (per head;
   one-vs-rest macro AUROC for multiclass heads).
3. For each seed, an initial random set of ``initial`` pool images, the same for every strategy.
   Each round: train heads on the labelled set, score AUROC on the test split (one curve point),
   then the strategy picks ``budget`` more. ``rounds`` rounds give ``rounds + 1`` points at
   ``initial + r * budget`` labels.
4. Per head and strategy: the mean curve over seeds with a 95% t-interval; ``labels_to_95``, the
   first point of the mean curve at or above 0.95 x ``full_data_auroc`` (resolution: ``budget``;
   null if never reached within the simulated range); ``ratio_vs_random`` = that over random's
   (null when either is null); ``auc_curve``, the area under the mean curve divided by the label
   range, i.e. the mean AUROC over the simulated range (higher = learns faster).
5. How sure those numbers are: a paired bootstrap over seeds (``bootstrap`` resamples; the same
   resampled seeds for every strategy, since a seed fixes the initial set all strategies share)
   recomputes the three from resampled mean curves and gives 95% percentile intervals:
   ``labels_to_95_ci``, ``ratio_ci`` and ``auc_curve_ci``, plus ``p_ratio_le_0_6``, the share of
   resamples in which the strategy needs at most 60% of random's labels. A resample whose mean curve
   never reaches the target counts as needing infinitely many labels (an infinite bound is reported
   as null), except random's, which then counts as reaching it one round after the simulated range:
   a conservative denominator, so an unreached random never makes a strategy look better. The
   per-seed curves are kept (``seed_curves``) so the intervals can be recomputed.
6. Test-split noise (``splits`` > 1): the whole protocol is repeated on ``splits`` test splits
   (seeds ``split_seed``, ``split_seed + 1``, ...), each with its own pool, full-data AUROC and
   initial sets; a (split, seed) pair is one replicate. Each replicate's curve is divided by its
   split's full-data AUROC, so every replicate aims at its own 95% line; ``labels_to_95`` is where
   the mean of those normalised curves first reaches 0.95, and ``full_data_auroc`` is the mean over
   splits (each split's in ``full_data_auroc_splits``). The bootstrap becomes two-level: resample
   the splits, then the seeds within each resampled split, so the intervals include the noise of
   the test split itself, which one fixed split cannot show. With one split every number is what
   steps 1-5 give.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats
from threadpoolctl import threadpool_limits

from .heads import HeadConfig, Schema, known_mask, train_heads
from .heads_cv import bootstrap_ensemble
from .metrics_cls import head_metrics
from .sampling import select

DEFAULT_STRATEGIES = ("random", "entropy", "kcenter", "hybrid")


@dataclass
class SimulationSettings:
    """Everything that defines a run; stored in the report."""

    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    seeds: int = 5
    budget: int = 20
    rounds: int = 10
    initial: int = 20
    test_fraction: float = 0.3
    split_seed: int = 0
    ensemble_members: int = 5
    hybrid_uncertainty: str = "entropy"  # or "disagreement": of a bootstrap ensemble (sampling.hybrid)
    head_config: HeadConfig | None = None
    # Heads the rankings read (empty: all). Every head is still trained and scored; only what the
    # uncertainty-based rankings rank by changes (a project that labels for one finding first).
    focus: tuple[str, ...] = ()
    bootstrap: int = 2000
    splits: int = 1
    jobs: int = 1


def split_test(targets: Mapping[str, np.ndarray], schema: Schema, n: int, fraction: float, seed: int) -> np.ndarray:
    """Boolean [n] test mask, stratified on the first head (unknown answers form their own stratum)."""
    rng = np.random.default_rng(seed)
    first = schema.heads[0]
    t = np.asarray(targets[first.name])
    strata = t.astype(np.int64) if first.kind != "multilabel" else np.zeros(n, dtype=np.int64)
    test = np.zeros(n, dtype=bool)
    for s in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == s))
        test[members[: int(round(fraction * len(members)))]] = True
    return test


def test_aurocs(model: Any, emb: np.ndarray, targets: Mapping[str, np.ndarray], schema: Schema) -> dict[str, float]:
    """AUROC per head on the given rows (known answers only)."""
    probs = model.predict_proba(emb, calibrated=False)
    out = {}
    for h in schema.heads:
        t = np.asarray(targets[h.name])
        k = known_mask(h, t)
        if h.kind == "multilabel":
            out[h.name] = head_metrics(h.kind, np.where(k, t, np.nan), probs[h.name])["auroc"]
        else:
            out[h.name] = head_metrics(h.kind, t[k], probs[h.name][k])["auroc"]
    return out


def _subset(targets: Mapping[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {name: np.asarray(t)[idx] for name, t in targets.items()}


def focused(schema: Schema, focus: Sequence[str]) -> Schema:
    """The heads a ranking reads: those named in ``focus`` (all when empty)."""
    if not focus:
        return schema
    unknown = sorted(set(focus) - {h.name for h in schema.heads})
    if unknown:
        raise ValueError(
            f"focus on unknown head {', '.join(unknown)}; heads: {', '.join(h.name for h in schema.heads)}"
        )
    return Schema(tuple(h for h in schema.heads if h.name in focus))


def run_strategy(
    strategy: str,
    emb: np.ndarray,
    targets: Mapping[str, np.ndarray],
    schema: Schema,
    test: np.ndarray,
    initial: np.ndarray,
    settings: SimulationSettings,
    seed: int,
) -> dict[str, list[float]]:
    """One learning curve per head: test AUROC after each round of one strategy and seed."""
    cfg = settings.head_config or HeadConfig(seed=seed)
    test_idx = np.flatnonzero(test)
    labelled = [int(i) for i in initial]
    curves: dict[str, list[float]] = {h.name: [] for h in schema.heads}
    ranked = focused(schema, settings.focus)
    for r in range(settings.rounds + 1):
        lab = np.asarray(labelled, dtype=np.int64)
        model = train_heads(emb[lab], _subset(targets, lab), schema, cfg)
        for name, value in test_aurocs(model, emb[test_idx], _subset(targets, test_idx), schema).items():
            curves[name].append(value)
        if r == settings.rounds:
            break
        kwargs: dict[str, Any] = dict(n=len(emb), labelled=lab, exclude=test_idx, seed=seed * 1000 + r)
        if strategy in ("entropy", "margin", "hybrid"):
            kwargs.update(schema=ranked, probs=model.predict_proba(emb, calibrated=False))
        if strategy == "ensemble" or (strategy == "hybrid" and settings.hybrid_uncertainty == "disagreement"):
            members = bootstrap_ensemble(
                emb[lab], _subset(targets, lab), schema, settings.ensemble_members, cfg, seed + r
            )
            kwargs.update(schema=ranked, member_probs=[m.predict_proba(emb, calibrated=False) for m in members])
        if strategy in ("kcenter", "hybrid", "cold_start"):
            kwargs.update(embeddings=emb)
        if strategy == "hybrid":
            kwargs.update(hybrid_uncertainty=settings.hybrid_uncertainty)
        picks = select(strategy, settings.budget, **kwargs)
        labelled += [p.index for p in picks]
    return curves


def summarise(
    ns: np.ndarray,
    curves: Mapping[str, np.ndarray],
    full: float | np.ndarray,
    reference: str = "random",
    bootstrap: int = 2000,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """Report entries of one head: ``{strategy: {labels_to_95, ratio_vs_random, auc_curve, curve, ...}}``.

    Args:
        ns: [P] labels at each curve point.
        curves: ``{strategy: [R, P] AUROC}``; row r of every strategy comes from the same replicate
            (split and seed).
        full: the full-data AUROC of the head, one number or one per replicate [R] (its split's).
        reference: the strategy ratios are taken against.
        bootstrap: paired resamples for the intervals (0 = no intervals).
        seed: of the resampling.
        groups: [R] split of each replicate (None = one split); several make the bootstrap
            two-level (splits, then seeds within them).
    """
    out: dict[str, dict[str, Any]] = {}
    first = np.asarray(next(iter(curves.values())))
    scale = np.broadcast_to(np.asarray(full, dtype=np.float64), (first.shape[0],))[:, None]
    for name, c in curves.items():
        c = np.asarray(c, dtype=np.float64)
        mean = np.nanmean(c, axis=0)
        k = np.sum(~np.isnan(c), axis=0)
        sd = np.nanstd(c, axis=0, ddof=1) if c.shape[0] > 1 else np.zeros_like(mean)
        half = np.where(k > 1, stats.t.ppf(0.975, np.maximum(k - 1, 1)) * sd / np.sqrt(np.maximum(k, 1)), 0.0)
        # Each replicate against its own split's full-data AUROC; with one split this is the mean
        # curve against 0.95 x full.
        reached = np.flatnonzero(np.nanmean(c / scale, axis=0) >= 0.95)
        out[name] = {
            "labels_to_95": int(ns[reached[0]]) if len(reached) else None,
            "ratio_vs_random": None,
            "auc_curve": _clean(_area(ns, mean)),
            "curve": [[int(n), _clean(m), _clean(m - h), _clean(m + h)] for n, m, h in zip(ns, mean, half)],
            "seed_curves": [[_clean(v) for v in row] for row in c],
        }
    ref = out.get(reference, {}).get("labels_to_95")
    for entry in out.values():
        if ref and entry["labels_to_95"] is not None:
            entry["ratio_vs_random"] = round(entry["labels_to_95"] / ref, 4)
    if bootstrap and reference in curves:
        rows = _resample_rows(first.shape[0], groups, bootstrap, seed)
        normalised = {name: np.asarray(c, dtype=np.float64) / scale for name, c in curves.items()}
        _bootstrap_intervals(out, ns, curves, normalised, rows, reference)
    return out


def _resample_rows(n_rows: int, groups: np.ndarray | None, resamples: int, seed: int) -> np.ndarray:
    """[B, R] replicate rows of each bootstrap resample.

    One group: the seeds resampled with replacement. Several: the groups (splits) resampled with
    replacement, then within each drawn group its rows (seeds) with replacement; groups must be
    the same size."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(n_rows, dtype=np.int64) if groups is None else np.asarray(groups)
    uniq = np.unique(labels)
    if len(uniq) == 1:
        return rng.integers(0, n_rows, size=(resamples, n_rows))
    members = np.stack([np.flatnonzero(labels == g) for g in uniq])  # [G, S]
    n_groups, per = members.shape
    drawn = rng.integers(0, n_groups, size=(resamples, n_groups))
    within = rng.integers(0, per, size=(resamples, n_groups, per))
    return members[drawn[:, :, None], within].reshape(resamples, n_groups * per)


def _area(ns: np.ndarray, mean: np.ndarray) -> Any:
    """Area under the curve(s) over the label range, divided by the range (the mean AUROC over it).

    ``mean`` is one curve [P] (gives a float) or a stack [B, P] (gives [B])."""
    span = float(ns[-1] - ns[0])
    area = np.trapezoid(mean, ns, axis=-1) / span if span > 0 else mean[..., 0]
    return float(area) if np.ndim(area) == 0 else area


def _first_crossing(ns: np.ndarray, means: np.ndarray, target: float) -> np.ndarray:
    """[B] labels at which each mean curve of ``means`` [B, P] first reaches ``target``; inf if never."""
    hit = means >= target
    return np.where(hit.any(axis=1), ns[np.argmax(hit, axis=1)].astype(np.float64), np.inf)


def _bootstrap_intervals(
    out: dict[str, dict[str, Any]],
    ns: np.ndarray,
    curves: Mapping[str, np.ndarray],
    normalised: Mapping[str, np.ndarray],
    rows: np.ndarray,
    reference: str,
) -> None:
    """Adds the bootstrap intervals of the module docstring (steps 5 and 6) to ``out``.

    ``rows`` [B, R]: the replicates of each resample (``_resample_rows``), the same for every
    strategy; ``normalised``: each replicate's curve over its split's full-data AUROC."""
    resamples = rows.shape[0]

    def resampled_means(c: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a point with no AUROC in any resampled seed
            return np.nanmean(np.asarray(c, dtype=np.float64)[rows], axis=1)  # [B, P]

    ref_labels = _first_crossing(ns, resampled_means(normalised[reference]), 0.95)
    # Where random never reaches the target, it is taken to reach it one round after the simulated
    # range: fewer labels than it needs, so such a ratio overstates the strategy's cost, never its saving.
    step = float(ns[-1] - ns[-2]) if len(ns) > 1 else 1.0
    ref_bound = np.where(np.isinf(ref_labels), float(ns[-1]) + step, ref_labels)
    for name, c in curves.items():
        labels = _first_crossing(ns, resampled_means(normalised[name]), 0.95)
        ratio = np.ones(resamples) if name == reference else labels / ref_bound  # inf: only random reaches it
        entry = out[name]
        entry["labels_to_95_ci"] = _interval(labels)
        entry["ratio_ci"] = _interval(ratio)
        entry["p_ratio_le_0_6"] = _clean(float(np.mean(ratio <= 0.6)))
        entry["auc_curve_ci"] = [_clean(v) for v in np.quantile(_area(ns, resampled_means(c)), [0.025, 0.975])]


def _interval(x: np.ndarray) -> list[float | None] | None:
    """2.5% and 97.5% quantiles without interpolation (so infinite values stay infinite), as numbers or null."""
    if len(x) == 0:
        return None
    return [_clean(float(v)) for v in np.quantile(x, [0.025, 0.975], method="inverted_cdf")]


def _clean(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 5)


def simulate(
    emb: np.ndarray,
    targets: Mapping[str, np.ndarray],
    schema: Schema,
    settings: SimulationSettings,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Runs the whole protocol (module docstring) and returns the report dict.

    Args:
        emb: [N, D] embeddings.
        targets: ``{head: encoded targets}`` for all N images (the oracle's answers).
        schema: the heads simulated.
        settings: strategies, seeds, budget, rounds, initial set size, split.
        log: progress messages.

    Returns:
        ``{"heads": {head: {"full_data_auroc", "strategies": {...}}}, "settings": {...}}``.
    """
    # Thousands of small fits and predictions: one thread (BLAS and torch) is much faster than
    # contended ones on a busy CPU.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return _simulate(emb, targets, schema, settings, log)
    finally:
        torch.set_num_threads(threads)


def _simulate(
    emb: np.ndarray,
    targets: Mapping[str, np.ndarray],
    schema: Schema,
    settings: SimulationSettings,
    log: Callable[[str], None],
) -> dict[str, Any]:
    emb = np.asarray(emb, dtype=np.float32)
    n = len(emb)
    if settings.splits < 1 or settings.seeds < 1:
        raise ValueError("splits and seeds must be at least 1")
    focused(schema, settings.focus)  # unknown heads are named before any work
    cfg = settings.head_config or HeadConfig()
    ns = settings.initial + settings.budget * np.arange(settings.rounds + 1)
    tests, fulls, jobs = [], [], []
    for k in range(settings.splits):
        test = split_test(targets, schema, n, settings.test_fraction, settings.split_seed + k)
        pool = np.flatnonzero(~test)
        if settings.initial + settings.rounds * settings.budget > len(pool):
            raise ValueError(f"initial + rounds x budget exceeds the pool of {len(pool)} images")
        test_idx = np.flatnonzero(test)
        full_model = train_heads(emb[pool], _subset(targets, pool), schema, cfg)
        full = test_aurocs(full_model, emb[test_idx], _subset(targets, test_idx), schema)
        log(f"split {k}: full-data AUROC " + ", ".join(f"{h} {v:.3f}" for h, v in full.items()))
        tests.append(test)
        fulls.append(full)
        for seed in range(settings.seeds):
            # Split 0 keeps the initial sets of the one-split protocol.
            initial = np.random.default_rng(10_000 + seed + 100_000 * k).choice(
                pool, size=settings.initial, replace=False
            )
            jobs += [(k, seed, strategy, initial) for strategy in settings.strategies]

    context = (emb, targets, schema, tests, settings)
    results = []
    for (k, seed, strategy, _), (curves, seconds) in zip(jobs, _run_jobs(context, jobs, settings.jobs)):
        finals = ", ".join(f"{h} {v[-1]:.3f}" for h, v in curves.items())
        log(f"split {k} seed {seed} {strategy}: {seconds:.1f}s, final AUROC {finals}")
        results.append(curves)
    per: dict[str, dict[str, list[list[float]]]] = {h.name: {s: [] for s in settings.strategies} for h in schema.heads}
    replicates: list[tuple[int, int]] = []
    for (k, seed, strategy, _), curves in zip(jobs, results):
        for name, c in curves.items():
            per[name][strategy].append(c)
        if strategy == settings.strategies[0]:
            replicates.append((k, seed))
    groups = np.array([k for k, _ in replicates], dtype=np.int64)

    report: dict[str, Any] = {"heads": {}}
    for h in schema.heads:
        curves_h = {s: np.asarray(per[h.name][s]) for s in settings.strategies}
        split_full = np.array([f[h.name] for f in fulls], dtype=np.float64)
        report["heads"][h.name] = {
            "full_data_auroc": _clean(float(np.mean(split_full))),
            "strategies": summarise(ns, curves_h, split_full[groups], bootstrap=settings.bootstrap, groups=groups),
        }
        if settings.splits > 1:
            report["heads"][h.name]["full_data_auroc_splits"] = [_clean(v) for v in split_full]
    report["settings"] = {
        "strategies": list(settings.strategies),
        "seeds": settings.seeds,
        "splits": settings.splits,
        "split_seed": settings.split_seed,
        "budget": settings.budget,
        "rounds": settings.rounds,
        "initial": settings.initial,
        "test_fraction": settings.test_fraction,
        "hybrid_uncertainty": settings.hybrid_uncertainty,
        "focus": list(settings.focus),
        "weight_decay": (settings.head_config or HeadConfig()).weight_decay,
        "n_images": int(n),
        "n_pool": int((~tests[0]).sum()),
        "n_test": int(tests[0].sum()),
        "replicates": [list(r) for r in replicates],
        "resolution_labels": settings.budget,
        "bootstrap_resamples": settings.bootstrap,
        "target": "0.95 x full_data_auroc" + (" of each replicate's split" if settings.splits > 1 else ""),
    }
    return report


_CONTEXT: tuple[Any, ...] | None = None


def _set_context(context: tuple[Any, ...] | None) -> None:
    global _CONTEXT
    _CONTEXT = context
    torch.set_num_threads(1)


def _job(job: tuple[int, int, str, np.ndarray]) -> tuple[dict[str, list[float]], float]:
    """One learning curve per head of one (split, seed, strategy), and the seconds it took."""
    assert _CONTEXT is not None
    emb, targets, schema, tests, settings = _CONTEXT
    k, seed, strategy, initial = job
    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        curves = run_strategy(strategy, emb, targets, schema, tests[k], initial, settings, seed)
    return curves, time.perf_counter() - t0


def _run_jobs(context: tuple[Any, ...], jobs: Sequence[Any], workers: int) -> Iterator[Any]:
    """``_job`` of each job, in order, as they finish: here, or with ``workers`` > 1 in that many
    spawned processes (one BLAS and torch thread each; spawned, not forked, because a fork after
    torch has started its thread pool can hang)."""
    if workers <= 1 or len(jobs) <= 1:
        _set_context(context)
        try:
            yield from map(_job, jobs)
        finally:
            _set_context(None)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(min(workers, len(jobs)), initializer=_set_context, initargs=(context,)) as pool:
        yield from pool.imap(_job, jobs, chunksize=1)


def table(report: Mapping[str, Any], strategies: Sequence[str] | None = None) -> str:
    """A plain-text table of the report: one row per head and strategy (intervals when present)."""
    w = max([12, *(len(h) for h in report["heads"])])  # a long finding name keeps the columns aligned
    lines = [
        f"{'head':<{w}} {'strategy':<10} {'full AUROC':>10} {'labels_to_95':>12} {'95% CI':>12} "
        f"{'ratio':>7} {'95% CI':>13} {'P(<=0.6)':>8} {'auc_curve':>9} {'final':>7}"
    ]
    for head, entry in report["heads"].items():
        for name, s in entry["strategies"].items():
            if strategies and name not in strategies:
                continue
            final = s["curve"][-1][1]
            lines.append(
                f"{head:<{w}} {name:<10} {entry['full_data_auroc'] or float('nan'):>10.3f} "
                f"{_fmt(s['labels_to_95']):>12} {_fmt_ci(s.get('labels_to_95_ci'), 0):>12} "
                f"{_fmt(s['ratio_vs_random']):>7} {_fmt_ci(s.get('ratio_ci'), 2):>13} "
                f"{_fmt(s.get('p_ratio_le_0_6')):>8} {_fmt(s['auc_curve']):>9} {_fmt(final):>7}"
            )
    return "\n".join(lines)


def _fmt_ci(ci: Sequence[float | None] | None, digits: int) -> str:
    """``[lo, hi]`` as ``lo-hi``; a null upper bound (never reached / undefined) as ``lo-inf``."""
    if ci is None:
        return "-"
    lo, hi = ("inf" if v is None else f"{v:.{digits}f}" for v in ci)
    return f"{lo}-{hi}"


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    return f"{x:.3f}" if isinstance(x, float) else str(x)
