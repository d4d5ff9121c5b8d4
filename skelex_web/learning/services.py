"""Model registry: registering backbones, choosing a project's backbone, re-analysis on activation.

A backbone checkpoint is our ``X.safetensors`` + ``X.json`` pair (see ``workers/ml/checkpoint.py``).
Registering copies both into ``MEDIA_ROOT/models/`` under a content-hash name, because workers on
other machines read checkpoints from the shared media storage, not from whoever registered them.
The JSON sidecar is read here as plain JSON: the web process never imports torch.

A project analyses its images with its ``active_backbone``; a project without one uses the
default backbone (the newest one registered as default, normally the demo checkpoint).

Analysis is queued here too (:func:`queue_images`), and images whose analysis message was lost
(broker restarted empty, a task that gave up its retries, a process killed between commit and
send) are found and queued again by :func:`requeue_stuck`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from skelex_web import broker, events
from skelex_web.audit.services import record
from skelex_web.projects.models import Project
from skelex_web.recovery import format_ids
from skelex_web.studies.models import Image, ImageStatus

from .models import ModelKind, ModelVersion

ANALYSIS_TASK = "workers.analysis.analyse_images"
MODELS_DIR = "models"
# States an image passes on its way to analysed/failed; one that stays in them has lost its message.
WAITING_STATES = (ImageStatus.INGESTED, ImageStatus.QUEUED, ImageStatus.ANALYSING)

logger = logging.getLogger(__name__)


class RegistryError(ValueError):
    """A checkpoint cannot be registered (missing files, not our format)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_checkpoint_sidecar(checkpoint: str | Path) -> dict[str, Any]:
    """The JSON sidecar of ``X.safetensors`` (``X.json``), checked to be a skelex-mae checkpoint."""
    weights = Path(checkpoint)
    side = weights.with_suffix(".json")
    if not weights.is_file():
        raise RegistryError(f"checkpoint weights {weights} not found")
    if weights.suffix != ".safetensors":
        raise RegistryError(
            f"{weights} is not a checkpoint: expected a .safetensors file (or --hf for a Hugging Face folder)"
        )
    if not side.is_file():
        raise RegistryError(f"checkpoint config {side} not found beside the weights")
    try:
        data = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RegistryError(f"checkpoint config {side} is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and "format" not in data and "variant" in data and "embed_dim" in data:
        # A bare model config, as pretraining runs write it (provenance optionally under "meta").
        meta = data.pop("meta", {})
        return {"format": "skelex-mae", "format_version": 0, "dtype": "", "config": data, "metadata": meta or {}}
    if not isinstance(data, dict) or data.get("format") != "skelex-mae" or not isinstance(data.get("config"), dict):
        raise RegistryError(f"{side} is not a skelex-mae checkpoint config")
    return data


def checkpoint_path(model_version: ModelVersion) -> Path:
    """Where a worker finds the weights: absolute paths as stored, relative ones under MEDIA_ROOT."""
    path = Path(model_version.checkpoint)
    return path if path.is_absolute() else Path(settings.MEDIA_ROOT) / path


@transaction.atomic
def register_backbone(
    *,
    name: str,
    checkpoint: str | Path,
    actor: Any = None,
    metrics: dict[str, Any] | None = None,
    default: bool = False,
) -> ModelVersion:
    """Registers a backbone checkpoint; the same weights registered twice return the same row.

    Args:
        name: shown in the UI and the API.
        checkpoint: the ``.safetensors`` file (its ``.json`` sidecar beside it).
        actor: the user registering it (audit), or None for commands.
        metrics: evaluation numbers to show beside the model (e.g. the localization report).
        default: make it the backbone of projects that have none active.
    """
    source = Path(checkpoint).resolve()
    sidecar = read_checkpoint_sidecar(source)
    sha = _sha256(source)
    existing = ModelVersion.objects.filter(kind=ModelKind.BACKBONE, config__sha256=sha).first()
    if existing is not None:
        changed = False
        if default and not existing.config.get("default"):
            existing.config = {**existing.config, "default": True}
            changed = True
        if metrics:
            existing.metrics = {**existing.metrics, **metrics}
            changed = True
        if changed:
            existing.save(update_fields=["config", "metrics"])
        return existing
    rel = Path(MODELS_DIR) / f"{sha[:16]}-{source.stem}.safetensors"
    target = Path(settings.MEDIA_ROOT) / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file():
        # Copy to a temporary name first so a worker never sees half a file.
        tmp = target.with_suffix(".partial")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    target.with_suffix(".json").write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    model_version = ModelVersion.objects.create(
        kind=ModelKind.BACKBONE,
        name=name,
        checkpoint=str(rel),
        config={
            "sha256": sha,
            "default": bool(default),
            "model": sidecar["config"],
            "dtype": sidecar.get("dtype", ""),
            "metadata": sidecar.get("metadata", {}),
        },
        metrics=metrics or {},
    )
    record(actor=actor, action="model.register", target=model_version, after={"name": name, "sha256": sha})
    return model_version


def default_backbone() -> ModelVersion | None:
    """The newest backbone registered as default, else the newest backbone, else None."""
    backbones = ModelVersion.objects.filter(kind=ModelKind.BACKBONE).order_by("-created_at", "-id")
    return backbones.filter(config__default=True).first() or backbones.first()


def resolve_backbone(project: Project) -> ModelVersion | None:
    """The backbone that analyses ``project``'s images."""
    if project.active_backbone_id is not None:
        return project.active_backbone
    return default_backbone()


def queue_images(image_ids: Iterable[int], model_version_id: int | None = None) -> int:
    """Marks images queued and enqueues analysis by task name, in batches, when the transaction commits.

    Args:
        image_ids: images to (re-)analyse, in the order to send them.
        model_version_id: the backbone to use; None = each image's project backbone at run time.

    Returns:
        The number of images queued.
    """
    from skelex_web.celery import app

    ids = list(dict.fromkeys(int(i) for i in image_ids))  # the caller's order: the first are analysed first
    if not ids:
        return 0
    # updated_at says since when the image waits (requeue_stuck reads it); update() does not set it.
    Image.objects.filter(id__in=ids).update(status=ImageStatus.QUEUED, error_message="", updated_at=timezone.now())
    size = max(1, int(settings.ANALYSIS_BATCH_SIZE))
    batches = [ids[i : i + size] for i in range(0, len(ids), size)]

    def send() -> None:
        for batch in batches:
            app.send_task(ANALYSIS_TASK, args=[batch], kwargs={"model_version_id": model_version_id})

    transaction.on_commit(send)
    return len(ids)


@dataclass
class StuckSweep:
    """What one :func:`requeue_stuck` found (image ids) and did."""

    older_than: timedelta
    stuck: list[int]  # ingested, queued or analysing, unchanged for longer than older_than
    in_broker: list[int]  # of those, still held by the broker (waiting, or at a worker): left alone
    requeued: list[int]  # the others, queued again (on a dry run: would be)
    broker_checked: bool  # False: the broker cannot be read, the stuck images were judged on age alone
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would re-queue" if self.dry_run else "re-queued"
        age = format_duration(self.older_than)
        lines = [
            f"{len(self.stuck)} image(s) ingested, queued or analysing for more than {age}",
            f"{len(self.in_broker)} still held by the broker (waiting or at a worker): left alone"
            if self.broker_checked
            else "broker not inspected (not Redis): images still waiting in it may be sent twice (harmless)",
            f"{verb} {len(self.requeued)} image(s)" + (f": {format_ids(self.requeued)}" if self.requeued else ""),
        ]
        return "\n".join(lines)


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"30m"``, ``"2h"``, ``"1d"`` or plain seconds (``"1800"``) -> timedelta."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    scale = units.get(value[-1:], 0)
    number = value[:-1] if scale else value
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 30m, 2h, 1d)") from None
    if seconds < 0:
        raise ValueError(f"not a duration: {text!r} (negative)")
    return timedelta(seconds=seconds)


def format_duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def requeue_stuck(older_than: timedelta, *, dry_run: bool = False, broker_url: str | None = None) -> StuckSweep:
    """Queues again the images whose analysis message was lost.

    An image counts as lost when it has been ``ingested``, ``queued`` or ``analysing`` for longer than
    ``older_than`` (its ``updated_at``) and the broker holds no analysis message naming it, neither
    waiting in the queue nor delivered to a worker (a dead worker's unacknowledged batch comes back
    by itself after the visibility timeout). Safe to run at any time and from several places at
    once: analysis is idempotent (a batch that finds its results stored changes nothing), and rows
    locked by a concurrent sweep are skipped. Re-queued images use their project's backbone.

    Args:
        older_than: how long an image may wait before it counts as stuck.
        dry_run: report only; change and send nothing.
        broker_url: the broker to read; None = ``CELERY_BROKER_URL``.

    Raises:
        kombu / redis connection errors: the broker is unreachable (nothing is changed then).
    """
    cutoff = timezone.now() - older_than
    with transaction.atomic():
        stuck = list(
            Image.objects.select_for_update(skip_locked=True)
            .filter(status__in=WAITING_STATES, updated_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        calls = broker.pending_calls(ANALYSIS_TASK, broker_url) if stuck else []
        held = None if calls is None else {int(i) for args, _ in calls if args for i in args[0]}
        result = StuckSweep(
            older_than=older_than,
            stuck=stuck,
            in_broker=[i for i in stuck if held is not None and i in held],
            requeued=[i for i in stuck if held is None or i not in held],
            broker_checked=held is not None,
            dry_run=dry_run,
        )
        if result.requeued and not dry_run:
            queue_images(result.requeued)  # sent when this transaction commits
    if result.requeued:
        logger.warning("stuck-image sweep: %s", result.summary().replace("\n", "; "))
    return result


@transaction.atomic
def activate_backbone(project: Project, model_version: ModelVersion, *, actor: Any = None) -> int:
    """Makes ``model_version`` the project's backbone and re-analyses all its images with it.

    Progress is visible as ``job.progress`` events (job ``analysis``) while the batches complete.

    Returns:
        The number of images queued for re-analysis.
    """
    if model_version.kind != ModelKind.BACKBONE:
        raise RegistryError(f"model version {model_version.pk} is a {model_version.kind}, not a backbone")
    before = {"active_backbone": project.active_backbone_id}
    project.active_backbone = model_version
    project.save(update_fields=["active_backbone"])
    record(
        actor=actor,
        action="project.activate_backbone",
        target=project,
        project=project,
        before=before,
        after={"active_backbone": model_version.pk},
    )
    queued = queue_images(labelled_first(Image.objects.filter(project=project)), model_version.pk)
    events.publish(project.pk, "job.progress", {"job": "analysis", "done": 0, "total": queued})
    events.publish(project.pk, "queue.updated", {"reason": "backbone activated"})
    return queued


def outdated(project: Project) -> Any:
    """Analysed images of ``project`` whose stored analysis used other settings than the pipeline's
    current ones (``pipeline.DEFAULT_PARAMS``, e.g. a new embedding readout) or another backbone
    than the project's, as a queryset (the project page counts it on every refresh)."""
    from django.db.models import Exists, OuterRef

    from .models import ErrorMap
    from .pipeline import analysis_params, params_hash

    backbone = resolve_backbone(project)
    if backbone is None:
        return Image.objects.none()
    current = ErrorMap.objects.filter(
        image=OuterRef("pk"), model_version=backbone, params_hash=params_hash(analysis_params())
    )
    return Image.objects.filter(project=project, status=ImageStatus.ANALYSED).exclude(Exists(current))


def labelled_first(images: Any) -> list[int]:
    """The ids of ``images`` (a queryset) in the order a re-analysis queues them: images with a live
    annotation first, so that in a long re-analysis the heads' training set moves to the new
    embeddings early (a round trains on the readout that holds the most labelled images), then the
    rest, each part by id."""
    from django.db.models import Exists, OuterRef

    from skelex_web.labeling.models import Annotation

    answered = Exists(Annotation.objects.filter(image=OuterRef("pk"), is_deleted=False))
    return list(images.annotate(answered=answered).order_by("-answered", "pk").values_list("pk", flat=True))


def outdated_images(project: Project) -> list[int]:
    """The ids of :func:`outdated` in the order ``manage.py reanalyse`` queues them again
    (:func:`labelled_first`)."""
    return labelled_first(outdated(project))


def reanalyse_outdated(project: Project, *, actor: Any = None) -> int:
    """Queues :func:`outdated_images` for analysis with today's settings (sent when the transaction
    commits); returns how many, audited (``images.reanalyse``) when there were any. ``manage.py
    reanalyse``, ``make demo`` (``actor`` None) and the project page's **Analyse again** all do it
    this way."""
    with transaction.atomic():
        ids = outdated_images(project)
        if ids:
            record(actor=actor, action="images.reanalyse", target=project, project=project, after={"images": len(ids)})
        return queue_images(ids)


# -- which ranking for this project (workers/tasks/compare_rankings.py) -------------------------
COMPARE_TASK = "workers.learning.compare_rankings"
COMPARE_MIN_LABELLED = 100  # analysed, labelled images a comparison needs (30% are held out to test on)


def comparison_dir(project: Project | int) -> Path:
    """Where the latest ranking comparison of a project is kept (``summary.json``, ``report.json``,
    ``report.png``), under ``MEDIA_ROOT``."""
    pk = project if isinstance(project, int) else project.pk
    return Path(settings.MEDIA_ROOT) / "rankings" / str(pk)


def _comparison_key(project_id: int) -> str:
    """The cache flag of a project's queued or running comparison."""
    return f"skelex:compare-pending:{project_id}"


def request_comparison(project: Project, *, requested_by: str = "") -> bool:
    """Enqueues a ranking comparison on the train queue after commit; False when one is already
    queued or running for the project (the task clears the flag when it ends)."""
    from .loop import enqueue_once

    kwargs = {"requested_by": requested_by}
    return enqueue_once(
        _comparison_key(project.pk),
        requested_by or "?",
        COMPARE_TASK,
        [project.pk],
        kwargs,
        timeout=3600,
        what="a comparison",
    )


def compare_on_demand(project: Project, actor: Any) -> bool:
    """A lead's **Compare rankings** (page or API): :func:`request_comparison`, audited
    (``rankings.compare``) whether or not one was already queued."""
    queued = request_comparison(project, requested_by=actor.get_username())
    record(actor=actor, action="rankings.compare", target=project, project=project, after={"queued": queued})
    return queued


def comparison_finished(project_id: int) -> None:
    from django.core.cache import cache

    cache.delete(_comparison_key(project_id))


def comparison_pending(project: Project) -> bool:
    from django.core.cache import cache

    return cache.get(_comparison_key(project.pk)) is not None


def latest_comparison(project: Project) -> dict[str, Any] | None:
    """The summary of the project's latest ranking comparison (what the project page shows), or
    None when none has run; an unreadable file reads as none."""
    path = comparison_dir(project) / "summary.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    data["has_plot"] = data.get("status") == "done" and (path.parent / "report.png").is_file()
    return data
