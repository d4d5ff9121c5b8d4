"""Storing a batch's analyses: error-map PNGs, ErrorMap, Embedding, Suggestion rows, status, events.

A batch is written in one transaction with a few statements for all its images (``save_analyses``),
so a worker pays one commit per batch, not a dozen round trips per image. The ``ErrorMap`` row
(unique per image, model version and parameters) is the marker that an image's analysis is
complete: a redelivered task that finds it changes nothing for that image. If the batch cannot be
stored at once (an image deleted meanwhile, another worker faster), the task stores its images one
by one (``save_analysis``) so only the culprit fails. Files are written before the rows commit,
under a deterministic name, so a crash between the two leaves at most a file that the next attempt
overwrites, never a row pointing at nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from skelex_web import events
from skelex_web.labeling.models import AnnotationKind, Suggestion, SuggestionState
from skelex_web.learning.models import Embedding, ErrorMap, ModelVersion
from skelex_web.studies.models import Image, ImageStatus
from workers.imaging.output import encode_png8

from .engine import Analysis, embedding_hash

SOURCE = "errormap"
# Heat-map encoding: 8-bit grey, linear, 255 = the map's 99.5th percentile over the image.
HEATMAP_PERCENTILE = 99.5
MAX_ERROR_CHARS = 500


def heatmap_png(error_map: np.ndarray) -> tuple[bytes, float]:
    """[H, W] float map -> (8-bit grayscale PNG bytes, the error value that 255 stands for)."""
    heat = np.nan_to_num(np.asarray(error_map, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)  # a copy
    step = max(1, heat.size // 1_000_000)  # percentile on a subsample: same answer, a tenth the time
    scale = float(np.percentile(heat.reshape(-1)[::step], HEATMAP_PERCENTILE)) if heat.size else 0.0
    if scale <= 0:
        scale = float(heat.max()) if heat.size and heat.max() > 0 else 1.0
    # In place: a radiograph-sized map is 6-7 million values, and each temporary costs tens of ms.
    heat *= np.float32(255.0 / scale)
    np.clip(heat, 0, 255, out=heat)
    np.rint(heat, out=heat)
    return encode_png8(heat.astype(np.uint8)), scale


def _write_atomic(name: str, data: bytes) -> None:
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def box_label(image: Image) -> str:
    """The label given to error-map boxes: a generic finding the project's schema offers."""
    labels = list((image.project.label_schema or {}).get("box_labels", []))
    for preferred in ("lesion", "abnormality", "finding"):
        if preferred in labels:
            return preferred
    return labels[0] if labels else ""


def readable_error(exc: BaseException) -> str:
    """A message for ``Image.error_message``: no file system paths (they may name patients)."""
    # Imaging errors already read "image <id>: <problem>"; others get their type for context.
    text = str(exc) if type(exc).__name__ == "ImagingError" else f"{type(exc).__name__}: {exc}"
    text = re.sub(r"(?:[A-Za-z]:)?[/\\][^\s:'\"]+", "<path>", text)
    return f"analysis failed: {text}"[:MAX_ERROR_CHARS]


def is_complete(image_id: int, model_version_id: int, phash: str) -> bool:
    return ErrorMap.objects.filter(image_id=image_id, model_version_id=model_version_id, params_hash=phash).exists()


def mark_analysed(image: Image) -> None:
    """An already complete image seen again (redelivery): make sure its status says so."""
    Image.objects.filter(pk=image.pk).exclude(status=ImageStatus.ANALYSED).update(
        status=ImageStatus.ANALYSED, error_message=""
    )


def mark_failed(image: Image, exc: BaseException | str) -> str:
    message = exc if isinstance(exc, str) else readable_error(exc)
    Image.objects.filter(pk=image.pk).update(status=ImageStatus.FAILED, error_message=message)
    events.publish(
        image.project_id,
        "image.analysed",
        {
            "image": image.pk,
            "status": ImageStatus.FAILED.value,
            "image_score": None,
            "suggestions": 0,
            "error": message,
        },
    )
    return message


def completed(image_ids: list[int], model_version_id: int, phash: str) -> set[int]:
    """The ids among ``image_ids`` whose analysis with this backbone and these parameters is stored."""
    return set(
        ErrorMap.objects.filter(
            image_id__in=image_ids, model_version_id=model_version_id, params_hash=phash
        ).values_list("image_id", flat=True)
    )


def errormap_name(image_id: int, model_version_id: int, phash: str) -> str:
    return f"errormaps/{image_id}-{model_version_id}-{phash}.png"


def _rows(
    image: Image, model_version: ModelVersion, phash: str, params: dict[str, Any], result: Analysis, scale: float
) -> tuple[ErrorMap, Embedding, list[Suggestion]]:
    """The unsaved ErrorMap, Embedding and Suggestion rows of one image's analysis."""
    h, w = result.error_map.shape
    error_map = ErrorMap(
        image=image,
        model_version=model_version,
        params_hash=phash,
        params=params,
        file=errormap_name(image.pk, model_version.pk, phash),
        image_score=float(result.image_score),
        summary={
            "image_score": float(result.image_score),
            "encoding": "8-bit grey, linear, 255 = scale",
            "scale": scale,
            "max": float(np.nanmax(result.error_map)) if result.error_map.size else 0.0,
            "mean": float(np.nanmean(result.error_map)) if result.error_map.size else 0.0,
            "shape": [int(h), int(w)],
            "boxes": len(result.boxes),
        },
    )
    vector = np.asarray(result.embedding, dtype="<f2")
    embedding = Embedding(
        image=image,
        model_version=model_version,
        dim=int(vector.size),
        vector=vector.tobytes(),
        readout=embedding_hash(params),
    )
    label = box_label(image)
    suggestions = [
        Suggestion(
            image=image,
            project_id=image.project_id,
            model_version=model_version,
            params_hash=phash,
            source=SOURCE,
            head="",
            rank=rank,
            kind=AnnotationKind.BOX,
            label=label,
            x0=min(box["x0"], box["x1"]),
            y0=min(box["y0"], box["y1"]),
            x1=max(box["x0"], box["x1"]),
            y1=max(box["y0"], box["y1"]),
            score=float(box["score"]),
        )
        for rank, box in enumerate(result.boxes)
    ]
    return error_map, embedding, suggestions


def _announce(stored: list[tuple[Image, Analysis]], model_version: ModelVersion) -> None:
    """``image.analysed`` then ``suggestions.ready`` for every stored image, on commit, one hand-over
    to the event loop per project and type instead of two per image."""
    by_project: dict[int, list[tuple[Image, Analysis]]] = {}
    for image, result in stored:
        by_project.setdefault(image.project_id, []).append((image, result))
    for project_id, items in by_project.items():
        analysed = [
            {
                "image": image.pk,
                "status": ImageStatus.ANALYSED.value,
                "image_score": float(result.image_score),
                "suggestions": len(result.boxes),
                "error": "",
            }
            for image, result in items
        ]
        ready = [
            {"image": image.pk, "count": len(result.boxes), "model_version": model_version.pk}
            for image, result in items
        ]
        events.publish_many(project_id, "image.analysed", analysed)
        events.publish_many(project_id, "suggestions.ready", ready)


def save_analyses(
    items: list[tuple[Image, Analysis]], model_version: ModelVersion, phash: str, params: dict[str, Any]
) -> list[bool]:
    """Stores a batch's analyses in one transaction, a few statements for the whole batch.

    Returns, per item, False when that image's analysis was already stored (nothing changed for it).

    Raises:
        IntegrityError: another worker stored one of them meanwhile, or an image was deleted; nothing
            of the batch was stored. The caller stores the images one by one (``save_analysis``).
    """
    if not items:
        return []
    # Encoded before the transaction: CPU work that holds no row locks.
    heat = {image.pk: heatmap_png(result.error_map) for image, result in items}
    with transaction.atomic():
        done = completed([image.pk for image, _ in items], model_version.pk, phash)
        todo = [(image, result) for image, result in items if image.pk not in done]
        if todo:
            error_maps, embeddings, suggestions = [], [], []
            for image, result in todo:
                png, scale = heat[image.pk]
                _write_atomic(errormap_name(image.pk, model_version.pk, phash), png)
                error_map, embedding, boxes = _rows(image, model_version, phash, params, result, scale)
                error_maps.append(error_map)
                embeddings.append(embedding)
                suggestions.extend(boxes)
            ids = [image.pk for image, _ in todo]
            # A unique violation here (another worker was faster) rolls the whole batch back.
            ErrorMap.objects.bulk_create(error_maps)
            Embedding.objects.bulk_create(
                embeddings,
                update_conflicts=True,
                unique_fields=["image", "model_version"],
                update_fields=["dim", "vector", "readout"],
            )
            # Pending suggestions of earlier analyses (another backbone or settings) are superseded;
            # resolved ones stay, since annotations point at them.
            Suggestion.objects.filter(image_id__in=ids, source=SOURCE, state=SuggestionState.PENDING).exclude(
                model_version=model_version, params_hash=phash
            ).delete()
            Suggestion.objects.bulk_create(suggestions, ignore_conflicts=True)
            Image.objects.filter(pk__in=ids).update(
                status=ImageStatus.ANALYSED, error_message="", updated_at=timezone.now()
            )
            _announce(todo, model_version)
    return [image.pk not in done for image, _ in items]


def save_analysis(
    image: Image, model_version: ModelVersion, phash: str, params: dict[str, Any], result: Analysis
) -> bool:
    """Stores one image's analysis. Returns False when it was already stored (nothing changed)."""
    try:
        return save_analyses([(image, result)], model_version, phash, params)[0]
    except IntegrityError:
        # Another worker stored the same analysis between our check and our insert.
        if is_complete(image.pk, model_version.pk, phash):
            return False
        raise
