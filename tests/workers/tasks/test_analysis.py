"""The analysis task on SQLite, called in-process: rows written, idempotence, failures isolated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

from skelex_web.labeling.models import Suggestion
from skelex_web.learning.models import Embedding, ErrorMap
from skelex_web.studies.models import ImageStatus
from tests.factories import AnnotationFactory
from tests.workers.tasks.helpers import stored_image
from workers.tasks import modelcache
from workers.tasks.analysis import analyse_images

pytestmark = pytest.mark.django_db


def _run(ids: list[int], **kwargs: Any) -> dict[str, int]:
    return analyse_images.apply(args=[ids], kwargs=kwargs).get()


def test_batch_writes_embedding_errormap_suggestions_and_status(analysis_project: Any, media_root: Path) -> None:
    images = [stored_image(analysis_project, media_root, seed) for seed in range(3)]

    counts = _run([i.pk for i in images])

    assert counts == {"analysed": 3, "skipped": 0, "failed": 0, "missing": 0}
    for image in images:
        image.refresh_from_db()
        assert image.status == ImageStatus.ANALYSED and image.error_message == ""
        emb = Embedding.objects.get(image=image)
        vec = emb.as_array()
        assert vec.shape == (64,) and abs(float(np.linalg.norm(vec)) - 1.0) < 1e-2  # mean + max of 32-d tokens
        em = ErrorMap.objects.get(image=image)
        heat = np.asarray(PILImage.open(media_root / em.file.name))
        assert heat.shape == (image.rows, image.cols) and heat.dtype == np.uint8 and heat.max() > 0
        assert em.summary["image_score"] == em.image_score and len(em.params_hash) == 16
    suggestions = Suggestion.objects.filter(image__in=images)
    assert suggestions.exists()
    for s in suggestions:
        assert (
            s.source == "errormap" and s.state == "pending" and s.label in analysis_project.label_schema["box_labels"]
        )
        assert 0 <= s.x0 < s.x1 <= s.image.cols and 0 <= s.y0 < s.y1 <= s.image.rows


def test_every_stored_image_is_announced_once_with_its_suggestion_count(
    analysis_project: Any, media_root: Path, django_capture_on_commit_callbacks: Any
) -> None:
    import asyncio

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from skelex_web import events

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(events.group_name(analysis_project.pk), channel)
    images = [stored_image(analysis_project, media_root, seed) for seed in range(3)]

    with django_capture_on_commit_callbacks(execute=True):
        _run([i.pk for i in images])

    async def drain() -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append((await asyncio.wait_for(layer.receive(channel), 0.5))["event"])
            except TimeoutError:
                return out

    received = async_to_sync(drain)()
    analysed = [e for e in received if e["type"] == "image.analysed"]
    ready = {e["image"]: e["count"] for e in received if e["type"] == "suggestions.ready"}
    assert sorted(e["image"] for e in analysed) == [i.pk for i in images]
    assert all(e["status"] == "analysed" and e["error"] == "" for e in analysed)
    assert ready == {i.pk: Suggestion.objects.filter(image=i).count() for i in images}
    assert [e["done"] for e in received if e["type"] == "job.progress"] == [3]


def test_running_twice_changes_nothing(analysis_project: Any, media_root: Path) -> None:
    images = [stored_image(analysis_project, media_root, seed) for seed in range(2)]
    ids = [i.pk for i in images]
    _run(ids)
    before = (
        list(ErrorMap.objects.order_by("id").values_list("id", "params_hash", "image_score")),
        list(Embedding.objects.order_by("id").values_list("id", "vector")),
        list(Suggestion.objects.order_by("id").values_list("id", "x0", "y0", "x1", "y1", "score")),
    )

    counts = _run(ids)

    assert counts["analysed"] == 0 and counts["skipped"] == 2
    after = (
        list(ErrorMap.objects.order_by("id").values_list("id", "params_hash", "image_score")),
        list(Embedding.objects.order_by("id").values_list("id", "vector")),
        list(Suggestion.objects.order_by("id").values_list("id", "x0", "y0", "x1", "y1", "score")),
    )
    assert after == before


def test_a_batch_with_some_images_already_stored_completes_only_the_rest(
    analysis_project: Any, media_root: Path
) -> None:
    images = [stored_image(analysis_project, media_root, seed) for seed in range(3)]
    _run([images[1].pk])
    first = ErrorMap.objects.get(image=images[1])

    counts = _run([i.pk for i in images])

    assert counts == {"analysed": 2, "skipped": 1, "failed": 0, "missing": 0}
    assert ErrorMap.objects.filter(image__in=images).count() == 3 and ErrorMap.objects.get(image=images[1]) == first
    for image in images:
        image.refresh_from_db()
        assert image.status == ImageStatus.ANALYSED


@pytest.mark.django_db(transaction=True)  # the foreign keys are checked when the batch commits
def test_an_image_deleted_while_its_batch_ran_fails_alone_and_the_rest_is_stored(
    analysis_project: Any, media_root: Path, backbone: Any
) -> None:
    from skelex_web.studies.models import Image
    from workers.tasks.analysis import analyse_group

    images = [stored_image(analysis_project, media_root, seed) for seed in range(3)]
    Image.objects.filter(pk=images[1].pk).delete()  # after the task read its rows

    counts = analyse_group(images, backbone)

    assert counts == {"analysed": 2, "skipped": 0, "failed": 1}
    assert set(ErrorMap.objects.values_list("image_id", flat=True)) == {images[0].pk, images[2].pk}
    assert Embedding.objects.count() == 2


def test_corrupt_image_fails_with_message_and_the_rest_complete(analysis_project: Any, media_root: Path) -> None:
    good = [stored_image(analysis_project, media_root, seed) for seed in range(2)]
    bad = stored_image(analysis_project, media_root, 99, data=b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)

    counts = _run([good[0].pk, bad.pk, good[1].pk])

    assert counts["analysed"] == 2 and counts["failed"] == 1
    bad.refresh_from_db()
    assert bad.status == ImageStatus.FAILED
    assert bad.error_message.startswith("analysis failed:") and "image" in bad.error_message
    assert str(media_root) not in bad.error_message
    for image in good:
        image.refresh_from_db()
        assert image.status == ImageStatus.ANALYSED


def test_model_is_loaded_once_per_process(analysis_project: Any, media_root: Path) -> None:
    modelcache.clear()
    start = modelcache.loads
    _run([stored_image(analysis_project, media_root, 1).pk])
    _run([stored_image(analysis_project, media_root, 2).pk])
    assert modelcache.loads - start == 1


def test_missing_backbone_marks_failed(db: Any, media_root: Path) -> None:
    from tests.factories import ProjectFactory

    image = stored_image(ProjectFactory(), media_root, 5)
    counts = _run([image.pk])
    image.refresh_from_db()
    assert counts["failed"] == 1 and image.status == ImageStatus.FAILED and "no backbone" in image.error_message


def test_new_backbone_supersedes_pending_suggestions_only(
    analysis_project: Any, media_root: Path, tmp_path: Path
) -> None:
    from skelex_web.learning.services import register_backbone
    from tests.workers.tasks.helpers import tiny_checkpoint

    images = [stored_image(analysis_project, media_root, seed) for seed in range(4)]
    ids = [i.pk for i in images]
    _run(ids)
    first = list(Suggestion.objects.filter(image__in=images))
    assert first
    resolved = first[0]
    resolved.state = "rejected"
    resolved.save()
    other = register_backbone(name="other", checkpoint=tiny_checkpoint(tmp_path, seed=1, name="other"))

    _run(ids, model_version_id=other.pk)

    assert Suggestion.objects.filter(pk=resolved.pk).exists()
    old_pending = Suggestion.objects.filter(image__in=images, state="pending").exclude(model_version=other)
    assert not old_pending.exists()
    assert ErrorMap.objects.filter(model_version=other).count() == 4


def test_delivery_settings_survive_killed_workers_and_outages() -> None:
    from django.db import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError

    from skelex_web.celery import app

    task = app.tasks["workers.analysis.analyse_images"]
    assert task.acks_late and task.reject_on_worker_lost
    assert {OperationalError, RedisConnectionError} <= set(task.autoretry_for) and task.retry_backoff
    assert app.amqp.router.route({}, "workers.analysis.analyse_images")["queue"].name == "gpu"


def test_after_the_embedding_setting_changes_reanalyse_brings_old_images_up_to_date(
    analysis_project: Any, media_root: Path, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    import io

    from django.core.management import call_command

    from skelex_web.celery import app
    from tests.skelex_web.studies.ingest_helpers import SentTasks
    from workers.tasks import engine

    images = [stored_image(analysis_project, media_root, seed) for seed in range(3)]
    ids = [i.pk for i in images]
    # Analysed by an older release that read the whole image at one scale only.
    monkeypatch.setitem(engine.DEFAULT_PARAMS, "embed_scales", [1])
    _run(ids)
    old_readout = engine.embedding_hash(engine.analysis_params())
    old = {e.image_id: e.as_array() for e in Embedding.objects.filter(image__in=ids)}
    assert {e.readout for e in Embedding.objects.filter(image__in=ids)} == {old_readout}
    monkeypatch.setitem(engine.DEFAULT_PARAMS, "embed_scales", [1, 2, 3])  # the upgrade

    out = io.StringIO()
    call_command("reanalyse", "--dry-run", stdout=out)
    assert "phantoms: 3 images would be analysed again" in out.getvalue()
    assert all(i.status == ImageStatus.ANALYSED for i in type(images[0]).objects.filter(pk__in=ids))

    # The last image is labelled: it is analysed first, so rounds move to the new embeddings early.
    AnnotationFactory(image=images[2], kind="head", head="abnormal", value="yes", x0=None, y0=None, x1=None, y1=None)
    sent = SentTasks()
    monkeypatch.setattr(app, "send_task", sent)
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("reanalyse", "--project", "phantoms", stdout=out)
    assert "phantoms: 3 images queued for analysis" in out.getvalue()
    assert sent.image_ids == [ids[2], ids[0], ids[1]]
    assert all(i.status == ImageStatus.QUEUED for i in type(images[0]).objects.filter(pk__in=ids))

    assert _run(ids)["analysed"] == 3
    new = {e.image_id: e for e in Embedding.objects.filter(image__in=ids)}
    assert {e.readout for e in new.values()} == {engine.embedding_hash(engine.analysis_params())} != {old_readout}
    assert all(new[i].dim == old[i].size and not np.allclose(new[i].as_array(), old[i], atol=1e-3) for i in ids)
    out = io.StringIO()
    call_command("reanalyse", stdout=out)
    assert "phantoms: up to date" in out.getvalue()


def test_reanalyse_names_an_unknown_project(db: Any) -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        call_command("reanalyse", "--project", "nope")
