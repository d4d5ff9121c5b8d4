"""The active-learning loop, web side: when to retrain, and the order images are handed out.

Retraining itself runs on the train queue (``workers.learning.retrain``, enqueued by name so the
web process never imports torch). A retrain is requested every ``retrain_every`` new labelled
images (project setting, default 20) and on demand by a lead.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from skelex_web.audit.services import record
from skelex_web.labeling.models import Annotation
from skelex_web.projects.models import Project
from skelex_web.studies.models import Image

from .models import ModelKind, ModelVersion

logger = logging.getLogger(__name__)

RETRAIN_TASK = "workers.learning.retrain"
# An image open in a viewer is not handed to anyone else for this long without activity.
CLAIM_TTL = timedelta(minutes=10)


def labelled_images(project: Project | int) -> QuerySet[Image]:
    """Images with at least one live, known head answer (what the heads can learn from)."""
    answers = Annotation.objects.filter(image=OuterRef("pk"), kind="head", is_deleted=False).exclude(value="unknown")
    return Image.objects.filter(project=project).filter(Exists(answers))


def latest_heads(project: Project | int) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, kind=ModelKind.HEADS).order_by("-created_at", "-id").first()


def learnable_images(project: Project | int) -> QuerySet[Image]:
    """Labelled images whose analysis is done: what a round can learn from now (a label on an image
    still queued waits for its embedding)."""
    return labelled_images(project).filter(status="analysed")


def _learned_by_last_round(project: Project | int) -> int:
    last = latest_heads(project)
    return int((last.metrics or {}).get("n_labelled", 0)) if last else 0


def labels_since_last_round(project: Project | int) -> int:
    return labelled_images(project).count() - _learned_by_last_round(project)


def request_retrain(project: Project, *, reason: str, rank_only: bool = False) -> bool:
    """Enqueues one retrain after commit; False when one is already pending for the project.

    ``rank_only``: the round may reuse the latest heads instead of training new ones when no label
    changed since (to rank newly analysed images, see :func:`on_images_analysed`).
    """
    kwargs: dict[str, Any] = {"reason": reason}
    if rank_only:
        kwargs["rank_only"] = True
    key = f"skelex:retrain-pending:{project.pk}"
    return enqueue_once(key, reason, RETRAIN_TASK, [project.pk], kwargs, timeout=15 * 60, what="a retrain")


def retrain_on_demand(project: Project, actor: Any) -> bool:
    """A lead's training round (the API's retrain and the project page's button): queued unless one
    is pending, audited (``heads.retrain``) either way."""
    queued = request_retrain(project, reason=f"on demand by {actor.get_username()}")
    record(actor=actor, action="heads.retrain", target=project, project=project, after={"queued": queued})
    return queued


def enqueue_once(
    key: str, value: str, task: str, args: list[Any], kwargs: dict[str, Any], *, timeout: int, what: str
) -> bool:
    """Sends ``task`` to the train queue when the transaction commits, unless ``key`` (a pending
    flag in the cache, kept ``timeout`` seconds or until the task clears it) is already set: then
    False. A broker that cannot be reached clears the flag, so the next request retries."""
    if not cache.add(key, value, timeout=timeout):
        return False

    def send() -> None:
        from skelex_web.celery import app

        try:
            app.send_task(task, args=args, kwargs=kwargs, queue="train")
        except Exception:
            cache.delete(key)
            logger.exception("could not enqueue %s (%s)", what, key)

    transaction.on_commit(send)
    return True


def retrain_finished(project_id: int) -> None:
    """Called by the task when a round ends, so the next round can be requested."""
    cache.delete(f"skelex:retrain-pending:{project_id}")


def on_label_saved(project_id: int) -> None:
    """Retrain automatically once ``retrain_every`` new images have been labelled."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return
    every = int(project.setting("retrain_every") or 20)
    if labels_since_last_round(project) >= every:
        request_retrain(project, reason=f"auto: {every} new labels")


def unlabelled(images: QuerySet[Image]) -> QuerySet[Image]:
    """Those of ``images`` with no live annotation of any kind: what the labelling queue holds."""
    return images.exclude(Exists(Annotation.objects.filter(image=OuterRef("pk"), is_deleted=False)))


def fresh_claim() -> Q:
    """Images open in a viewer now: claimed, and the claim renewed within ``CLAIM_TTL``."""
    return Q(claimed_by__isnull=False, claimed_at__gt=timezone.now() - CLAIM_TTL)


def learnable_since_last_round(project: Project | int) -> int:
    """:func:`learnable_images` less those the latest heads learned from."""
    return learnable_images(project).count() - _learned_by_last_round(project)


def heads_outdated(project: Project) -> str | None:
    """Why the latest heads no longer fit the project's embeddings, or None: they were trained on
    another backbone's or another readout's vectors (before ``Analyse again`` or a new backbone),
    and labelled images now have embeddings of the current kind."""
    from .models import Embedding
    from .pipeline import analysis_params, embedding_hash
    from .services import resolve_backbone

    last = latest_heads(project)
    backbone = resolve_backbone(project)
    if last is None or backbone is None:
        return None
    readout = embedding_hash(analysis_params())
    if (last.config or {}).get("backbone") == backbone.pk and (last.metrics or {}).get("readout") == readout:
        return None
    current = Embedding.objects.filter(image=OuterRef("pk"), model_version=backbone, readout=readout)
    if not labelled_images(project).filter(Exists(current)).exists():
        return None  # nothing labelled has been re-analysed yet: a round would learn the same
    return "embeddings updated: heads trained on the current analysis"


def on_images_analysed(project_id: int) -> bool:
    """Called when a project's analysis queue has drained. True when a round was requested.

    - Labels the heads have not learned yet (``retrain_every`` or more, e.g. a labelled dataset
      imported from the command line, whose labels were stored before their images were analysed):
      a full round.
    - Heads trained on embeddings the project no longer uses (after ``Analyse again`` or a new
      backbone): a full round on the current ones, instead of waiting for the next 20 labels.
    - Otherwise the analysed, unlabelled images no round has ranked yet are ranked. A new project
      gets its cold-start order (typical images first) without anyone pressing Retrain; images added
      later join the queue by the latest heads' uncertainty instead of waiting, unranked at its end.
    """
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return False
    every = int(project.setting("retrain_every") or 20)
    waiting = learnable_since_last_round(project)
    if waiting >= every:
        return request_retrain(project, reason=f"auto: {waiting} labels not learned yet")
    outdated = heads_outdated(project)
    if outdated:
        return request_retrain(project, reason=outdated)
    unranked = unlabelled(Image.objects.filter(project_id=project_id, status="analysed", al_priority__isnull=True))
    return unranked.exists() and request_retrain(project, reason="new images analysed", rank_only=True)


# -- the queue --------------------------------------------------------------------------------
def worklist(project: Project, user: Any) -> QuerySet[Image]:
    """Unlabelled analysed images in active-learning order (priority, then oldest), excluding
    those open in someone else's viewer."""
    return (
        unlabelled(Image.objects.filter(project=project).exclude(status="failed"))
        .exclude(fresh_claim() & ~Q(claimed_by=user))
        .order_by(F("al_priority").desc(nulls_last=True), "id")
    )


@transaction.atomic
def claim_next(project: Project, user: Any, *, skip: list[int] | None = None) -> Image | None:
    """Hands the next image of the queue to ``user`` and marks it as open in their viewer; their
    other claims are released. None when the queue has nothing for them (their claims are kept).

    The row lock (``select_for_update(skip_locked=True)`` on PostgreSQL) makes two annotators
    asking at the same moment get different images.
    """
    qs = worklist(project, user).exclude(pk__in=skip or [])
    image = qs.select_for_update(skip_locked=True, of=("self",)).first()
    if image is None:
        return None  # what the user has open stays theirs
    Image.objects.filter(project=project, claimed_by=user).exclude(pk=image.pk).update(claimed_by=None, claimed_at=None)
    image.claimed_by = user
    image.claimed_at = timezone.now()
    image.save(update_fields=["claimed_by", "claimed_at"])
    return image


def claim(image: Image, user: Any) -> datetime | None:
    """Marks ``image`` open in ``user``'s viewer unless someone else holds a fresh claim. Returns the
    claim's time, which names this claim for ``release`` (None: someone else holds the image)."""
    now = timezone.now()
    updated = (
        Image.objects.filter(pk=image.pk)
        .filter(Q(claimed_by__isnull=True) | Q(claimed_by=user) | Q(claimed_at__lte=now - CLAIM_TTL))
        .update(claimed_by=user, claimed_at=now)
    )
    return now if updated else None


def release(image: Image, user: Any, *, at: datetime | None = None) -> bool:
    """Ends ``user``'s claim on ``image`` (never anyone else's). With ``at``, only the claim made or
    renewed at that moment: a viewer leaving an image must not release the claim that the same
    user's next page (a reload, another tab) has made since. True when a claim was released."""
    rows = Image.objects.filter(pk=image.pk, claimed_by=user)
    if at is not None:
        rows = rows.filter(claimed_at=at)
    return bool(rows.update(claimed_by=None, claimed_at=None))


def open_elsewhere(images: list[int], user: Any) -> dict[int, str]:
    """``{image id: username}`` for those of ``images`` open in someone else's viewer (a fresh claim)."""
    rows = Image.objects.filter(fresh_claim(), pk__in=images).exclude(claimed_by=user)
    rows = rows.values_list("pk", "claimed_by__username")
    return {pk: name for pk, name in rows}


def learning_curve(project: Project) -> list[dict[str, Any]]:
    """One point per heads round: labels used and the cross-validated metrics per head."""
    rounds = ModelVersion.objects.filter(project=project, kind=ModelKind.HEADS).order_by("created_at", "id")
    out = []
    for mv in rounds:
        metrics = mv.metrics or {}
        out.append(
            {
                "model_version": mv.pk,
                "created_at": mv.created_at.isoformat(),
                "n_labelled": int(metrics.get("n_labelled", 0)),
                "reason": (mv.config or {}).get("reason", ""),
                "sampling": metrics.get("sampling", ""),  # the queue's ranking after this round
                "focus": metrics.get("focus", ""),  # the one finding it ranked for, if any
                "focus_waiting": metrics.get("focus_waiting", ""),  # chosen, but with too few answers to rank
                "heads": {
                    name: {k: v for k, v in m.items() if isinstance(v, int | float) or v is None}
                    for name, m in (metrics.get("heads") or {}).items()
                },
            }
        )
    return out
