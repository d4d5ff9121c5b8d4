"""Comparing the platform's rankings on a project's own labels (``workers.tasks.compare_rankings``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skelex_web.learning.models import Embedding, ModelVersion
from skelex_web.studies.models import Image
from tests.factories import AnnotationFactory, ImageFactory, ModelVersionFactory
from workers.tasks import compare_rankings
from workers.tasks.compare_rankings import NotEnoughLabels, compare, paired_gains, recommend


def _answer(image: Image, user: Any, head: str, value: str) -> None:
    AnnotationFactory(image=image, author=user, kind="head", head=head, value=value, x0=None, y0=None, x1=None, y1=None)


@pytest.fixture(autouse=True)
def _command_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` sets the variables a command line run needs; here they are undone after each test
    (a left-over CELERY_EMBEDDED_WORKER=0 would switch off the worker of later demo subprocesses)."""
    monkeypatch.setenv("CELERY_EMBEDDED_WORKER", "0")
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "skelex_web.settings")


@pytest.fixture
def labelled(project: Any, personas: Any) -> list[Image]:
    """120 analysed, answered images: 'abnormal' separable along one direction of the embedding
    (a third abnormal); 'implant' answered yes on 3 images only."""
    backbone = ModelVersionFactory()
    project.active_backbone = backbone
    project.save()
    rng = np.random.default_rng(0)
    images = []
    for i in range(120):
        image = ImageFactory(project=project)
        v = rng.normal(size=16).astype(np.float32)
        v[0] += 1.5 if i % 3 == 0 else -1.5
        v /= np.linalg.norm(v)
        Embedding.objects.create(image=image, model_version=backbone, dim=16, vector=v.astype("<f2").tobytes())
        _answer(image, personas["annotator"], "abnormal", "yes" if i % 3 == 0 else "no")
        _answer(image, personas["annotator"], "implant", "yes" if i < 3 else "no")
        images.append(image)
    return images


def test_rankings_are_compared_on_the_project_s_own_labels_and_nothing_in_it_changes(
    labelled: list[Image], project: Any
) -> None:
    before = list(Image.objects.filter(project=project).order_by("id").values_list("al_priority", "al_reason"))
    report = compare(project, strategies=("hybrid", "kcenter", "random"), seeds=2, splits=2, rounds=6, bootstrap=0)

    # Only the finding with enough answers of both classes is compared; the other is named.
    assert list(report["heads"]) == ["abnormal"]
    assert any(
        n.startswith("implant: left out, fewer than 10 answers in two classes (no 117, yes 3)") for n in report["notes"]
    )
    s = report["settings"]
    assert s["n_labelled"] == 120 and s["n_test"] == 36 and s["n_pool"] == 84
    assert s["initial"] == 10 and s["rounds"] == 6 and len(s["replicates"]) == 4
    # Separable by design: every curve ends well above chance.
    for entry in report["heads"]["abnormal"]["strategies"].values():
        assert entry["curve"][-1][1] > 0.8
    gains = report["gains"]["abnormal"]
    assert set(gains) == {"hybrid", "kcenter"}
    assert all(g["lo"] <= g["gain"] <= g["hi"] for g in gains.values())
    assert report["recommendation"]["ranking"] in {"hybrid", "kcenter"} and report["recommendation"]["text"]
    assert report["project"] == {"slug": "wrist", "current_ranking": "hybrid"}
    # The labels each ranking needed to reach 95% of the all-labels AUROC, random's as the unit.
    needed = compare_rankings.labels_needed(report)["abnormal"]
    assert needed["full_data_auroc"] == report["heads"]["abnormal"]["full_data_auroc"] > 0.8
    assert set(needed["rankings"]) == {"hybrid", "kcenter", "random"}
    for name, entry in needed["rankings"].items():
        assert entry == {
            "labels": report["heads"]["abnormal"]["strategies"][name]["labels_to_95"],
            "ratio": report["heads"]["abnormal"]["strategies"][name]["ratio_vs_random"],
            "ratio_ci": None,  # bootstrap=0
        }

    project.refresh_from_db()
    assert project.setting("sampling") in (None, "hybrid")
    assert not ModelVersion.objects.filter(project=project, kind="heads").exists()
    assert list(Image.objects.filter(project=project).order_by("id").values_list("al_priority", "al_reason")) == before


def test_a_project_with_too_few_labels_is_told_how_many_it_has_and_needs(project: Any, labelled: list[Image]) -> None:
    from skelex_web.labeling.models import Annotation

    Annotation.objects.filter(image__in=labelled[50:]).update(is_deleted=True)
    with pytest.raises(
        NotEnoughLabels, match="Wrist fractures has 50 analysed, labelled images; comparing rankings needs at least 100"
    ):
        compare(project, strategies=("hybrid", "random"), seeds=1, splits=1)


def _report(curves: dict[str, dict[str, list[list[float]]]]) -> dict[str, Any]:
    ns = [10, 20, 30, 40]
    return {
        "heads": {
            head: {
                "strategies": {
                    name: {"curve": [[n, 0, 0, 0] for n in ns], "seed_curves": rows} for name, rows in per.items()
                }
            }
            for head, per in curves.items()
        }
    }


RANDOM = [[0.60, 0.64, 0.66, 0.70], [0.58, 0.63, 0.68, 0.69], [0.61, 0.62, 0.67, 0.71], [0.59, 0.65, 0.66, 0.70]]


def _shift(rows: list[list[float]], by: float, noise: float = 0.0) -> list[list[float]]:
    rng = np.random.default_rng(1)
    # The first point is the initial set every ranking shares: the same AUROC.
    return [[v + (by + noise * rng.normal() if i else 0.0) for i, v in enumerate(row)] for row in rows]


def test_the_ranking_ahead_of_random_on_every_replicate_is_recommended_clearly() -> None:
    report = _report({
        "fractured": {"random": RANDOM, "kcenter": _shift(RANDOM, 0.04, 0.01), "entropy": _shift(RANDOM, -0.02, 0.01)},
        "hardware": {"random": RANDOM, "kcenter": _shift(RANDOM, 0.03, 0.01), "entropy": _shift(RANDOM, 0.01, 0.02)},
    })  # fmt: skip
    gains = paired_gains(report)
    # Shifted from the second point on: the mean over 10..40 labels rises by 25/30 of the shift.
    assert gains["fractured"]["kcenter"]["gain"] == pytest.approx(0.04 * 25 / 30, abs=0.005)
    assert gains["fractured"]["kcenter"]["lo"] > 0 and gains["fractured"]["entropy"]["hi"] < 0
    rec = recommend(gains)
    assert rec["ranking"] == "kcenter" and rec["clear"] and rec["better_on"] == ["fractured", "hardware"]
    assert rec["text"].startswith("kcenter learned fastest on this project's labels")


def test_switching_is_suggested_only_when_the_best_ranking_beats_the_one_in_use() -> None:
    from workers.tasks.compare_rankings import against_current

    report = _report({
        "fractured": {"random": RANDOM, "kcenter": _shift(RANDOM, 0.04, 0.01), "entropy": _shift(RANDOM, -0.02, 0.01),
                      "hybrid": _shift(RANDOM, 0.04, 0.01)},
        "hardware": {"random": RANDOM, "kcenter": _shift(RANDOM, 0.03, 0.01), "entropy": _shift(RANDOM, 0.01, 0.02),
                     "hybrid": _shift(RANDOM, 0.03, 0.01)},
    })  # fmt: skip
    versus = against_current(report, "kcenter", "entropy")
    assert versus and versus["switch"] and versus["better_on"] == ["fractured", "hardware"]
    # Both well ahead of random, level with each other: no reason to switch.
    versus = against_current(report, "kcenter", "hybrid")
    assert versus and not versus["switch"] and versus["better_on"] == [] and versus["worse_on"] == []
    assert against_current(report, "kcenter", "kcenter") is None  # already in use
    assert against_current(report, "kcenter", "margin") is None  # the one in use was not compared


def test_a_ranking_that_trades_one_finding_for_another_is_not_called_clearly_better() -> None:
    report = _report({
        "fractured": {"random": RANDOM, "ensemble": _shift(RANDOM, 0.05, 0.01)},
        "bodypart": {"random": RANDOM, "ensemble": _shift(RANDOM, -0.03, 0.01)},
    })  # fmt: skip
    rec = recommend(paired_gains(report))
    assert rec["ranking"] == "ensemble" and not rec["clear"]
    assert "not clearly" in rec["text"] and "worse on bodypart" in rec["text"]
    assert "ensemble is clearly better on fractured" in rec["text"]
    # A finding where another ranking, not the best overall, is the one ahead of random order.
    mixed = _report({
        "fractured": {"random": RANDOM, "kcenter": _shift(RANDOM, 0.05, 0.005), "margin": _shift(RANDOM, 0.0, 0.03)},
        "hardware": {"random": RANDOM, "kcenter": _shift(RANDOM, 0.0, 0.03), "margin": _shift(RANDOM, 0.03, 0.005)},
        "bodypart": {"random": RANDOM, "kcenter": _shift(RANDOM, 0.0, 0.03), "margin": _shift(RANDOM, -0.005, 0.03)},
    })  # fmt: skip
    text = recommend(paired_gains(mixed))["text"]
    assert text.startswith("kcenter learned fastest") and "kcenter is clearly better on fractured" in text
    assert "on hardware another ranking is clearly ahead of random order, kcenter is not" in text
    assert "on bodypart no ranking is clearly ahead of random order" in text
    assert "averaged over 2 findings" in rec["text"]

    # A finding on which every ranking beats random order does not single out the best one.
    shared = _report({
        "fractured": {"random": RANDOM, "margin": _shift(RANDOM, 0.0, 0.03), "entropy": _shift(RANDOM, -0.01, 0.03)},
        "bodypart": {"random": RANDOM, "margin": _shift(RANDOM, 0.02, 0.002), "entropy": _shift(RANDOM, 0.02, 0.002)},
    })  # fmt: skip
    text = recommend(paired_gains(shared))["text"]
    assert "clearly ahead of random on bodypart (every ranking is, on bodypart)" in text

    behind = _report({"fractured": {"random": RANDOM, "margin": _shift(RANDOM, -0.02, 0.01)}})
    assert recommend(paired_gains(behind))["text"].startswith("no ranking learned faster than random order")


def test_the_command_prints_the_comparison_and_writes_the_report(
    labelled: list[Image], project: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--project", "wrist", "--strategies", "entropy", "--seeds", "2", "--splits", "1", "--rounds", "4"]
    assert compare_rankings.main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "note: implant: left out" in out and "recommendation: " in out
    assert "gain vs random" in out and "the project ranks by hybrid now" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["heads"]["abnormal"]["strategies"]) == {"entropy", "random"}
    assert (tmp_path / "report.png").stat().st_size > 1000


def test_the_command_names_unknown_projects_and_rankings(db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        compare_rankings.main(["--project", "nope"])
    assert "no project with slug 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare_rankings.main(["--project", "wrist", "--strategies", "uncertainty"])
    assert (
        "unknown ranking uncertainty; one of hybrid, entropy, margin, ensemble, kcenter, random"
        in capsys.readouterr().err
    )


def _client(user: Any) -> Any:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def _page(project: Any, user: Any) -> str:
    return _client(user).get(f"/projects/{project.pk}/").content.decode()


def test_the_page_s_comparison_runs_on_the_train_queue_and_its_result_is_shown_to_every_member(
    labelled: list[Image], project: Any, personas: Any, media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.cache import cache

    from skelex_web import events
    from skelex_web.learning.services import comparison_dir
    from workers.tasks.compare_rankings import compare_task

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(events, "publish", lambda pk, kind, payload: sent.append(payload))
    cache.set(f"skelex:compare-pending:{project.pk}", "lena")  # what the page's button left
    summary = compare_task(project.pk, "lena", options={"seeds": 2, "splits": 1, "rounds": 4, "bootstrap": 0})
    # The progress bar: one step per replay (5 rankings x 1 split x 2 seeds), and once more after
    # the files are written, so the page re-reads the section with the result in it.
    steps = [(m["done"], m["total"]) for m in sent if m.get("job") == "comparison"]
    assert steps[0] == (0, 0) and steps[1:-1] == [(k, 10) for k in range(1, 11)] and steps[-1] == (10, 10)
    assert summary["status"] == "done" and summary["n_labelled"] == 120
    assert cache.get(f"skelex:compare-pending:{project.pk}") is None  # another may be asked for
    out = comparison_dir(project)
    assert {p.name for p in out.iterdir()} == {"summary.json", "report.json", "report.png"}
    saved = json.loads((out / "summary.json").read_text())
    assert saved["rankings"] == ["hybrid", "entropy", "margin", "kcenter"]  # the ensemble is the command's

    page = _page(project, personas["annotator"])
    assert "Which ranking for this project" in page and summary["recommendation"]["text"] in page
    assert "120 labelled images, each labelling replayed 1 &times; 2 times from 10 random labels" in page
    assert 'hybrid <span class="muted">(in use)</span>' in page and "Mean gain" in page
    assert 'data-testid="comparison-legend"' in page and "The ensemble ranking (five times the cost)" in page
    table = page[page.index('data-testid="comparison-table"') :]
    assert "Gain vs random: abnormal" in table and "Gain vs random: implant" not in table
    assert "Labels to 95%: abnormal" in page and saved["labels_needed"]["abnormal"]["rankings"].keys() == {
        "hybrid",
        "entropy",
        "margin",
        "kcenter",
        "random",
    }
    assert "implant: left out, fewer than 10 answers in two classes (no 117, yes 3)" in page
    assert "Compare rankings on our labels" not in page  # the button is for leads
    assert "Compare rankings on our labels" in _page(project, personas["lead"])
    # The plot, for members only.
    assert 'data-testid="comparison-plot"' in page
    plot = _client(personas["viewer"]).get(f"/projects/{project.pk}/compare-rankings.png")
    assert plot.status_code == 200 and plot["Content-Type"] == "image/png"
    assert b"".join(plot.streaming_content).startswith(b"\x89PNG")
    assert _client(personas["outsider"]).get(f"/projects/{project.pk}/compare-rankings.png").status_code == 404


def test_the_page_says_how_many_labels_each_ranking_needed_and_marks_clear_savings(
    project: Any, personas: Any, media_root: Path
) -> None:
    """The second table: labels to 95% of the all-labels AUROC per ranking, as a share of random
    order's; green only where the share's whole interval is below 1, the range named where a
    ranking never got there."""
    from skelex_web.learning.services import comparison_dir

    def gain(g: float) -> dict[str, float]:
        return {"gain": g, "lo": g - 0.01, "hi": g + 0.01}

    summary = {
        "status": "done", "finished_at": "2026-11-29T20:00:00+00:00", "requested_by": "lena", "n_labelled": 200,
        "settings": {"splits": 3, "seeds": 5, "initial": 10, "budget": 3, "rounds": 40, "seconds": 60.0},
        "rankings": ["hybrid", "entropy", "margin"], "ranking_in_use": "hybrid", "notes": [],
        "gains": {"abnormal": {"hybrid": gain(0.02), "entropy": gain(0.0), "margin": gain(-0.03)}},
        "mean_gains": {"hybrid": 0.02, "entropy": 0.0, "margin": -0.03},
        "recommendation": {"ranking": "hybrid", "clear": True, "text": "hybrid learned fastest"},
        "labels_needed": {"abnormal": {"full_data_auroc": 0.871, "rankings": {
            "hybrid": {"labels": 61, "ratio": 0.5980, "ratio_ci": [0.41, 0.82]},
            "entropy": {"labels": 91, "ratio": 0.8922, "ratio_ci": [0.62, None]},
            "margin": {"labels": None, "ratio": None, "ratio_ci": [1.2, None]},
            "random": {"labels": 102, "ratio": 1.0, "ratio_ci": [1.0, 1.0]},
        }}},
    }  # fmt: skip
    out = comparison_dir(project)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary))

    page = _page(project, personas["viewer"])
    table = page[page.index('data-testid="comparison-labels"') : page.index('data-testid="comparison-legend"')]
    assert "Labels to 95%: abnormal" in table and "(0.871)" in table
    rows = [r for r in table.split("<tr>")[2:]]
    assert [r.split("<td>")[1].split("<")[0].strip() for r in rows] == ["hybrid", "entropy", "margin", "random"]
    assert '<td class="num better">61 (0.60&times; [0.41, 0.82])</td>' in rows[0]
    assert '<td class="num ">91 (0.89&times; [0.62, &infin;])</td>' in rows[1]
    assert '<td class="num worse">not within 130</td>' in rows[2]  # 10 + 40 rounds x 3
    assert '<td class="num ">102</td>' in rows[3]
    assert "0.60&times; would save 40% of the labels" in page

    # A summary written before the table existed still shows its gains, without the table.
    del summary["labels_needed"]
    (out / "summary.json").write_text(json.dumps(summary))
    page = _page(project, personas["viewer"])
    assert 'data-testid="comparison-table"' in page and 'data-testid="comparison-labels"' not in page


def test_a_project_the_page_cannot_compare_yet_is_told_why(
    labelled: list[Image], project: Any, personas: Any, media_root: Path
) -> None:
    from skelex_web.labeling.models import Annotation
    from workers.tasks.compare_rankings import compare_task

    Annotation.objects.filter(image__in=labelled[60:]).update(is_deleted=True)
    assert compare_task(project.pk, "lena")["status"] == "refused"
    page = _page(project, personas["lead"])
    assert "Rankings not compared" in page and "Wrist fractures has 60 analysed, labelled images" in page
    assert "Which ranking for this project" not in page and 'data-testid="comparison-plot"' not in page
    assert _client(personas["lead"]).get(f"/projects/{project.pk}/compare-rankings.png").status_code == 404


def test_a_comparison_that_fails_says_so_on_the_page_and_can_be_asked_for_again(
    labelled: list[Image], project: Any, personas: Any, media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.cache import cache

    from workers.tasks.compare_rankings import compare_task

    def broken(*args: Any, **kwargs: Any) -> None:
        raise MemoryError

    monkeypatch.setattr(compare_rankings, "compare", broken)
    cache.set(f"skelex:compare-pending:{project.pk}", "lena")
    with pytest.raises(MemoryError):
        compare_task(project.pk, "lena")
    assert cache.get(f"skelex:compare-pending:{project.pk}") is None
    page = _page(project, personas["lead"])
    assert "Rankings not compared" in page and "stopped with an error (MemoryError)" in page


def test_the_ranking_a_project_uses_is_always_among_those_compared(
    labelled: list[Image], project: Any, media_root: Path
) -> None:
    from skelex_web.learning.services import latest_comparison
    from workers.tasks.compare_rankings import compare_task

    project.settings = {**project.settings, "sampling": "ensemble"}
    project.save()
    compare_task(project.pk, "lena", options={"seeds": 2, "splits": 1, "rounds": 2, "bootstrap": 0})
    assert latest_comparison(project)["rankings"] == ["hybrid", "entropy", "margin", "kcenter", "ensemble"]


def test_the_comparison_api_serves_members_and_takes_requests_from_leads(
    labelled: list[Image], project: Any, client_for: Any, sent_tasks: list, media_root: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    from workers.tasks.compare_rankings import compare_task

    url = f"/api/projects/{project.pk}/ranking-comparison/"
    assert client_for("annotator").get(url).json() == {"pending": False, "latest": None}
    assert client_for("annotator").post(url).status_code == 403
    assert client_for("outsider").get(url).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("lead").post(url)
    assert response.status_code == 202 and response.json() == {"queued": True}
    assert sent_tasks == [("workers.learning.compare_rankings", [project.pk])]
    assert client_for("lead").post(url).json() == {"queued": False}
    assert client_for("viewer").get(url).json()["pending"] is True

    compare_task(project.pk, "lena", options={"seeds": 2, "splits": 1, "rounds": 2, "bootstrap": 0})
    body = client_for("viewer").get(url).json()
    assert body["pending"] is False and body["latest"]["status"] == "done"
    assert set(body["latest"]["gains"]["abnormal"]) == {"hybrid", "entropy", "margin", "kcenter"}
    assert body["latest"]["recommendation"]["ranking"] in {"hybrid", "entropy", "margin", "kcenter"}


def test_a_project_with_a_focus_finding_is_replayed_ranking_for_it(
    labelled: list[Image], project: Any, personas: Any, media_root: Path
) -> None:
    from skelex_web.learning.services import latest_comparison
    from workers.tasks.compare_rankings import compare_task

    options = {"seeds": 2, "splits": 1, "rounds": 3, "bootstrap": 0}
    project.settings = {**project.settings, "focus": "abnormal"}
    project.save()
    compare_task(project.pk, "lena", options=options)
    assert latest_comparison(project)["focus"] == ["abnormal"]
    assert "more a round, ranked for abnormal first as the project is)" in _page(project, personas["viewer"])
    # A focus on a finding left out of the comparison (too few answers) is not replayed.
    project.settings = {**project.settings, "focus": "implant"}
    project.save()
    compare_task(project.pk, "lena", options=options)
    assert latest_comparison(project)["focus"] == []
    assert "as the project is" not in _page(project, personas["viewer"])


def test_the_rankings_compared_are_those_a_project_can_choose() -> None:
    from skelex_web.projects.models import SAMPLING

    # Listed twice because the command's module loads before Django does; the two must agree.
    assert compare_rankings.RANKINGS == tuple(SAMPLING)
