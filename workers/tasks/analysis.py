"""``workers.analysis.analyse_images``: embeddings, error maps and box suggestions for a batch of images.

Runs on the ``gpu`` queue (CUDA with bf16 autocast when present, float32 on CPU). The backbone is
loaded once per worker process and kept (``modelcache``). Delivery is at-least-once:
``acks_late`` + ``reject_on_worker_lost`` put a killed worker's batch back on the queue, and the
task is idempotent (``results.save_analyses``), so a redelivered batch only finishes what is
missing. Transient failures (database or broker unreachable) retry the whole batch with
exponential backoff; anything else is the image's own fault: that image is marked failed with a
readable message and the rest of the batch completes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import Count, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from skelex_web import events
from skelex_web.learning.loop import on_images_analysed
from skelex_web.learning.models import ModelVersion
from skelex_web.learning.services import checkpoint_path, resolve_backbone
from skelex_web.projects.models import Project
from skelex_web.studies.models import Image, ImageStatus

from . import engine, modelcache, results

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
    BrokerOperationalError,
    ConnectionError,
    TimeoutError,
)


def load_pixels(image: Image) -> tuple[Any, tuple[float, float] | None]:
    """The stored 16-bit display pixels (bone bright, de-identified) and the image's window."""
    from workers.imaging.load import load_image

    field = image.display if image.display else image.file
    decoded = load_image(field.path, name=f"image {image.pk}", max_pixels=settings.MAX_IMAGE_PIXELS)
    window = decoded.window
    if image.window_center is not None and image.window_width:
        window = (float(image.window_center), float(image.window_width))
    return decoded.pixels, window


def _run_engine(model: Any, todo: list[tuple[Image, Any, Any]], params: dict[str, Any]) -> list[Any]:
    """Analyses the decoded images in one batch; on a failure, one by one to find the culprit.

    Returns one ``engine.Analysis`` or exception per entry of ``todo``.
    """
    pixels = [p for _, p, _ in todo]
    windows = [w for _, _, w in todo]
    try:
        return list(engine.analyse(model, pixels, windows, params))
    except TRANSIENT_ERRORS:
        raise
    except Exception:  # noqa: BLE001 - isolate the bad image below
        if len(todo) == 1:
            raise
    out: list[Any] = []
    for _, p, w in todo:
        try:
            out.extend(engine.analyse(model, [p], [w], params))
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - reported on that image only
            out.append(exc)
    return out


def analyse_group(images: list[Image], model_version: ModelVersion) -> dict[str, int]:
    """Analyses images that share a backbone; returns counts of analysed, skipped and failed."""
    params = engine.analysis_params()
    phash = engine.params_hash(params)
    counts = {"analysed": 0, "skipped": 0, "failed": 0}
    pending = []
    done = results.completed([image.pk for image in images], model_version.pk, phash)
    for image in images:
        if image.pk in done:
            results.mark_analysed(image)
            counts["skipped"] += 1
        else:
            pending.append(image)
    if not pending:
        return counts
    # updated_at says since when the image waits; the stuck-image sweep (requeue_stuck) reads it.
    Image.objects.filter(pk__in=[i.pk for i in pending]).update(status=ImageStatus.ANALYSING, updated_at=timezone.now())
    todo = []
    for image in pending:
        try:
            pixels, window = load_pixels(image)
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - unreadable stored image: that image fails
            results.mark_failed(image, exc)
            counts["failed"] += 1
            continue
        todo.append((image, pixels, window))
    if not todo:
        return counts
    model = modelcache.get_model(model_version.pk, checkpoint_path(model_version), settings.ML_DEVICE or None)
    outcomes = _run_engine(model, todo, params)
    ready = []
    for (image, _, _), outcome in zip(todo, outcomes):
        if isinstance(outcome, BaseException):
            logger.warning("image %s failed analysis: %s", image.pk, type(outcome).__name__)
            results.mark_failed(image, outcome)
            counts["failed"] += 1
        else:
            ready.append((image, outcome))
    for key, value in _store(ready, model_version, phash, engine.describe(params)).items():
        counts[key] += value
    return counts


def _store(
    ready: list[tuple[Image, Any]], model_version: ModelVersion, phash: str, params: dict[str, Any]
) -> dict[str, int]:
    """Stores the batch's results in one transaction; if that fails, one by one to find the culprit."""
    counts = {"analysed": 0, "skipped": 0, "failed": 0}
    try:
        stored = results.save_analyses(ready, model_version, phash, params)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. an image deleted meanwhile, or another worker was faster
        logger.info("batch of %d not stored at once (%s); storing one by one", len(ready), type(exc).__name__)
        stored = None
    if stored is not None:
        counts["analysed"] = sum(stored)
        counts["skipped"] = len(stored) - counts["analysed"]
        return counts
    for image, outcome in ready:
        try:
            one = results.save_analysis(image, model_version, phash, params, outcome)
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. the image was deleted meanwhile: that image only
            logger.warning("image %s: results not stored: %s", image.pk, type(exc).__name__)
            results.mark_failed(image, exc)
            counts["failed"] += 1
            continue
        counts["analysed" if one else "skipped"] += 1
    return counts


def publish_progress(project_ids: set[int]) -> None:
    """``job.progress`` (analysed or failed / all images) and ``queue.updated`` per project; once
    all of a project's images are done, the images no round has ranked yet get ranked."""
    finished = Q(images__status__in=[ImageStatus.ANALYSED, ImageStatus.FAILED])
    rows = (
        Project.objects.filter(pk__in=project_ids)
        .annotate(total=Count("images"), done=Count("images", filter=finished))
        .values_list("pk", "done", "total")
    )
    for project_id, done, total in rows:
        events.send_now(project_id, "job.progress", {"job": "analysis", "done": done, "total": total})
        events.send_now(project_id, "queue.updated", {"reason": "images analysed"})
        if done == total:
            on_images_analysed(project_id)


@shared_task(
    name="workers.analysis.analyse_images",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=10,
)
def analyse_images(self: Any, image_ids: list[int], model_version_id: int | None = None) -> dict[str, int]:
    """Analyses a batch of images.

    Args:
        image_ids: ``Image`` ids; ids that no longer exist are ignored.
        model_version_id: the backbone; None = each image's project backbone (``resolve_backbone``).

    Returns:
        Counts: analysed (newly stored), skipped (already complete), failed, missing.
    """
    images = list(Image.objects.filter(pk__in=image_ids).select_related("project", "project__active_backbone"))
    totals = {"analysed": 0, "skipped": 0, "failed": 0, "missing": len(set(image_ids)) - len(images)}
    fixed = ModelVersion.objects.filter(pk=model_version_id).first() if model_version_id is not None else None
    groups: dict[int, list[Image]] = defaultdict(list)
    backbones: dict[int, ModelVersion] = {}
    for image in images:
        model_version = fixed or resolve_backbone(image.project)
        if model_version is None:
            results.mark_failed(image, "analysis failed: no backbone model is registered (see register_model)")
            totals["failed"] += 1
            continue
        backbones[model_version.pk] = model_version
        groups[model_version.pk].append(image)
    for mv_id, group in groups.items():
        for key, value in analyse_group(group, backbones[mv_id]).items():
            totals[key] += value
    publish_progress({image.project_id for image in images})
    logger.info("analysed batch of %d: %s", len(image_ids), totals)
    return totals
