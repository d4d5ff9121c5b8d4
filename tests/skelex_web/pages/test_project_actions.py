"""Project page: the active-learning section (curve, rounds, retrain) and the lead's export form."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from skelex_web.audit.models import AuditEvent
from skelex_web.exports.models import DatasetVersion, ExportJob
from skelex_web.learning import loop
from skelex_web.learning.models import ModelKind, ModelVersion
from skelex_web.studies.models import Image
from tests.factories import AnnotationFactory, ImageFactory, ModelVersionFactory
from tests.skelex_web.pages.conftest import messages_at


def test_leads_see_the_curve_retrain_and_export(project: Any, browser_for: Any) -> None:
    page = browser_for("lead").get(f"/projects/{project.pk}/").content.decode()
    assert "<svg" in page and "Retrain now" in page and 'data-testid="export-form"' in page
    annotator_page = browser_for("annotator").get(f"/projects/{project.pk}/").content.decode()
    assert "<svg" in annotator_page
    assert "Retrain now" not in annotator_page and 'data-testid="export-form"' not in annotator_page


def test_retrain_button_queues_one_round(
    project: Any, browser_for: Any, personas: Any, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    # Nothing labelled: the round only orders the queue, and the lead is told why no round appears.
    with django_capture_on_commit_callbacks(execute=True):
        response = browser_for("lead").post(f"/projects/{project.pk}/retrain/", follow=True)
    assert "No labelled images yet, so there are no heads to train" in response.content.decode()
    assert sent_tasks == [("workers.learning.retrain", [project.pk])]
    loop.retrain_finished(project.pk)  # what the worker does when the round ends
    AnnotationFactory(
        image=ImageFactory(project=project), author=personas["annotator"], kind="head", head="abnormal",
        value="yes", x0=None, y0=None, x1=None, y1=None,
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = browser_for("lead").post(f"/projects/{project.pk}/retrain/", follow=True)
    # Back at the section the button is in (below the fold), with the message shown there.
    assert response.redirect_chain[-1][0] == f"/projects/{project.pk}/#learning"
    assert messages_at(response.content.decode()) == {
        "learning": ["Training round queued: the worklist reorders when it finishes."]
    }
    assert len(sent_tasks) == 2
    with django_capture_on_commit_callbacks(execute=True):
        again = browser_for("lead").post(f"/projects/{project.pk}/retrain/", follow=True)
    assert "already queued" in again.content.decode() and len(sent_tasks) == 2
    assert browser_for("annotator").post(f"/projects/{project.pk}/retrain/").status_code == 403
    assert browser_for("outsider").post(f"/projects/{project.pk}/retrain/").status_code == 404


def test_export_button_snapshots_a_version_and_queues_the_export(
    project: Any, browser_for: Any, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    image = ImageFactory(project=project)
    lead = browser_for("lead")
    # Nothing labelled yet: no empty version is made, and the lead is told why.
    response = lead.post(f"/projects/{project.pk}/export/", {"format": "yolo"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "Export not started: nothing to export: no image is labelled yet (or include unlabelled images)"
    ]
    assert not DatasetVersion.objects.exists()
    response = lead.post(f"/projects/{project.pk}/export/", {"format": "csv", "include_unlabelled": "on"}, follow=True)
    assert "queued (csv)" in response.content.decode()
    unlabelled_version = DatasetVersion.objects.get(project=project)
    assert unlabelled_version.image_count == 1
    AnnotationFactory(image=image)
    with django_capture_on_commit_callbacks(execute=True):
        response = lead.post(
            f"/projects/{project.pk}/export/", {"format": "yolo", "images": "png8", "split_seed": "3"}, follow=True
        )
    assert "queued (yolo)" in response.content.decode()
    version = DatasetVersion.objects.exclude(pk=unlabelled_version.pk).get(project=project)
    job = ExportJob.objects.get(version=version)
    assert (version.split_seed, job.format, job.images) == (3, "yolo", "png8")
    assert sent_tasks == [("workers.export.build", [job.pk])]
    assert browser_for("reviewer").post(f"/projects/{project.pk}/export/", {"format": "coco"}).status_code == 403
    bad = browser_for("lead").post(f"/projects/{project.pk}/export/", {"format": "tiff"}, follow=True)
    assert [str(m) for m in bad.context["messages"]] == ["Export not started: unknown format 'tiff'."]
    assert DatasetVersion.objects.filter(project=project).count() == 2, "a refused export leaves no version"

    # The same version again in another format: no new version, the table says what each row is.
    with django_capture_on_commit_callbacks(execute=True):
        again = lead.post(f"/projects/{project.pk}/export/", {"version": version.pk, "format": "coco"}, follow=True)
    assert [str(m) for m in again.context["messages"]] == [
        f"Export {job.pk + 1} of dataset version {version.number} queued (coco)."
    ]
    assert DatasetVersion.objects.filter(project=project).count() == 2  # no new one
    assert ExportJob.objects.filter(version=version).count() == 2
    html = again.content.decode()
    assert f'<option value="{version.pk}">v{version.number} · 1 images' in html
    assert "<td>all labels</td>" in html and "<td>8-bit windowed PNG</td>" in html
    assert "<td>with unlabelled</td>" in html
    other = lead.post(f"/projects/{project.pk}/export/", {"version": "999999", "format": "coco"}, follow=True)
    assert [str(m) for m in other.context["messages"]] == [
        "Export not started: that dataset version is not in this project."
    ]


def test_opening_the_viewer_claims_the_image(project: Any, browser_for: Any, personas: Any) -> None:
    image = ImageFactory(project=project)
    assert browser_for("annotator").get(f"/projects/{project.pk}/images/{image.pk}/").status_code == 200
    assert Image.objects.get(pk=image.pk).claimed_by == personas["annotator"]
    browser_for("viewer").get(f"/projects/{project.pk}/images/{image.pk}/")
    assert Image.objects.get(pk=image.pk).claimed_by == personas["annotator"]  # viewers never claim


def test_rounds_table_shows_when_each_round_ran_and_its_auroc(project: Any, browser_for: Any) -> None:
    mv = ModelVersion.objects.create(
        kind=ModelKind.HEADS, name="heads", project=project, config={"reason": "every 20 labels"},
        metrics={"n_labelled": 20, "heads": {"abnormal": {"auroc": 0.7312}}},
    )  # fmt: skip
    ModelVersion.objects.filter(pk=mv.pk).update(created_at=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))
    page = browser_for("annotator").get(f"/projects/{project.pk}/").content.decode()
    row = re.search(r'data-testid="rounds".*?<tbody>(.*?)</tbody>', page, re.S)
    assert row and "When (UTC)" in page
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>.*?</td>", row[1], re.S)]
    # A round recorded before rounds kept their ranking shows a dash there.
    assert cells[:6] == ["1", "2026-03-04 05:06", "20", "every 20 labels", "–", "0.731"]
    # A later round goes on top, numbered 2: rounds keep the numbers of the order they ran in.
    ModelVersion.objects.create(
        kind=ModelKind.HEADS, name="heads", project=project, config={"reason": "on demand"},
        metrics={"n_labelled": 40, "sampling": "kcenter", "heads": {"abnormal": {"auroc": 0.8}}},
    )  # fmt: skip
    page = browser_for("annotator").get(f"/projects/{project.pk}/").content.decode()
    body = re.search(r'data-testid="rounds".*?<tbody>(.*?)</tbody>', page, re.S)
    assert body
    rows = [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>.*?</td>", tr, re.S)]
        for tr in re.findall(r"<tr>.*?</tr>", body[1], re.S)
    ]
    assert [(r[0], r[2], r[4]) for r in rows] == [("2", "40", "kcenter"), ("1", "20", "–")]


def test_the_project_page_marks_each_live_region_once_and_loads_its_live_script(project: Any, browser_for: Any) -> None:
    # The live script swaps [data-live=name] for the same region of a fresh copy of the page:
    # a name used twice would swap the wrong region.
    lead = browser_for("lead").get(f"/projects/{project.pk}/").content.decode()
    names = re.findall(r'data-live="([a-z-]+)"', lead)
    assert len(names) == len(set(names))
    assert set(names) == {
        "progress",
        "uploads",
        "suggestions",
        "by-user",
        "learning",
        "comparison",
        "rounds",
        "activity",
        "exports",
    }
    script = re.search(r'<script type="module" src="([^"]+)" data-project="(\d+)">', lead)
    assert script and script.group(2) == str(project.pk)
    assert re.fullmatch(r"/static/frontend/project/live\.js\?v=[0-9a-f]+", script.group(1))
    # Viewers see the figures but neither the upload nor the export part.
    viewer = browser_for("viewer").get(f"/projects/{project.pk}/").content.decode()
    assert set(re.findall(r'data-live="([a-z-]+)"', viewer)) == {
        "progress",
        "suggestions",
        "by-user",
        "learning",
        "comparison",
        "rounds",
    }


def test_the_project_page_says_what_the_labelling_queue_holds(project: Any, browser_for: Any, personas: Any) -> None:
    def summary() -> str:
        page = browser_for("lead").get(f"/projects/{project.pk}/").content.decode()
        found = re.search(r'<p data-testid="queue-summary">(.*?)</p>', page, re.S)
        assert found
        return " ".join(found.group(1).split())

    assert summary() == "Labelling queue: 0 unlabelled images."
    picks = [ImageFactory(project=project, al_priority=3.0 - k, al_reason="typical: stands for 4") for k in range(2)]
    for _ in range(3):
        ImageFactory(project=project, al_priority=0.0, al_reason="after this round's picks: ranked once ...")
    ImageFactory(project=project, al_priority=0.4, al_reason="uncertain: p(abnormal) = 0.50")
    ImageFactory(project=project)  # new since the round
    ImageFactory(project=project, status="failed")  # never in the queue
    labelled = ImageFactory(project=project, al_priority=0.9)
    AnnotationFactory(image=labelled, author=personas["annotator"])  # labelled: out of the queue
    assert summary() == (
        "Labelling queue: 7 unlabelled images: 2 first (picked by the last ranking), 1 ordered by the model's "
        "uncertainty, 3 waiting for labels to be ranked, 1 not ranked yet (new since the last round)."
    )
    browser_for("annotator").get(f"/projects/{project.pk}/images/{picks[0].pk}/")  # opened: claimed
    assert summary().endswith("; 1 open in a viewer now.")


def test_a_lead_chooses_the_ranking_and_a_round_reorders_the_queue(
    project: Any, browser_for: Any, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    from skelex_web.audit.models import AuditEvent

    lead = browser_for("lead")
    page = lead.get(f"/projects/{project.pk}/").content.decode()
    assert '<option value="hybrid" selected>' in page and '<option value="kcenter">' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = lead.post(f"/projects/{project.pk}/ranking/", {"sampling": "kcenter"}, follow=True)
    shown = messages_at(response.content.decode())
    assert list(shown) == ["learning"] and shown["learning"][0].startswith("Ranking set to kcenter; a training round")
    project.refresh_from_db()
    assert project.setting("sampling") == "kcenter" and project.setting("retrain_every") == 20
    assert sent_tasks == [("workers.learning.retrain", [project.pk])]
    assert AuditEvent.objects.filter(action="project.update", project=project).exists()
    assert '<option value="kcenter" selected>' in response.content.decode()
    again = lead.post(f"/projects/{project.pk}/ranking/", {"sampling": "kcenter"}, follow=True)
    assert "already ranked by kcenter" in again.content.decode() and len(sent_tasks) == 1
    bad = lead.post(f"/projects/{project.pk}/ranking/", {"sampling": "loudest"}, follow=True)
    assert "Not changed: the ranking must be one of hybrid, entropy" in bad.content.decode()
    project.refresh_from_db()
    assert project.setting("sampling") == "kcenter"
    # Others see the ranking in words and cannot change it.
    annotator = browser_for("annotator")
    assert (
        "The queue is ranked by kcenter (most unlike anything labelled"
        in annotator.get(f"/projects/{project.pk}/").content.decode()
    )
    assert annotator.post(f"/projects/{project.pk}/ranking/", {"sampling": "random"}).status_code == 403
    assert browser_for("outsider").post(f"/projects/{project.pk}/ranking/", {"sampling": "random"}).status_code == 404


def test_images_analysed_with_earlier_settings_are_shown_and_a_lead_has_them_analysed_again(
    project: Any, browser_for: Any, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    from skelex_web.learning.models import ErrorMap
    from skelex_web.learning.pipeline import analysis_params, params_hash

    backbone = ModelVersionFactory()
    project.active_backbone = backbone
    project.save()
    current, old = ImageFactory(project=project), [ImageFactory(project=project) for _ in range(2)]
    ErrorMap.objects.create(image=current, model_version=backbone, params_hash=params_hash(analysis_params()))
    for image in old:  # an earlier release's settings
        ErrorMap.objects.create(image=image, model_version=backbone, params_hash="0123456789abcdef")
    ImageFactory(project=project, status="queued")  # waiting for its first analysis: not counted

    page = browser_for("annotator").get(f"/projects/{project.pk}/").content.decode()
    assert "2 images were analysed with earlier settings or another backbone" in page
    assert "Analyse again" not in page
    assert browser_for("annotator").post(f"/projects/{project.pk}/reanalyse/").status_code == 403
    lead = browser_for("lead")
    with django_capture_on_commit_callbacks(execute=True):
        response = lead.post(f"/projects/{project.pk}/reanalyse/", follow=True)
    body = response.content.decode()
    assert "2 images queued for analysis with the current settings." in body
    assert "analysed with earlier settings" not in body
    assert sorted(i for _, (ids, *_) in sent_tasks for i in ids) == sorted(i.pk for i in old)
    assert set(Image.objects.filter(pk__in=[i.pk for i in old]).values_list("status", flat=True)) == {"queued"}
    again = lead.post(f"/projects/{project.pk}/reanalyse/", follow=True)
    assert "Every analysed image is up to date" in again.content.decode()


def test_a_lead_asks_which_ranking_would_have_saved_labels(
    project: Any, browser_for: Any, personas: Any, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    lead = browser_for("lead")
    # Too few labels: said on the button, and refused at once without a job.
    page = lead.get(f"/projects/{project.pk}/").content.decode()
    assert "needs 100 analysed, labelled images; this project has 0" in page
    response = lead.post(f"/projects/{project.pk}/compare-rankings/", follow=True)
    assert messages_at(response.content.decode()) == {
        "learning": ["Not compared: this needs 100 analysed, labelled images; the project has 0."]
    }
    assert sent_tasks == []
    for n in range(100):
        AnnotationFactory(
            image=ImageFactory(project=project), author=personas["annotator"], kind="head", head="abnormal",
            value="yes" if n % 2 else "no", x0=None, y0=None, x1=None, y1=None,
        )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = lead.post(f"/projects/{project.pk}/compare-rankings/", follow=True)
    assert response.redirect_chain[-1][0] == f"/projects/{project.pk}/#learning"
    page = response.content.decode()
    assert messages_at(page)["learning"][0].startswith("Comparison queued")
    assert sent_tasks == [("workers.learning.compare_rankings", [project.pk])]
    assert 'data-testid="comparison-pending"' in page
    assert re.search(r"<button type=\"submit\" disabled>Compare rankings on our labels</button>", page)
    # One at a time per project; leads only.
    with django_capture_on_commit_callbacks(execute=True):
        again = lead.post(f"/projects/{project.pk}/compare-rankings/", follow=True)
    assert messages_at(again.content.decode()) == {"learning": ["A comparison is already queued or running."]}
    assert len(sent_tasks) == 1
    # Both asks are in the audit trail and in the page's Activity, the second as one already running.
    events = AuditEvent.objects.filter(action="rankings.compare").order_by("id")
    assert [(e.actor, e.after) for e in events] == [
        (personas["lead"], {"queued": True}),
        (personas["lead"], {"queued": False}),
    ]
    assert (
        "asked to compare the rankings on the project&#x27;s labels (one was running already)" in again.content.decode()
    )
    assert browser_for("annotator").post(f"/projects/{project.pk}/compare-rankings/").status_code == 403
    assert browser_for("outsider").post(f"/projects/{project.pk}/compare-rankings/").status_code == 404


def test_a_clear_recommendation_offers_leads_its_ranking_in_one_click(
    project: Any, browser_for: Any, settings: Any, tmp_path: Any
) -> None:
    import json

    from skelex_web.learning.services import comparison_dir

    settings.MEDIA_ROOT = str(tmp_path)
    comparison_dir(project).mkdir(parents=True)
    gains = {
        "abnormal": {
            "kcenter": {"gain": 0.03, "lo": 0.01, "hi": 0.05},
            "hybrid": {"gain": -0.01, "lo": -0.03, "hi": 0.01},
        }
    }
    summary = {
        "status": "done", "finished_at": "2026-11-29T17:41:24+00:00", "requested_by": "lena", "n_labelled": 240,
        "settings": {"splits": 3, "seeds": 5, "initial": 10, "budget": 5, "rounds": 31, "seconds": 230.0},
        "rankings": ["hybrid", "kcenter"], "gains": gains, "notes": [],
        "recommendation": {"ranking": "kcenter", "clear": True, "switch": True, "text": "kcenter learned fastest"},
    }  # fmt: skip
    (comparison_dir(project) / "summary.json").write_text(json.dumps(summary))
    page = browser_for("lead").get(f"/projects/{project.pk}/").content.decode()
    assert "kcenter learned fastest" in page
    assert re.search(r'<td class="num better">0.030 \[0.010, 0.050\]</td>', page)
    form = re.search(r'data-testid="use-recommended">.*?</form>', page, re.S)
    assert form and 'name="sampling" value="kcenter"' in form.group(0)
    assert (
        'data-testid="use-recommended"' not in browser_for("annotator").get(f"/projects/{project.pk}/").content.decode()
    )
    # Not offered when it is not clearly ahead of the ranking in use, nor when that is the same one.
    (comparison_dir(project) / "summary.json").write_text(
        json.dumps({**summary, "recommendation": {**summary["recommendation"], "switch": False}})
    )
    assert 'data-testid="use-recommended"' not in browser_for("lead").get(f"/projects/{project.pk}/").content.decode()
    (comparison_dir(project) / "summary.json").write_text(json.dumps(summary))
    project.settings = {**project.settings, "sampling": "kcenter"}
    project.save()
    assert 'data-testid="use-recommended"' not in browser_for("lead").get(f"/projects/{project.pk}/").content.decode()


def test_a_lead_puts_one_finding_first_and_everyone_sees_it(
    project: Any, browser_for: Any, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    from skelex_web.audit.models import AuditEvent

    lead = browser_for("lead")
    page = lead.get(f"/projects/{project.pk}/").content.decode()
    assert (
        '<option value="" selected>every finding</option>' in page and '<option value="implant">implant first' in page
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = lead.post(
            f"/projects/{project.pk}/ranking/", {"sampling": "hybrid", "focus": "implant"}, follow=True
        )
    assert messages_at(response.content.decode())["learning"][0].startswith(
        "Ranking set to hybrid, for implant first; a training round is queued"
    )
    project.refresh_from_db()
    assert project.setting("focus") == "implant" and project.setting("sampling") == "hybrid"
    assert sent_tasks == [("workers.learning.retrain", [project.pk])]
    change = AuditEvent.objects.filter(action="project.update", project=project).latest("id")
    assert change.actor.username == "lena" and change.after["settings"]["focus"] == "implant"
    assert not (change.before["settings"] or {}).get("focus")
    assert '<option value="implant" selected>implant first' in response.content.decode()

    # Changing the ranking alone keeps the focus; a finding the project does not have changes nothing.
    lead.post(f"/projects/{project.pk}/ranking/", {"sampling": "entropy"})
    project.refresh_from_db()
    assert (project.setting("sampling"), project.setting("focus")) == ("entropy", "implant")
    bad = lead.post(f"/projects/{project.pk}/ranking/", {"sampling": "hybrid", "focus": "spleen"}, follow=True)
    assert "Not changed: &#x27;spleen&#x27; is not a finding of this project" in bad.content.decode()
    project.refresh_from_db()
    assert (project.setting("sampling"), project.setting("focus")) == ("entropy", "implant")

    # Others read it; with a ranking that ignores the model, the page says the focus does nothing.
    viewer = browser_for("viewer")
    assert (
        "The queue is ranked by entropy (most uncertain first"
        in (text := viewer.get(f"/projects/{project.pk}/").content.decode())
        and ", for implant first." in text
    )
    lead.post(f"/projects/{project.pk}/ranking/", {"sampling": "kcenter"})
    note = viewer.get(f"/projects/{project.pk}/").content.decode()
    assert "kcenter does not use the model&#x27;s answers, so putting implant first changes nothing with it." in note

    # Back to every finding.
    back = lead.post(f"/projects/{project.pk}/ranking/", {"sampling": "hybrid", "focus": ""}, follow=True)
    assert messages_at(back.content.decode())["learning"][-1].startswith("Ranking set to hybrid, for every finding")
    project.refresh_from_db()
    assert project.setting("focus") == ""
