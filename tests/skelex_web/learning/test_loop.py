"""The active-learning loop in the platform: retrain triggers, rounds, queue order, claims."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.core.cache import cache
from django.utils import timezone

from skelex_web.labeling.models import Suggestion
from skelex_web.learning import loop
from skelex_web.learning.models import Embedding, ModelVersion
from skelex_web.studies.models import Image
from tests.factories import AnnotationFactory, ImageFactory, ModelVersionFactory
from workers.tasks.learning import retrain


@pytest.fixture
def pool(project: Any, personas: Any) -> list[Image]:
    """40 analysed images whose embeddings separate 'abnormal' yes/no along one direction."""
    backbone = ModelVersionFactory()
    project.active_backbone = backbone
    project.save()
    rng = np.random.default_rng(0)
    images = []
    for i in range(40):
        image = ImageFactory(project=project, body_part="HAND" if i % 2 else "LEG")
        v = rng.normal(size=32).astype(np.float32)
        v[0] += 3.0 if i < 20 else -3.0
        v /= np.linalg.norm(v)
        Embedding.objects.create(image=image, model_version=backbone, dim=32, vector=v.astype("<f2").tobytes())
        images.append(image)
    return images


def answer(image: Image, user: Any, value: str) -> None:
    AnnotationFactory(
        image=image, author=user, kind="head", head="abnormal", value=value, x0=None, y0=None, x1=None, y1=None
    )


def answer_twenty(pool: list[Image], user: Any) -> None:
    """10 of the abnormal images answered yes and 10 of the normal ones no."""
    for image in pool[:10] + pool[20:30]:
        answer(image, user, "yes" if image in pool[:20] else "no")


def test_retrain_is_requested_after_n_new_labels(
    pool: list[Image], project: Any, client_for: Any, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    project.settings = {**project.settings, "retrain_every": 3}
    project.save()
    client = client_for("annotator")
    for n, image in enumerate(pool[:3], start=1):
        with django_capture_on_commit_callbacks(execute=True):
            r = client.post(
                "/api/annotations/",
                {"image": image.pk, "kind": "head", "head": "abnormal", "value": "yes"},
                format="json",
            )
        assert r.status_code == 201
        assert len(sent_tasks) == (1 if n == 3 else 0)
    assert sent_tasks[0] == ("workers.learning.retrain", [project.pk])
    # An unknown answer is not a label: it does not count towards the next round.
    assert loop.labels_since_last_round(project) == 3


def test_a_round_trains_heads_writes_suggestions_and_orders_the_queue(
    pool: list[Image], project: Any, personas: Any, sent_tasks: list
) -> None:
    answer_twenty(pool, personas["annotator"])
    summary = retrain(project.pk)

    mv = ModelVersion.objects.get(project=project, kind="heads")
    assert summary["n_labelled"] == 20 and mv.metrics["n_labelled"] == 20
    assert mv.metrics["heads"]["abnormal"]["auroc"] > 0.9  # the direction is easy to learn
    # Pre-filled answers for unlabelled images only, with probabilities that sum to one.
    head_suggestions = Suggestion.objects.filter(kind="head", head="abnormal")
    assert head_suggestions.count() == 40 - 20
    s = head_suggestions.get(image=pool[15])
    assert s.value["answer"] == "yes" and abs(sum(s.value["probabilities"].values()) - 1) < 1e-3
    # Labelled images leave the queue; the round's picks come first, each with a reason.
    queue = list(loop.worklist(project, personas["annotator"]))
    assert len(queue) == 20 and all(i.al_reason for i in queue)
    assert queue[0].al_priority > 1.0
    assert not {i.pk for i in queue} & {i.pk for i in pool[:10] + pool[20:30]}


@pytest.mark.parametrize(
    ("sampling", "reason_start"),
    [
        ("hybrid", None),
        ("kcenter", ("diverse: unlike anything labelled",)),
        ("ensemble", ("models disagree",)),
        ("random", ("random: unbiased sample",)),
    ],
)
def test_a_round_ranks_by_the_project_s_chosen_sampling(
    pool: list[Image], project: Any, personas: Any, sampling: str, reason_start: tuple[str, ...] | None
) -> None:
    project.settings = {**project.settings, "sampling": sampling}
    project.save()
    answer_twenty(pool, personas["annotator"])
    summary = retrain(project.pk)
    assert summary["sampling"] == sampling and summary["picked"] == 20
    assert [r["sampling"] for r in loop.learning_curve(project)] == [sampling]  # the rounds table's column
    picked = [i.al_reason for i in loop.worklist(project, personas["annotator"]) if (i.al_priority or 0) > 1.0]
    assert len(picked) == 20
    others = ("diverse: unlike anything labelled", "models disagree")
    if reason_start is None:  # the default explains each pick by the model's uncertainty
        assert not any(r.startswith(others) for r in picked) and any(r.startswith("uncertain") for r in picked)
    else:
        assert all(r.startswith(reason_start) for r in picked), picked


def test_only_heads_with_two_different_answers_suggest_or_rank(pool: list[Image], project: Any, personas: Any) -> None:
    # 'abnormal' has yes and no; 'implant' only ever 'no'; the other heads no answer at all.
    for image in pool[:10] + pool[20:30]:
        answer(image, personas["annotator"], "yes" if image in pool[:20] else "no")
        AnnotationFactory(image=image, author=personas["annotator"], kind="head", head="implant", value="no",
                          x0=None, y0=None, x1=None, y1=None)  # fmt: skip
    summary = retrain(project.pk)
    assert summary["heads_ranked"] == ["abnormal"]
    # No pre-filled 'malignant (25%)' from a head that has seen no tumour answer, and no 'implant: no'
    # from one that has only seen 'no'.
    assert set(Suggestion.objects.filter(kind="head").values_list("head", flat=True)) == {"abnormal"}
    reasons = [i.al_reason for i in loop.worklist(project, personas["annotator"])]
    assert reasons and not any("implant" in r or "tumour" in r for r in reasons)


def test_labels_of_one_answer_only_keep_the_cold_start_queue(pool: list[Image], project: Any, personas: Any) -> None:
    for image in pool[:6]:
        answer(image, personas["annotator"], "yes")
    summary = retrain(project.pk)
    assert summary["n_labelled"] == 6 and summary["heads_ranked"] == []
    assert not Suggestion.objects.filter(kind="head").exists()
    queue = list(loop.worklist(project, personas["annotator"]))
    assert queue[0].al_reason.startswith(("typical", "covers the data"))
    assert queue[-1].al_reason == "after this round's picks: ranked once some finding has two different answers"


@pytest.mark.parametrize(
    "change",
    [
        {"dim": 64, "vector": np.ones(64, "<f2").tobytes()},  # a wider readout (e.g. mean+max pooling)
        {"readout": "0123456789abcdef"},  # another readout of the same length (e.g. other scales)
    ],
    ids=["another length", "same length, another readout"],
)
def test_a_round_after_an_embedding_change_trains_on_one_kind_and_says_what_it_left_out(
    pool: list[Image], project: Any, personas: Any, change: dict[str, Any]
) -> None:
    # Five images were re-analysed with a new embedding setting; the rest not yet.
    for image in pool[10:15]:
        Embedding.objects.filter(image=image).update(**change)
    answer_twenty(pool, personas["annotator"])
    summary = retrain(project.pk)
    assert summary["n_images"] == 35 and summary["n_labelled"] == 20
    assert "5 images have embeddings of another kind" in summary["left_out"]
    assert "manage.py reanalyse" in summary["left_out"]
    mv = ModelVersion.objects.get(project=project, kind="heads")
    assert mv.metrics["heads"]["abnormal"]["auroc"] > 0.9
    # The left-out images get no pre-filled answer from a model that never saw their embedding.
    assert not Suggestion.objects.filter(kind="head", image__in=pool[10:15]).exists()


def test_cold_start_picks_typical_images_per_body_part(pool: list[Image], project: Any, personas: Any) -> None:
    retrain(project.pk)
    assert not ModelVersion.objects.filter(kind="heads").exists()
    first = list(loop.worklist(project, personas["annotator"])[:20])
    assert all(i.al_reason.startswith(("typical", "covers the data", "random")) for i in first)
    assert {i.body_part for i in first} == {"HAND", "LEG"}


def test_the_queue_never_hands_one_image_to_two_annotators(pool: list[Image], project: Any, personas: Any) -> None:
    a = loop.claim_next(project, personas["annotator"])
    b = loop.claim_next(project, personas["reviewer"])
    assert a is not None and b is not None and a.pk != b.pk
    assert a.pk not in {i.pk for i in loop.worklist(project, personas["reviewer"])}
    # Asking again hands the annotator a new image and releases the old one.
    c = loop.claim_next(project, personas["annotator"], skip=[a.pk])
    assert c is not None and c.pk not in (a.pk, b.pk)
    assert Image.objects.get(pk=a.pk).claimed_by is None
    # A claim left idle past its time-to-live is handed out again.
    Image.objects.filter(pk=b.pk).update(claimed_at=timezone.now() - loop.CLAIM_TTL - timedelta(seconds=1))
    assert b.pk in {i.pk for i in loop.worklist(project, personas["annotator"])}


def test_claim_endpoint_refuses_an_image_open_elsewhere(pool: list[Image], client_for: Any) -> None:
    image = pool[0]
    assert client_for("annotator").post(f"/api/images/{image.pk}/claim/").status_code == 200
    response = client_for("reviewer").post(f"/api/images/{image.pk}/claim/")
    assert response.status_code == 409 and response.json()["claimed_by"] == "ana"


def test_retrain_endpoint_is_for_leads(pool: list[Image], project: Any, client_for: Any, sent_tasks: list) -> None:
    assert client_for("annotator").post(f"/api/projects/{project.pk}/retrain/").status_code == 403
    response = client_for("lead").post(f"/api/projects/{project.pk}/retrain/")
    assert response.status_code == 202 and response.json() == {"queued": True}


def test_learning_curve_api_and_plot(pool: list[Image], project: Any, personas: Any, client_for: Any) -> None:
    for image in pool[:4] + pool[20:24]:
        answer(image, personas["annotator"], "yes" if image in pool[:20] else "no")
    retrain(project.pk)
    for image in pool[4:10] + pool[24:30]:
        answer(image, personas["annotator"], "yes" if image in pool[:20] else "no")
    retrain(project.pk)

    body = client_for("viewer").get(f"/api/projects/{project.pk}/learning-curve/").json()
    assert [r["n_labelled"] for r in body["rounds"]] == [8, 20]
    assert "auroc" in body["rounds"][1]["heads"]["abnormal"]
    svg = client_for("viewer").get(f"/api/projects/{project.pk}/learning-curve/?plot=svg")
    assert svg["Content-Type"] == "image/svg+xml"
    assert b"<path" in svg.content and b"abnormal" in svg.content
    png = client_for("viewer").get(f"/api/projects/{project.pk}/learning-curve/?plot=png")
    assert png.status_code == 400 and png.json()["detail"] == "plot must be svg, not 'png'."


def test_the_queue_says_which_limits_it_takes(pool: list[Image], project: Any, client_for: Any) -> None:
    client = client_for("viewer")
    assert len(client.get(f"/api/projects/{project.pk}/queue/").json()) == 20
    assert len(client.get(f"/api/projects/{project.pk}/queue/?limit=3").json()) == 3
    for bad in ("-1", "0", "abc", "501"):
        reply = client.get(f"/api/projects/{project.pk}/queue/?limit={bad}")
        assert reply.status_code == 400
        assert reply.json()["detail"] == f"limit must be a whole number from 1 to 500, not {bad!r}."


def test_a_new_project_gets_its_cold_start_order_once_its_images_are_analysed(
    pool: list[Image], project: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from skelex_web.celery import app

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, kwargs=None, **kw: sent.append(kwargs or {}))
    cache.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert loop.on_images_analysed(project.pk)
    assert sent == [{"reason": "new images analysed", "rank_only": True}]
    loop.retrain_finished(project.pk)  # what the worker does when the round ends

    retrain(project.pk, reason="new images analysed", rank_only=True)
    queue = list(loop.worklist(project, None))
    assert queue[0].al_reason.startswith(("typical", "covers the data"))
    assert all(i.al_priority is not None for i in queue)
    # Everything ranked: the next drained analysis asks for nothing.
    with django_capture_on_commit_callbacks(execute=True):
        assert not loop.on_images_analysed(project.pk)
    assert len(sent) == 1


def test_images_analysed_after_a_round_are_ranked_by_its_heads_without_a_new_round(
    pool: list[Image], project: Any, personas: Any
) -> None:
    answer_twenty(pool, personas["annotator"])
    retrain(project.pk)
    first = ModelVersion.objects.get(project=project, kind="heads")
    # New images arrive and are analysed: unranked, at the end of the queue.
    backbone = project.active_backbone
    rng = np.random.default_rng(1)
    new = []
    for _ in range(4):
        image = ImageFactory(project=project, body_part="HAND")
        v = rng.normal(size=32).astype(np.float32)
        v /= np.linalg.norm(v)
        Embedding.objects.create(image=image, model_version=backbone, dim=32, vector=v.astype("<f2").tobytes())
        new.append(image)
    assert all(Image.objects.get(pk=i.pk).al_priority is None for i in new)
    order_before = list(
        Image.objects.filter(pk__in=[i.pk for i in pool]).order_by("id").values_list("id", "al_priority", "al_reason")
    )
    suggestions_before = set(Suggestion.objects.filter(kind="head").values_list("id", flat=True))

    summary = retrain(project.pk, reason="new images analysed", rank_only=True)
    assert summary["reused"] == first.pk and summary["ranked_new"] == 4
    assert ModelVersion.objects.filter(project=project, kind="heads").count() == 1  # no new round recorded
    # What annotators already have is left as it was: the round's order and its pre-filled answers.
    assert (
        list(
            Image.objects.filter(pk__in=[i.pk for i in pool])
            .order_by("id")
            .values_list("id", "al_priority", "al_reason")
        )
        == order_before
    )
    assert suggestions_before <= set(Suggestion.objects.filter(kind="head").values_list("id", flat=True))
    for image in new:
        image.refresh_from_db()
        assert image.al_priority is not None and image.al_reason.startswith(
            ("uncertain", "less sure than most", "nearly sure", "random")
        )
        assert Suggestion.objects.filter(image=image, kind="head", model_version=first).exists()

    # A label since the last round: the same request trains new heads instead.
    answer(new[0], personas["annotator"], "yes")
    summary = retrain(project.pk, reason="new images analysed", rank_only=True)
    assert "reused" not in summary
    latest = ModelVersion.objects.filter(project=project, kind="heads").latest("created_at")
    assert latest.pk != first.pk and latest.metrics["n_labelled"] == 21
    assert latest.config["reason"] == "new images analysed"


def test_the_progress_bar_names_a_round_that_trains_nothing_as_ordering_the_queue(
    pool: list[Image], project: Any, personas: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workers.tasks.learning as task

    jobs: list[str] = []
    monkeypatch.setattr(
        task.events,
        "publish",
        lambda pid, kind, payload: jobs.append(payload["job"]) if kind == "job.progress" else None,
    )
    retrain(project.pk)  # nothing labelled: cold start
    assert set(jobs) == {"ranking"}
    jobs.clear()
    for image in pool[:4] + pool[20:24]:
        answer(image, personas["annotator"], "yes" if image in pool[:20] else "no")
    retrain(project.pk)
    assert set(jobs) == {"retrain"} and jobs.count("retrain") == 3
    jobs.clear()
    retrain(project.pk, rank_only=True)  # nothing new to learn: the latest heads are reused
    assert set(jobs) == {"ranking"}


def test_heads_are_not_reused_after_an_edited_answer_another_readout_or_another_backbone(
    pool: list[Image], project: Any, personas: Any
) -> None:
    answer_twenty(pool, personas["annotator"])
    retrain(project.pk)
    assert "reused" in retrain(project.pk, reason="new images analysed", rank_only=True)

    # A reviewer corrects one answer: still 20 labelled images, but not the answers the heads learned.
    AnnotationFactory(
        image=pool[0], author=personas["reviewer"], kind="head", head="abnormal", value="no",
        x0=None, y0=None, x1=None, y1=None, reviewed=True,
    )  # fmt: skip
    summary = retrain(project.pk, reason="new images analysed", rank_only=True)
    assert "reused" not in summary and summary["n_labelled"] == 20
    assert "reused" in retrain(project.pk, reason="new images analysed", rank_only=True)  # now they match again

    # The same images re-embedded with another readout of the same size (an upgrade's re-analysis).
    Embedding.objects.filter(image__in=pool).update(readout="0123456789abcdef")
    summary = retrain(project.pk, reason="new images analysed", rank_only=True)
    assert "reused" not in summary and summary["readout"] == "0123456789abcdef"
    assert "reused" in retrain(project.pk, reason="new images analysed", rank_only=True)

    # Another backbone with embeddings of the same size (32): the heads never saw its features.
    other = ModelVersionFactory()
    for image in pool:
        v = np.random.default_rng(image.pk).normal(size=32).astype(np.float32)
        Embedding.objects.create(
            image=image, model_version=other, dim=32, vector=(v / np.linalg.norm(v)).astype("<f2").tobytes()
        )
    project.active_backbone = other
    project.save()
    summary = retrain(project.pk, reason="new images analysed", rank_only=True)
    assert "reused" not in summary
    assert (
        ModelVersion.objects.filter(project=project, kind="heads").latest("created_at").config["backbone"] == other.pk
    )


def test_on_a_tie_the_current_embedding_setting_is_the_one_kept() -> None:
    from workers.tasks.learning import _one_readout

    rows = [(i, b"\0" * 8, None, "old" if i % 2 else "new") for i in range(6)]
    kept, left_out = _one_readout(rows, current="new")
    assert [r[0] for r in kept] == [0, 2, 4] and left_out == 3
    kept, left_out = _one_readout(rows, current="old")
    assert [r[0] for r in kept] == [1, 3, 5] and left_out == 3


def test_the_readout_holding_more_labelled_images_is_kept_even_when_it_has_fewer_images() -> None:
    from workers.tasks.learning import _one_readout

    # Mid-way through a re-analysis (labelled images first): 2 images have the new readout, both
    # labelled; 5 still have the old one, one of them labelled.
    rows = [(i, b"\0" * 8, None, "new" if i < 2 else "old") for i in range(7)]
    kept, left_out = _one_readout(rows, current="new", labelled={0, 1, 2})
    assert [r[0] for r in kept] == [0, 1] and left_out == 5
    # The same split with the old readout holding more labels: those are what the heads learn from.
    kept, left_out = _one_readout(rows, current="new", labelled={0, 2, 3})
    assert [r[0] for r in kept] == [2, 3, 4, 5, 6] and left_out == 2


def test_labels_stored_before_their_images_were_analysed_are_learned_once_analysis_drains(
    pool: list[Image], project: Any, personas: Any, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    # A labelled dataset imported from the command line: answers stored with the images, no label
    # made in the app since, so nothing else would start a round. Five images are still queued.
    answer_twenty(pool, personas["annotator"])
    Image.objects.filter(pk__in=[i.pk for i in pool[:5]]).update(status="queued")
    with django_capture_on_commit_callbacks(execute=True):
        loop.on_images_analysed(project.pk)
    # Only 15 learnable: the unranked images are ranked, no round is asked to learn.
    assert sent_tasks == [("workers.learning.retrain", [project.pk])]
    assert cache.get(f"skelex:retrain-pending:{project.pk}") == "new images analysed"
    loop.retrain_finished(project.pk)
    sent_tasks.clear()

    Image.objects.filter(pk__in=[i.pk for i in pool[:5]]).update(status="analysed")
    with django_capture_on_commit_callbacks(execute=True):
        assert loop.on_images_analysed(project.pk)
    assert sent_tasks == [("workers.learning.retrain", [project.pk])]
    assert cache.get(f"skelex:retrain-pending:{project.pk}") == "auto: 20 labels not learned yet"
    assert loop.learnable_since_last_round(project) == 20
    retrain(project.pk, reason="auto: 20 labels not learned yet")
    loop.retrain_finished(project.pk)
    heads = ModelVersion.objects.get(project=project, kind="heads")
    assert heads.metrics["n_labelled"] == 20 and heads.config["reason"] == "auto: 20 labels not learned yet"
    # Learned: the next drained queue asks for nothing more.
    assert loop.learnable_since_last_round(project) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert not loop.on_images_analysed(project.pk)


def test_after_a_re_analysis_the_heads_are_retrained_on_the_new_embeddings_without_waiting_for_labels(
    pool: list[Image], project: Any, personas: Any, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    from skelex_web.learning.pipeline import analysis_params, embedding_hash

    current = embedding_hash(analysis_params())
    answer_twenty(pool, personas["annotator"])
    Embedding.objects.update(readout="an earlier release")
    retrain(project.pk)
    loop.retrain_finished(project.pk)
    assert ModelVersion.objects.get(project=project, kind="heads").metrics["readout"] == "an earlier release"
    # Nothing labelled re-analysed yet: a round now would learn the same vectors again.
    assert loop.heads_outdated(project) is None

    # Analyse again re-analyses the labelled images first.
    labelled = [i.pk for i in pool[:10] + pool[20:30]]
    Embedding.objects.filter(image_id__in=labelled[:15]).update(readout=current)
    why = loop.heads_outdated(project)
    assert why and "embeddings updated" in why
    with django_capture_on_commit_callbacks(execute=True):
        assert loop.on_images_analysed(project.pk)
    assert sent_tasks == [("workers.learning.retrain", [project.pk])]
    summary = retrain(project.pk, reason=why)
    loop.retrain_finished(project.pk)
    # 15 labelled images on the new readout against 5 on the old one (and 20 unlabelled): the new.
    assert summary["readout"] == current and summary["n_labelled"] == 15
    assert "25 images have embeddings of another kind" in summary["left_out"]
    assert loop.heads_outdated(project) is None


@pytest.mark.parametrize("ask", ["retrain", "comparison"])
def test_a_request_the_broker_refuses_can_be_made_again(
    project: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any, ask: str
) -> None:
    from kombu.exceptions import OperationalError

    from skelex_web.celery import app
    from skelex_web.learning.services import request_comparison

    request = {"retrain": lambda: loop.request_retrain(project, reason="on demand"),
               "comparison": lambda: request_comparison(project, requested_by="lena")}[ask]  # fmt: skip
    cache.clear()

    def down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(app, "send_task", down)
    with django_capture_on_commit_callbacks(execute=True):
        assert request()  # accepted; the send fails after commit
    sent: list[str] = []
    monkeypatch.setattr(app, "send_task", lambda name, *a, **kw: sent.append(name))
    with django_capture_on_commit_callbacks(execute=True):
        assert request()  # not refused as "already pending"
    assert len(sent) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert not request()  # now it is pending


def _implant(image: Image, user: Any, value: str) -> None:
    AnnotationFactory(image=image, author=user, kind="head", head="implant", value=value,
                      x0=None, y0=None, x1=None, y1=None)  # fmt: skip


def _findings_named(project: Any, user: Any) -> set[str]:
    """The findings the queue's reasons name ('uncertain: p(implant) = 0.41' names implant)."""
    reasons = [i.al_reason or "" for i in loop.worklist(project, user)]
    return {name for name in ("abnormal", "implant") if any(f"({name}" in r for r in reasons)}


def test_a_focus_finding_alone_ranks_the_queue_once_it_has_two_answers(
    pool: list[Image], project: Any, personas: Any
) -> None:
    ann = personas["annotator"]
    answer_twenty(pool, ann)
    for image in pool[:10] + pool[20:30]:
        _implant(image, ann, "no")
    project.settings = {**project.settings, "focus": "implant"}
    project.save()
    # Implant has only 'no' answers: it cannot rank yet, so every finding that can does, and the
    # round says so.
    summary = retrain(project.pk)
    assert summary["focus_waiting"] == "implant" and "focus" not in summary
    assert _findings_named(project, ann) == {"abnormal"}
    assert loop.learning_curve(project)[-1]["focus_waiting"] == "implant"

    # With a 'yes' among them it ranks alone; the round records it (the rounds table's column).
    from skelex_web.labeling.models import Annotation

    Annotation.objects.filter(head="implant", image__in=pool[:3]).update(value="yes")
    summary = retrain(project.pk)
    assert summary["focus"] == "implant" and "focus_waiting" not in summary
    assert summary["heads_ranked"] == ["abnormal", "implant"]  # both still learned and suggested
    assert _findings_named(project, ann) == {"implant"}
    assert loop.learning_curve(project)[-1]["focus"] == "implant"

    # A ranking that ignores the model's answers records no focus (the rounds table would say so).
    project.settings = {**project.settings, "sampling": "kcenter"}
    project.save()
    assert "focus" not in retrain(project.pk) and loop.learning_curve(project)[-1]["focus"] == ""

    # Every finding again.
    project.settings = {**project.settings, "sampling": "hybrid", "focus": ""}
    project.save()
    retrain(project.pk)
    assert "abnormal" in _findings_named(project, ann)
