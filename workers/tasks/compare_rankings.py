"""Which ranking would have saved labels on *this* project? The oracle simulation on its own labels.

``python -m workers.tasks.compare_rankings --project SLUG [--out DIR]`` replays the labelling of a
project's labelled images (``workers/ml/simulate_al.py``, the protocol behind ``simulate-al``): its
stored embeddings (the active backbone's, one readout) and its live head answers are the oracle;
each of the platform's rankings (``settings["sampling"]``) starts from the same random labels and
picks in rounds, and a test split the loop never sees scores the heads after every round. It
prints the table of ``simulate-al``, the paired gain of each ranking over random order, and which
ranking learned fastest, and writes ``report.json`` and ``report.png`` to ``--out``. Nothing in
the project is changed: the choice stays the lead's (project page, **Rank the queue by**).

Why: on FracAtlas no ranking wins on every finding (``docs/active-learning.md``), so the one to
use depends on a project's data; once a project has a few hundred labelled images, its own labels
can say.

The gain of a ranking is paired by replicate (test split and seed, which fix the initial labels
every ranking shares): the mean AUROC over the simulated range of the ranking's curve minus
random order's on the same replicate, averaged, with a 95% t-interval. A ranking is called
better than random on a finding when that interval lies above 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from celery import shared_task
from scipy import stats

logger = logging.getLogger(__name__)

# The platform's rankings, in the order the project page lists them (projects.models.SAMPLING).
RANKINGS = ("hybrid", "entropy", "margin", "ensemble", "kcenter", "random")
MIN_PER_CLASS = 10  # answers of each of two classes a finding needs to be compared on


class NotEnoughLabels(ValueError):
    """The project cannot be compared yet; the message says what it lacks."""


def project_data(
    project: Any, log: Callable[[str], None] = lambda s: None, max_images: int | None = None
) -> tuple[np.ndarray, Any, dict, list[str]]:
    """The labelled images' embeddings, the schema of the findings to compare, their targets, and
    notes on what was left out (as ``(emb [N, D], schema, targets, notes)``).

    Raises:
        NotEnoughLabels: fewer than ``COMPARE_MIN_LABELLED`` labelled images with embeddings, or no finding
            with ``MIN_PER_CLASS`` answers of two classes.
    """
    # Below COMPARE_MIN_LABELLED the test split holds too few answers for an AUROC worth comparing
    # (the project page checks it too, before anyone presses the button).
    from skelex_web.learning.services import COMPARE_MIN_LABELLED as MIN_LABELLED
    from skelex_web.learning.services import resolve_backbone
    from workers.ml.heads import Schema, encode_answers, known_mask
    from workers.tasks.learning import is_labelled, project_rows, stack_vectors

    backbone = resolve_backbone(project)
    if backbone is None:
        raise NotEnoughLabels(f"{project.name} has no backbone: register and activate one first")
    rows, answers, stale = project_rows(project, backbone)  # the rows a training round would use
    rows = [r for r in rows if is_labelled(answers.get(r[0], {}))]
    notes = [f"{stale} images with embeddings of an earlier analysis left out"] if stale else []
    if len(rows) < MIN_LABELLED:
        raise NotEnoughLabels(
            f"{project.name} has {len(rows)} analysed, labelled images; comparing rankings needs at least "
            f"{MIN_LABELLED} (30% are held out to test on, and must hold enough answers of each finding)"
        )
    if max_images and len(rows) > max_images:
        keep = np.sort(np.random.default_rng(0).choice(len(rows), size=max_images, replace=False))
        notes.append(f"compared on {max_images} of the {len(rows)} labelled images, drawn at random")
        rows = [rows[k] for k in keep]
    schema = Schema.from_dict({"heads": project.label_schema.get("heads", [])})
    targets = encode_answers(schema, [answers[r[0]] for r in rows])
    kept = []
    for head in schema.heads:
        if head.kind == "multilabel":
            notes.append(f"{head.name}: multilabel findings are not compared")
            continue
        t = targets[head.name]
        counts = np.bincount(t[known_mask(head, t)].astype(np.int64), minlength=len(head.classes))
        if not counts.any():
            notes.append(f"{head.name}: left out, no answers")
        elif np.sum(counts >= MIN_PER_CLASS) < 2:
            given = ", ".join(f"{c} {n}" for c, n in zip(head.classes, counts.tolist()) if n)
            notes.append(f"{head.name}: left out, fewer than {MIN_PER_CLASS} answers in two classes ({given})")
        else:
            kept.append(head)
    if not kept:
        raise NotEnoughLabels(
            f"{project.name}: no finding has {MIN_PER_CLASS} answers in each of two classes yet ("
            + "; ".join(notes)
            + ")"
        )
    schema = Schema(tuple(kept))
    # A finding may be unanswered on some images (unknown): the heads' masked loss and the test
    # AUROC skip those; the first finding stratifies the test split.
    emb = stack_vectors(rows)
    log(f"{len(rows)} labelled images, findings compared: {', '.join(h.name for h in kept)}")
    return emb, schema, {h.name: targets[h.name] for h in kept}, notes


def default_settings(n_labelled: int, strategies: Sequence[str] = RANKINGS, **overrides: Any) -> Any:
    """Rounds that cover the project's pool: 30% test, an initial 5% of the pool (at least 10), and
    about 40 rounds of at least 5 labels."""
    from workers.ml.simulate_al import SimulationSettings

    pool = n_labelled - int(round(0.3 * n_labelled))
    initial = max(10, pool // 20)
    budget = max(5, (pool - initial) // 40)
    rounds = max(1, min(40, (pool - initial) // budget))
    values: dict[str, Any] = dict(
        strategies=tuple(strategies), seeds=5, splits=3, budget=budget, rounds=rounds, initial=initial,
        test_fraction=0.3, bootstrap=1000,
    )  # fmt: skip
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SimulationSettings(**values)


def paired_gains(report: dict[str, Any], reference: str = "random") -> dict[str, dict[str, dict[str, float | None]]]:
    """Per finding and ranking: the mean over replicates of (area under its curve - the
    ``reference`` ranking's), with a 95% t-interval; areas are mean AUROC over the simulated range
    (``auc_curve`` per replicate). Rankings share each replicate's test split and first labels."""
    from workers.ml.simulate_al import _area

    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for head, entry in report["heads"].items():
        strategies = entry["strategies"]
        if reference not in strategies:
            continue
        ns = np.array([p[0] for p in strategies[reference]["curve"]], dtype=np.float64)
        # One area per replicate; a replicate with an undefined point (None) gives NaN.
        areas = {
            name: np.asarray(_area(ns, np.array(s["seed_curves"], dtype=np.float64))) for name, s in strategies.items()
        }
        base = areas[reference]
        out[head] = {}
        for name in strategies:
            if name in (reference, "random"):
                continue
            d = areas[name] - base
            d = d[~np.isnan(d)]
            if d.size < 2:
                out[head][name] = {"gain": None, "lo": None, "hi": None}
                continue
            half = float(stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size))
            out[head][name] = {"gain": float(d.mean()), "lo": float(d.mean() - half), "hi": float(d.mean() + half)}
    return out


def against_current(report: dict[str, Any], best: str, current: str) -> dict[str, Any] | None:
    """``best`` against the ranking in use, paired the same way: on which findings it is clearly
    better or worse, and whether switching is worth it (better on at least half, worse on none).
    None when they are the same ranking or the one in use was not compared."""
    if best == current or any(current not in e["strategies"] for e in report["heads"].values()):
        return None
    per = {h: g[best] for h, g in paired_gains(report, reference=current).items() if best in g}
    better = [h for h, g in per.items() if (g["lo"] or 0) > 0]
    worse = [h for h, g in per.items() if g["hi"] is not None and g["hi"] < 0]
    values = [g["gain"] for g in per.values() if g["gain"] is not None]
    return {
        "ranking": current,
        "gains": per,
        "mean_gain": float(np.mean(values)) if values else None,
        "better_on": better,
        "worse_on": worse,
        "switch": bool(per) and len(better) * 2 >= len(per) and not worse,
    }


def labels_needed(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per finding: how many labels each ranking (random order included) needed before its test
    AUROC reached 95% of what every labelled image of the pool gives, and that as a share of random
    order's, with its 95% interval when the report has one (the measure of ``simulate-al``).
    ``None`` where the replayed range ended first."""
    out: dict[str, dict[str, Any]] = {}
    for head, entry in report["heads"].items():
        out[head] = {
            "full_data_auroc": entry.get("full_data_auroc"),
            "rankings": {
                name: {
                    "labels": s.get("labels_to_95"),
                    "ratio": s.get("ratio_vs_random"),
                    "ratio_ci": s.get("ratio_ci"),
                }
                for name, s in entry["strategies"].items()
            },
        }
    return out


def mean_gains(gains: dict[str, dict[str, dict[str, float | None]]]) -> dict[str, float | None]:
    """Each ranking's gain averaged over the findings (the number the recommendation ranks by)."""
    names = sorted({n for per_head in gains.values() for n in per_head})
    out: dict[str, float | None] = {}
    for name in names:
        values = [g[name]["gain"] for g in gains.values() if g.get(name, {}).get("gain") is not None]
        out[name] = float(np.mean(values)) if values else None
    return out


def recommend(gains: dict[str, dict[str, dict[str, float | None]]]) -> dict[str, Any]:
    """The ranking with the largest mean gain over the findings, and whether the evidence is clear:
    above random on at least half of the findings (interval above 0) and below it on none."""
    means = {n: g for n, g in mean_gains(gains).items() if g is not None}
    if not gains or not means:
        return {"ranking": "hybrid", "clear": False, "text": "nothing to compare: keep the default (hybrid)"}
    best = max(means, key=lambda n: (means[n], n))
    mean_gain = means[best]
    above = [h for h, g in gains.items() if (g[best]["lo"] or 0) > 0]
    below = [h for h, g in gains.items() if g[best]["hi"] is not None and g[best]["hi"] < 0]
    # Findings on which every ranking beats random order say nothing about which ranking to choose.
    everyone = [h for h, g in gains.items() if len(g) > 1 and all((v["lo"] or 0) > 0 for v in g.values())]
    clear = mean_gain > 0 and len(above) * 2 >= len(gains) and not below
    gain = (
        f"{mean_gain:+.3f} AUROC over random order, averaged over {len(gains)} finding{'s' if len(gains) > 1 else ''}"
    )
    if clear:
        text = (
            f"{best} learned fastest on this project's labels ({gain}); clearly ahead of random on {', '.join(above)}"
        )
        if everyone:
            text += f" (every ranking is, on {', '.join(everyone)})"
    elif mean_gain > 0:
        own = [h for h in above if h not in everyone]
        said = []
        if everyone:
            said.append(f"every ranking beats random order on {', '.join(everyone)}")
        if own:
            said.append(f"{best} is clearly better on {', '.join(own)}")
        if below:
            said.append(f"worse on {', '.join(below)}")
        rest = [h for h in gains if h not in above and h not in below]
        nobody = [h for h in rest if not any((v["lo"] or 0) > 0 for v in gains[h].values())]
        if nobody:
            said.append(f"on {', '.join(nobody)} no ranking is clearly ahead of random order")
        if others := [h for h in rest if h not in nobody]:
            said.append(f"on {', '.join(others)} another ranking is clearly ahead of random order, {best} is not")
        text = f"{best} learned fastest ({gain}), but not clearly: " + "; ".join(said)
    else:
        text = "no ranking learned faster than random order on this project's labels"
    return {"ranking": best, "mean_gain": mean_gain, "clear": clear, "better_on": above, "worse_on": below,
            "text": text}  # fmt: skip


def compare(
    project: Any,
    *,
    settings: Any = None,
    log: Callable[[str], None] = lambda s: None,
    max_images: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Runs the comparison; returns the ``simulate-al`` report plus ``gains``, ``recommendation``,
    ``notes`` and ``project``. ``max_images``: compare on that many labelled images at most
    (drawn at random), to bound the time. ``progress(done, total)``: after each replay (one
    ranking on one test split and seed)."""
    from workers.ml.simulate_al import simulate

    emb, schema, targets, notes = project_data(project, log, max_images)
    # The replays rank as the project does: for its focus finding first, when it has one compared.
    focus = str(project.setting("focus") or "")
    if focus and focus in targets and "focus" not in overrides:
        overrides["focus"] = (focus,)
    settings = settings or default_settings(len(emb), **overrides)
    total = settings.splits * settings.seeds * len(settings.strategies)
    done = 0

    def counted(line: str) -> None:
        nonlocal done
        log(line)
        if progress and line.startswith("split ") and " seed " in line:  # simulate's line per replay
            done += 1
            progress(done, total)

    t0 = time.perf_counter()
    report = simulate(emb, targets, schema, settings, log=counted)
    report["settings"].update(
        n_labelled=len(emb), embedding_dim=int(emb.shape[1]), seconds=round(time.perf_counter() - t0, 1)
    )
    report["gains"] = paired_gains(report)
    current = str(project.setting("sampling") or "hybrid")
    report["recommendation"] = rec = recommend(report["gains"])
    versus = against_current(report, rec["ranking"], current) if rec.get("mean_gain", 0) > 0 else None
    if versus is not None:
        rec["against_current"] = versus
        if versus["switch"]:
            rec["text"] += f"; against {current} (in use) it is clearly better on {', '.join(versus['better_on'])}"
        else:
            rec["text"] += f"; against {current} (in use) the difference is not clear, so there is no reason to switch"
    rec["switch"] = bool(versus and versus["switch"])
    report["notes"] = notes
    report["project"] = {"slug": project.slug, "current_ranking": current}
    return report


# What the project page's button compares: the ensemble trains five models a round, about five
# times the cost of the others, so it is left to the command (``--strategies``); and at most this
# many labelled images, so that a comparison on the train queue takes minutes, not hours.
PAGE_RANKINGS = ("hybrid", "entropy", "margin", "kcenter", "random")
PAGE_MAX_IMAGES = 600


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Whole or not at all: the page may read the file while it is written."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def summary_of(report: dict[str, Any], requested_by: str = "") -> dict[str, Any]:
    """What the project page shows of a comparison (``summary.json``)."""
    from django.utils import timezone

    s = report["settings"]
    return {
        "status": "done",
        "finished_at": timezone.now().isoformat(timespec="seconds"),
        "requested_by": requested_by,
        "n_labelled": s["n_labelled"],
        "settings": {k: s[k] for k in ("splits", "seeds", "initial", "budget", "rounds", "seconds")},
        "focus": s.get("focus") or [],
        "rankings": [r for r in s["strategies"] if r != "random"],
        "gains": report["gains"],
        "mean_gains": mean_gains(report["gains"]),
        "labels_needed": labels_needed(report),
        "ranking_in_use": report.get("project", {}).get("current_ranking", ""),
        "recommendation": report["recommendation"],
        "notes": report["notes"],
    }


@shared_task(name="workers.learning.compare_rankings")
def compare_task(project_id: int, requested_by: str = "", options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The project page's **Compare rankings**: runs :func:`compare` on the train queue with
    ``PAGE_RANKINGS`` and ``PAGE_MAX_IMAGES`` (``options`` overrides them and the simulation
    settings), reports progress on the project's live channel (``job.progress``, job
    ``comparison``) and keeps ``summary.json``, ``report.json`` and ``report.png`` in
    ``services.comparison_dir``. A project that cannot be compared yet gets a summary saying why."""
    from django.utils import timezone

    from skelex_web import events
    from skelex_web.learning.services import comparison_dir, comparison_finished
    from skelex_web.projects.models import Project

    options = dict(options or {})
    try:
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            return {"status": "skipped", "reason": "project deleted"}
        out = comparison_dir(project)
        out.mkdir(parents=True, exist_ok=True)
        strategies = tuple(options.pop("strategies", PAGE_RANKINGS))
        current = str(project.setting("sampling") or "hybrid")
        if current in RANKINGS and current not in strategies:  # the ranking in use is always compared
            strategies = (
                (*strategies[:-1], current, strategies[-1]) if strategies[-1] == "random" else (*strategies, current)
            )
        max_images = options.pop("max_images", PAGE_MAX_IMAGES)

        counts = {"done": 0, "total": 0}

        def progress(done: int, total: int) -> None:
            counts.update(done=done, total=total)
            events.publish(project_id, "job.progress", {"job": "comparison", **counts})

        events.publish(project_id, "job.progress", {"job": "comparison", "done": 0, "total": 0})

        def stopped(status: str, error: str) -> dict[str, Any]:
            summary = {
                "status": status,
                "finished_at": timezone.now().isoformat(timespec="seconds"),
                "requested_by": requested_by,
                "error": error,
            }
            _write_json(out / "summary.json", summary)
            events.publish(project_id, "job.progress", {"job": "comparison", "done": 0, "total": 0, "state": status})
            return summary

        try:
            report = compare(project, strategies=strategies, max_images=max_images, progress=progress, **options)
        except NotEnoughLabels as exc:
            return stopped("refused", str(exc))
        except Exception as exc:
            stopped("failed", f"the comparison stopped with an error ({type(exc).__name__}); the worker's log has it")
            raise
        _write_json(out / "report.json", report)
        plot_comparison(report, out / "report.png")
        summary = summary_of(report, requested_by)
        _write_json(out / "summary.json", summary)
        # Again once the files are written: the page re-reads the section on a finished job.
        events.publish(project_id, "job.progress", {"job": "comparison", **counts})
        logger.info("ranking comparison of project %s: %s", project_id, summary["recommendation"]["text"])
        return {k: summary[k] for k in ("status", "n_labelled", "recommendation")}
    finally:
        comparison_finished(project_id)


def plot_comparison(report: dict[str, Any], path: Path) -> None:
    """Top row: each finding's learning curves per ranking (as ``simulate-al``). Bottom row: each
    ranking's gain over random order with its 95% interval, against 0 (what the recommendation
    reads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from workers.ml.cli_simulate_al import plot_curves

    heads = list(report["heads"])
    fig, axes = plt.subplots(
        2, len(heads), figsize=(5 * len(heads), 6.2), squeeze=False, gridspec_kw={"height_ratios": [4, 2.2]}
    )
    for ax, head in zip(axes[0], heads):
        plot_curves(ax, head, report["heads"][head])
    for ax, head in zip(axes[1], heads):
        gains = report["gains"].get(head, {})
        names = list(gains)
        for y, name in enumerate(names):
            g = gains[name]
            if g["gain"] is None:
                continue
            colour = "C2" if g["lo"] > 0 else "C3" if g["hi"] < 0 else "C0"
            ax.plot([g["lo"], g["hi"]], [y, y], color=colour, lw=2)
            ax.plot([g["gain"]], [y], "o", color="k", ms=4)
        ax.axvline(0.0, color="grey", lw=0.8, ls=":")
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.set_xlabel("gain over random: mean AUROC over the range (95% CI)")
    s = report["settings"]
    fig.suptitle(
        f"{s['n_labelled']} labelled images; {s['splits']} test splits x {s['seeds']} seeds; "
        f"{s['initial']} initial labels, {s['budget']} per round",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def gains_table(gains: dict[str, dict[str, dict[str, float | None]]]) -> str:
    w = max([12, *(len(h) for h in gains)])
    lines = [f"{'finding':<{w}} {'ranking':<10} {'gain vs random':>14} {'95% CI':>17}"]
    for head, per in gains.items():
        for name, g in per.items():
            if g["gain"] is None:
                lines.append(f"{head:<{w}} {name:<10} {'-':>14} {'-':>17}")
            else:
                lines.append(f"{head:<{w}} {name:<10} {g['gain']:>+14.3f} {g['lo']:>+8.3f}..{g['hi']:>+7.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", required=True, help="the project's slug")
    parser.add_argument("--out", type=Path, default=None, help="folder for report.json and report.png")
    parser.add_argument("--strategies", default=",".join(RANKINGS), help="rankings to compare (random is added)")
    parser.add_argument("--seeds", type=int, default=None, help="initial sets per test split (default 5)")
    parser.add_argument("--splits", type=int, default=None, help="test splits (default 3)")
    parser.add_argument("--budget", type=int, default=None, help="labels per round (default: from the data)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default: cover the pool, at most 40)")
    parser.add_argument("--jobs", type=int, default=1, help="processes for the replicates")
    args = parser.parse_args(argv)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in RANKINGS]
    if unknown:
        parser.error(f"unknown ranking {', '.join(unknown)}; one of {', '.join(RANKINGS)}")
    if "random" not in strategies:
        strategies.append("random")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skelex_web.settings")
    os.environ.setdefault("CELERY_EMBEDDED_WORKER", "0")
    import django

    django.setup()
    from skelex_web.projects.models import Project

    project = Project.objects.filter(slug=args.project).first()
    if project is None:
        parser.error(f"no project with slug {args.project!r}")
    try:
        report = compare(
            project, strategies=strategies, seeds=args.seeds, splits=args.splits, budget=args.budget,
            rounds=args.rounds, jobs=args.jobs, log=lambda s: print(s, file=sys.stderr),
        )  # fmt: skip
    except NotEnoughLabels as exc:
        print(f"compare_rankings: {exc}", file=sys.stderr)
        return 2
    from workers.ml.simulate_al import table

    for note in report["notes"]:
        print(f"note: {note}")
    s = report["settings"]
    print(
        f"{s['n_labelled']} labelled images, {s['splits']} test splits x {s['seeds']} seeds, {s['initial']} initial "
        f"labels, {s['budget']} per round, {s['rounds']} rounds ({s['seconds']} s)"
        + (f"; ranked for {', '.join(s['focus'])} first, as the project is" if s.get("focus") else "")
    )
    print(table(report))
    print()
    print(gains_table(report["gains"]))
    print()
    rec = report["recommendation"]
    print(f"recommendation: {rec['text']}")
    print(f"the project ranks by {report['project']['current_ranking']} now (project page: Rank the queue by)")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(json.dumps(report, indent=1))
        plot_comparison(report, args.out / "report.png")
        print(f"wrote {args.out / 'report.json'} and {args.out / 'report.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
