"""``workers.learning.retrain``: one round of the active-learning loop for a project.

Train queue. Reads the project's embeddings (active backbone) and live head answers, trains the
multi-head model with k-fold metrics and temperature scaling (``workers.ml.heads_cv``), stores a
heads ``ModelVersion``, writes head-prediction suggestions for unlabelled images, and reorders
the worklist (``Image.al_priority`` / ``al_reason``) with the default hybrid strategy, or k-means
medoids when nothing is labelled yet. Requested every N new labels, by a lead, and (``rank_only``)
when a project's analysis queue drains with images no round has ranked: then, if no label was
added since the latest heads were trained, those heads score and pre-fill only the new images, the
rest of the queue is left as it is, and no new round is recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from skelex_web import events
from skelex_web.labeling.models import Annotation, Suggestion, SuggestionState
from skelex_web.learning.loop import fresh_claim, retrain_finished
from skelex_web.learning.models import Embedding, ModelKind, ModelVersion
from skelex_web.learning.services import resolve_backbone
from skelex_web.projects.models import IGNORE_FOCUS, Project
from skelex_web.studies.models import Image
from workers.ml import sampling
from workers.ml.heads import HeadsModel, Schema, encode_answers, learnable_heads, suggestions
from workers.ml.heads_cv import bootstrap_ensemble, fit_heads

from . import engine

logger = logging.getLogger(__name__)

# How many images a round puts at the head of the queue (the rest are ordered by uncertainty).
ROUND_BUDGET = 20


def _answers(project: Project, image_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Live head answers per image; reviewed answers win, then the most recent."""
    rows = (
        Annotation.objects.filter(project=project, kind="head", is_deleted=False, image_id__in=image_ids)
        .order_by("reviewed", "updated_at", "id")
        .values_list("image_id", "head", "value")
    )
    out: dict[int, dict[str, Any]] = defaultdict(dict)
    for image_id, head, value in rows:
        out[image_id][head] = value  # later rows (reviewed, newer) overwrite earlier ones
    return out


def _one_readout(
    rows: list[tuple[Any, ...]], current: str, labelled: set[int] | frozenset[int] = frozenset()
) -> tuple[list[tuple[Any, ...]], int]:
    """The rows of one embedding readout, and how many were left out.

    Rows are ``(image_id, vector, body_part, readout)``. After the embedding setting changes
    (``pipeline.DEFAULT_PARAMS``: pooling, scales, preprocessing), images are re-analysed one batch at
    a time (labelled ones first, ``services.outdated_images``); until then a project holds vectors of
    two readouts, which no model can be trained on together, even when they have the same length.
    The readout with the most ``labelled`` image ids wins, since those are what the heads learn from;
    on a tie the current setting's, then the one with more images. The rest are reported. Vectors
    stored before readouts were recorded (readout "") count as one readout per length.
    """
    groups = Counter((r[3], len(r[1])) for r in rows)
    if len(groups) == 1:
        return rows, 0
    taught = Counter((r[3], len(r[1])) for r in rows if r[0] in labelled)
    key = max(groups, key=lambda k: (taught[k], k[0] == current, groups[k], k[1]))
    kept = [r for r in rows if (r[3], len(r[1])) == key]
    return kept, len(rows) - len(kept)


def _strategy(project: Project) -> str:
    """The project's ranking (``settings["sampling"]``); an unknown value (set before it was
    checked) falls back to the default hybrid, with a warning, rather than failing the round."""
    strategy = str(project.setting("sampling") or "hybrid")
    if strategy not in sampling.STRATEGIES or strategy == "cold_start":
        logger.warning("project %s: unknown sampling %r, using hybrid", project.pk, strategy)
        return "hybrid"
    return strategy


def _ranked(project: Project, strategy: str, schema: Schema, learnable: list[str], summary: dict[str, Any]) -> Schema:
    """The heads a round ranks by: the project's focus finding (``settings["focus"]``, a lead's
    choice to label for one finding first) once it has two different answers, else every learnable
    head; ``summary`` says which (``focus``, or ``focus_waiting`` while the focus cannot rank yet).
    Rankings that ignore the model's answers (kcenter, random) record no focus."""
    focus = str(project.setting("focus") or "") if strategy not in IGNORE_FOCUS else ""
    names = learnable
    if focus and focus in learnable:
        names = [focus]
        summary["focus"] = focus
    elif focus:
        summary["focus_waiting"] = focus
    return Schema(tuple(h for h in schema.heads if h.name in names))


def _json_safe(metrics: dict[str, Any]) -> dict[str, Any]:
    """NaN/inf (e.g. AUROC of a head with one class so far) become None: JSON has no NaN."""
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in metrics.items()}


def _is_known(value: Any) -> bool:
    return value not in (None, "", "unknown")


@shared_task(name="workers.learning.retrain", acks_late=True, reject_on_worker_lost=True)
def retrain(project_id: int, reason: str = "on demand", seed: int = 0, rank_only: bool = False) -> dict[str, Any]:
    """Runs one round; returns a summary (also stored on the new heads ModelVersion).

    ``rank_only`` (newly analysed images to rank): when the labelled images are those the latest
    heads were trained on, those heads score the pool and no new round is recorded.
    """
    try:
        return _retrain(project_id, reason, seed, rank_only)
    finally:
        retrain_finished(project_id)


def _labels_digest(ids: list[int], per_image: list[dict[str, Any]], labelled: list[int]) -> str:
    """A fingerprint of the answers the heads learn from: an edited answer, or one labelled image
    swapped for another, changes it even when the number of labelled images stays the same."""
    payload = json.dumps([[ids[k], per_image[k]] for k in labelled], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _reusable_heads(
    project: Project, labels_digest: str, backbone_id: int | None, readout: str, dim: int
) -> tuple[ModelVersion, HeadsModel] | None:
    """The latest heads if they learned exactly these answers from this backbone's embeddings of
    this readout (and size ``dim``)."""
    last = ModelVersion.objects.filter(project=project, kind=ModelKind.HEADS).order_by("-created_at", "-id").first()
    if last is None or (last.metrics or {}).get("labels_digest") != labels_digest:
        return None
    if (last.config or {}).get("backbone") != backbone_id:  # another backbone's features, maybe of the same size
        return None
    if (last.metrics or {}).get("readout") != readout:  # the same images re-embedded another way
        return None
    try:
        model = HeadsModel.load(last.checkpoint)
        model.predict_proba(np.zeros((1, dim), dtype=np.float32))
    except Exception as exc:  # noqa: BLE001 - missing file, other embedding size: train anew instead
        logger.info("project %s: latest heads not reusable (%s); training anew", project.pk, type(exc).__name__)
        return None
    return last, model


def project_rows(project: Project, backbone: Any) -> tuple[list[tuple[Any, ...]], dict[int, dict[str, Any]], int]:
    """What a round learns from: the rows ``(image_id, vector, body_part, readout)`` of the
    backbone's embeddings of one readout (:func:`_one_readout`; failed images left out), the live
    answers per image id, and how many embeddings of another readout were left out."""
    rows = list(
        Embedding.objects.filter(image__project=project, model_version=backbone)
        .exclude(image__status="failed")
        .order_by("image_id")
        .values_list("image_id", "vector", "image__body_part", "readout")
    )
    answers = _answers(project, [r[0] for r in rows])
    taught = {i for i, a in answers.items() if is_labelled(a)}
    rows, stale = _one_readout(rows, engine.embedding_hash(engine.analysis_params()), taught)
    return rows, answers, stale


def stack_vectors(rows: list[tuple[Any, ...]]) -> np.ndarray:
    """[N, D] float32 from :func:`project_rows`' rows (float16 little-endian bytes, as stored)."""
    return np.stack([np.frombuffer(bytes(r[1]), dtype="<f2").astype(np.float32) for r in rows])


def is_labelled(answers: dict[str, Any]) -> bool:
    """At least one known answer: an image the heads learn from."""
    return any(_is_known(v) for v in answers.values())


def _retrain(project_id: int, reason: str, seed: int, rank_only: bool = False) -> dict[str, Any]:
    project = Project.objects.get(pk=project_id)
    backbone = resolve_backbone(project)
    schema = Schema.from_dict({"heads": project.label_schema.get("heads", [])})
    rows, answers, stale = project_rows(project, backbone)
    if not rows:
        return {"status": "skipped", "reason": "no embeddings yet: analyse images first"}
    ids = [r[0] for r in rows]
    emb = stack_vectors(rows)
    per_image = [answers.get(i, {}) for i in ids]
    labelled = [k for k, a in enumerate(per_image) if is_labelled(a)]
    position = {image_id: k for k, image_id in enumerate(ids)}
    any_label = {
        position[i]
        for i in Annotation.objects.filter(project=project, is_deleted=False, image_id__in=ids).values_list(
            "image_id", flat=True
        )
    }
    # Open in a viewer now: not put at the head of anyone else's queue.
    claimed = sorted(position[i] for i in Image.objects.filter(fresh_claim(), pk__in=ids).values_list("id", flat=True))
    digest = _labels_digest(ids, per_image, labelled)
    backbone_id = backbone.pk if backbone else None
    readout = str(rows[0][3])  # the one kind of embedding this round uses
    reused = _reusable_heads(project, digest, backbone_id, readout, emb.shape[1]) if (rank_only and labelled) else None
    # What the project page's progress bar calls it: no heads are trained with no labels or when
    # the latest heads are reused; the queue is only ordered.
    job = "retrain" if labelled and reused is None else "ranking"
    events.publish(project.pk, "job.progress", {"job": job, "done": 0, "total": 3})

    heads_mv = None
    strategy = _strategy(project)  # recorded with the round's heads, so the rounds table can show it
    summary: dict[str, Any] = {
        "n_images": len(ids), "n_labelled": len(labelled), "labels_digest": digest, "reason": reason,
        "sampling": strategy, "readout": readout,
    }  # fmt: skip
    if stale:
        summary["left_out"] = (
            f"{stale} images have embeddings of another kind (analysed with an earlier embedding "
            "setting); re-analyse them to include them (manage.py reanalyse)"
        )
    ranked = schema
    if labelled:
        targets = encode_answers(schema, per_image)
        # Decided before the heads' ModelVersion is written, so the round records what it ranked by.
        ranked = _ranked(project, strategy, schema, learnable_heads(schema, targets), summary)
        if reused is not None:
            heads_mv, model = reused
            summary["reused"] = heads_mv.pk
            summary["heads"] = (heads_mv.metrics or {}).get("heads", {})
        else:
            model = fit_heads(emb, targets, schema)
            summary["heads"] = {name: _json_safe(m) for name, m in model.metrics.items()}
            out_dir = Path(settings.MEDIA_ROOT) / "heads" / str(project.pk)
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"heads-{timezone.now():%Y%m%d-%H%M%S-%f}.safetensors"
            model.save(path)
            heads_mv = ModelVersion.objects.create(
                kind=ModelKind.HEADS,
                name=f"{project.slug} heads round {ModelVersion.objects.filter(project=project).count() + 1}",
                project=project,
                checkpoint=str(path),
                config={"backbone": backbone_id, "reason": reason, "schema": schema.to_dict()},
                metrics=summary,
            )
        probs = model.predict_proba(emb)
        pool_idx = [k for k in range(len(ids)) if k not in any_label]
        # A head whose answers are all one class (or that has none) learned a prior, not a finding:
        # it neither suggests answers nor ranks images (its tiny entropies would still rank).
        learnable = learnable_heads(schema, targets)
        summary["heads_ranked"] = learnable
        if reused is not None and learnable:
            # Same heads as the last round: only the images it never saw join the queue, by their
            # uncertainty; the round's picks, suggestions and order stay as annotators have them.
            unranked = set(Image.objects.filter(project=project, al_priority__isnull=True).values_list("id", flat=True))
            fresh_idx = [k for k in pool_idx if ids[k] in unranked]
            _write_head_suggestions(project, heads_mv, schema, probs, ids, fresh_idx, learnable, only_these=True)
            scores = sampling.uncertainty(ranked, probs)
            _reorder(
                [ids[k] for k in fresh_idx], set(), [], scores[fresh_idx],
                {j: sampling.explain_uncertain(ranked, probs, k) for j, k in enumerate(fresh_idx)},
            )  # fmt: skip
            summary.update(picked=0, ranked_new=len(fresh_idx), model_version=heads_mv.pk)
            events.publish(project.pk, "queue.updated", {"reason": f"{len(fresh_idx)} new images ranked"})
            events.publish(project.pk, "job.progress", {"job": job, "done": 3, "total": 3})
            logger.info(
                "rank new images of project %s: %s", project.pk, {k: v for k, v in summary.items() if k != "heads"}
            )
            return summary
        _write_head_suggestions(project, heads_mv, schema, probs, ids, pool_idx, learnable)
    else:
        learnable = []
    if learnable:
        members = None
        if strategy == "ensemble":
            ensemble = bootstrap_ensemble(emb, targets, schema, members=5, seed=seed)
            members = [{h.name: p[h.name] for h in ranked.heads} for p in (m.predict_proba(emb) for m in ensemble)]
        picks = sampling.select(
            strategy,
            ROUND_BUDGET,
            n=len(ids),
            labelled=sorted(any_label),
            exclude=claimed,
            embeddings=emb,
            schema=ranked,
            probs=probs,
            member_probs=members,
            seed=seed,
        )
        scores = sampling.uncertainty(ranked, probs)
        reasons = {k: sampling.explain_uncertain(ranked, probs, k) for k in pool_idx}
    else:
        strata = [r[2] or "unknown" for r in rows]
        picks = sampling.select(
            "cold_start", ROUND_BUDGET, n=len(ids), labelled=sorted(any_label), exclude=claimed, embeddings=emb,
            strata=strata, seed=seed,
        )  # fmt: skip
        scores = np.zeros(len(ids))
        later = (
            "after this round's picks: ranked once some finding has two different answers"
            if labelled
            else "after this round's picks: ranked once the first labels are in"
        )
        reasons = dict.fromkeys(range(len(ids)), later)
    events.publish(project.pk, "job.progress", {"job": job, "done": 2, "total": 3})
    _reorder(ids, any_label, picks, scores, reasons)
    summary["picked"] = len(picks)
    events.publish(project.pk, "queue.updated", {"reason": f"retrained ({reason})"})
    events.publish(project.pk, "job.progress", {"job": job, "done": 3, "total": 3})
    summary["model_version"] = heads_mv.pk if heads_mv else None
    logger.info("retrain project %s: %s", project.pk, {k: v for k, v in summary.items() if k != "heads"})
    return summary


@transaction.atomic
def _write_head_suggestions(
    project: Project,
    mv: ModelVersion,
    schema: Schema,
    probs: dict[str, np.ndarray],
    ids: list[int],
    pool: list[int],
    heads: list[str],
    only_these: bool = False,
) -> None:
    """Pre-filled answers of ``heads`` for unlabelled images; older pending head suggestions are
    replaced (``only_these``: those of the ``pool`` images only)."""
    stale = Suggestion.objects.filter(project=project, kind="head", state=SuggestionState.PENDING)
    if only_these:
        stale = stale.filter(image_id__in=[ids[k] for k in pool])
    stale.delete()
    rows = suggestions(schema, {k: v[pool] for k, v in probs.items()}, heads=heads)
    new = [
        Suggestion(
            project=project,
            image_id=ids[k],
            kind="head",
            head=head,
            value=value,
            score=max(value["probabilities"].values()),
            source="heads",
            model_version=mv,
            rank=0,
        )  # fmt: skip
        for k, per_head in zip(pool, rows)
        for head, value in per_head.items()
    ]
    Suggestion.objects.bulk_create(new, batch_size=500)


@transaction.atomic
def _reorder(
    ids: list[int], labelled: set[int], picks: list[sampling.Pick], scores: np.ndarray, reasons: dict[int, str]
) -> None:
    """Picked images first in pick order (priority above 1), the rest of the pool by uncertainty."""
    picked = {p.index: (len(picks) - rank, p.reason) for rank, p in enumerate(picks)}
    images = list(Image.objects.filter(pk__in=ids).only("id", "al_priority", "al_reason"))
    position = {image_id: k for k, image_id in enumerate(ids)}
    for image in images:
        k = position[image.pk]
        if k in labelled:
            image.al_priority, image.al_reason = None, ""
        elif k in picked:
            image.al_priority = 1.0 + picked[k][0]
            image.al_reason = picked[k][1][:200]
        else:
            image.al_priority = float(min(max(scores[k], 0.0), 1.0))
            image.al_reason = reasons.get(k, "")[:200]
    Image.objects.bulk_update(images, ["al_priority", "al_reason"], batch_size=500)
