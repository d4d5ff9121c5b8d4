"""Building a dataset version's manifest from the database, in bounded memory.

Two passes over the project's images: the first reads only ids, patient keys and main labels to
fix the patient-level split; the second reads images and their live annotations in chunks and
streams one canonical JSON line per image to the manifest file while hashing it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from django.db.models import Q, QuerySet

from skelex_web.labeling.models import Annotation, AnnotationKind, Origin, Suggestion, SuggestionState
from skelex_web.projects.models import Project
from skelex_web.studies.models import Image, ImageStatus

from .formats.canonical import dumps, num, sha256_obj, sha256_text
from .formats.records import safe_stem
from .formats.splits import assign_splits, normalise_ratios

CHUNK = 500
MANIFEST_VERSION = 1
FILTER_KEYS = ("reviewed_only", "labels", "heads", "body_parts", "origins", "include_unlabelled")


class InvalidFilters(ValueError):
    """Filters naming labels, heads or origins the project does not have; ``errors`` per field."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def normalise_filters(project: Project, filters: dict[str, Any] | None) -> dict[str, Any]:
    """Validated filters with every key present (lists sorted, ``None`` = no restriction)."""
    raw = dict(filters or {})
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(raw) - set(FILTER_KEYS))
    if unknown:
        errors["filters"] = [f"unknown filters: {', '.join(unknown)}"]
    schema = project.label_schema or {}
    allowed = {
        "labels": set(schema.get("box_labels", [])),
        "heads": {h["name"] for h in schema.get("heads", [])},
        "origins": set(Origin.values),
        "body_parts": None,
    }
    out: dict[str, Any] = {}
    for flag in ("reviewed_only", "include_unlabelled"):
        value = False if raw.get(flag) is None else raw[flag]
        if not isinstance(value, bool):  # bool() would read "false" and "no" as true
            errors[flag] = ["must be true or false"]
        out[flag] = bool(value)
    for key, known in allowed.items():
        value = raw.get(key)
        if value is None:
            out[key] = None
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            errors[key] = ["must be a list of names"]
            continue
        bad = sorted(set(value) - known) if known is not None else []
        if bad:
            errors[key] = [f"not in the project: {', '.join(bad)}"]
        out[key] = sorted(set(value))
    if errors:
        raise InvalidFilters(errors)
    return out


def filtered_schema(project: Project, filters: dict[str, Any]) -> dict[str, Any]:
    """The project's schema restricted to the version's labels and heads (schema order kept)."""
    schema = project.label_schema or {}
    labels = [b for b in schema.get("box_labels", []) if filters["labels"] is None or b in filters["labels"]]
    heads = [h for h in schema.get("heads", []) if filters["heads"] is None or h["name"] in filters["heads"]]
    return {"box_labels": labels, "heads": heads}


def _images(project: Project, filters: dict[str, Any]) -> QuerySet[Image]:
    qs = Image.objects.filter(project=project).exclude(status=ImageStatus.FAILED)
    if filters["body_parts"] is not None:
        qs = qs.filter(body_part__in=filters["body_parts"])
    return qs.order_by("id")


def _annotations(project: Project, filters: dict[str, Any], schema: dict[str, Any]) -> QuerySet[Annotation]:
    qs = Annotation.objects.filter(project=project, is_deleted=False)
    qs = qs.filter(
        Q(kind=AnnotationKind.BOX, label__in=schema["box_labels"])
        | Q(kind=AnnotationKind.HEAD, head__in=[h["name"] for h in schema["heads"]])
    )
    if filters["reviewed_only"]:
        qs = qs.filter(reviewed=True)
    if filters["origins"] is not None:
        qs = qs.filter(origin__in=filters["origins"])
    return qs


def group_key(study_id: int | None, patient: str, study_uid: str, image_id: int) -> str:
    """Patient pseudonym, else study UID, else the image: the unit a split keeps whole (hashed)."""
    if patient:
        key = f"patient:{patient}"
    elif study_uid:
        key = f"study:{study_uid}"
    else:
        key = f"image:{image_id}"
    return sha256_text(key)[:16]


def plan_splits(
    project: Project, filters: dict[str, Any], schema: dict[str, Any], seed: int, ratios: dict[str, float]
) -> tuple[dict[int, str], dict[int, str]]:
    """First pass: ``({image_id: split}, {image_id: group})`` for the images the version keeps."""
    annotations = _annotations(project, filters, schema).filter(image__in=_images(project, filters))
    box_order = {label: i for i, label in enumerate(schema["box_labels"])}
    first_head = schema["heads"][0]["name"] if schema["heads"] else None
    main: dict[int, str] = {}
    head_main: dict[int, str] = {}
    labelled: set[int] = set()
    for image_id, kind, label, head, value in annotations.values_list("image_id", "kind", "label", "head", "value"):
        labelled.add(image_id)
        if kind == AnnotationKind.BOX:
            if image_id not in main or box_order[label] < box_order[main[image_id]]:
                main[image_id] = label
        elif head == first_head and isinstance(value, str):
            head_main[image_id] = f"{head}={value}"
    items = []
    groups: dict[int, str] = {}
    rows = _images(project, filters).values_list(
        "id", "study_id", "study__patient_pseudo_id", "study__study_instance_uid"
    )
    for image_id, study_id, patient, study_uid in rows.iterator(chunk_size=2000):
        if not filters["include_unlabelled"] and image_id not in labelled:
            continue
        groups[image_id] = group_key(study_id, patient or "", study_uid or "", image_id)
        # Stratum: the image's first box label in schema order, else its first head's answer.
        items.append((image_id, groups[image_id], main.get(image_id) or head_main.get(image_id) or "none"))
    return assign_splits(items, seed, ratios), groups


def _model_name(mv: Any) -> str | None:
    return f"{mv.name}#{mv.pk}" if mv is not None else None


def _label_fields(ann: Annotation) -> dict[str, Any]:
    return {
        "annotation": ann.pk,
        "origin": ann.origin,
        "author": ann.author.username if ann.author_id else None,
        "model_version": _model_name(ann.model_version) if ann.model_version_id else None,
        "reviewed": bool(ann.reviewed),
        "suggestion": ann.suggestion_id,
    }


def _head_rank(ann: Annotation) -> tuple[Any, ...]:
    # Several authors may answer a head; the export keeps a reviewed answer first, then the latest.
    return (bool(ann.reviewed), ann.updated_at, ann.pk)


def image_record(image: Image, annotations: list[Annotation], split: str, group: str) -> dict[str, Any]:
    """The manifest record of one image (see ``formats/records.py``)."""
    boxes = []
    heads: dict[str, Annotation] = {}
    for ann in annotations:
        if ann.kind == AnnotationKind.BOX:
            x0, x1 = sorted((ann.x0, ann.x1))
            y0, y1 = sorted((ann.y0, ann.y1))
            box = {"label": ann.label, "bbox": [num(x0), num(y0), num(x1), num(y1)], **_label_fields(ann)}
            sug = ann.suggestion
            box["suggestion_bbox"] = (
                [num(sug.x0), num(sug.y0), num(sug.x1), num(sug.y1)]
                if sug is not None and sug.x0 is not None and sug.kind == AnnotationKind.BOX
                else None
            )
            boxes.append(box)
        elif ann.head not in heads or _head_rank(ann) > _head_rank(heads[ann.head]):
            heads[ann.head] = ann
    boxes.sort(key=lambda b: (b["label"], b["bbox"], b["annotation"]))
    head_out = {name: {"value": a.value, **_label_fields(a)} for name, a in sorted(heads.items())}
    study = image.study
    record = {
        "image": image.pk,
        "name": image.name,
        "stem": safe_stem(image.pk, image.name or image.file.name),
        "split": split,
        "group": group,
        "file": image.file.name,
        "display": image.display.name or None,
        "file_format": image.file_format,
        "file_sha256": image.sha256,
        "width": image.cols,
        "height": image.rows,
        "body_part": image.body_part,
        "view": image.view,
        "laterality": image.laterality,
        "modality": image.modality,
        "study_uid": study.study_instance_uid if study else "",
        "series_uid": image.series_instance_uid,
        "sop_uid": image.sop_instance_uid,
        "frame": image.frame_index,
        "photometric": image.photometric_interpretation,
        "window": [image.window_center, image.window_width] if image.window_width else None,
        "spacing": [image.pixel_spacing_row, image.pixel_spacing_col] if image.pixel_spacing_row else None,
        "boxes": boxes,
        "heads": head_out,
    }
    record["labels_sha256"] = sha256_obj({"boxes": boxes, "heads": head_out})
    return record


def _file_sha256(image: Image) -> str:
    if image.sha256:
        return image.sha256
    digest = hashlib.sha256()
    with image.file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def iter_records(
    project: Project, filters: dict[str, Any], schema: dict[str, Any], splits: dict[int, str], groups: dict[int, str]
) -> Iterator[dict[str, Any]]:
    """Second pass: records in image-id order, ``CHUNK`` images (and their labels) at a time."""
    ids = sorted(splits)
    annotations = _annotations(project, filters, schema).select_related("author", "model_version", "suggestion")
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        by_image: dict[int, list[Annotation]] = {i: [] for i in chunk}
        for ann in annotations.filter(image_id__in=chunk).order_by("id"):
            by_image[ann.image_id].append(ann)
        for image in Image.objects.filter(id__in=chunk).select_related("study").order_by("id"):
            if not image.sha256:
                image.sha256 = _file_sha256(image)
            yield image_record(image, by_image[image.pk], splits[image.pk], groups[image.pk])


def suggestion_counts(image_ids: list[int]) -> Counter[str]:
    """Box suggestion states on these images (for the acceptance rate)."""
    counts: Counter[str] = Counter()
    for start in range(0, len(image_ids), CHUNK):
        qs = Suggestion.objects.filter(image_id__in=image_ids[start : start + CHUNK], kind=AnnotationKind.BOX)
        counts.update(qs.values_list("state", flat=True))
    return counts


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def write_manifest(
    project: Project,
    out: BinaryIO,
    *,
    filters: dict[str, Any],
    seed: int,
    ratios: dict[str, float] | None,
) -> dict[str, Any]:
    """Writes the manifest (header line + one line per image) and returns hash, counts and summary."""
    schema = filtered_schema(project, filters)
    shares = normalise_ratios(ratios)
    splits, groups = plan_splits(project, filters, schema, seed, shares)
    header = {
        "kind": "skelex-dataset-manifest",
        "manifest_version": MANIFEST_VERSION,
        "project": project.slug,
        "label_schema": schema,
        "filters": filters,
        "split": {"seed": seed, "ratios": {k: num(v, 6) for k, v in shares.items()}},
        "image_count": len(splits),
    }
    digest = hashlib.sha256()

    def emit(obj: dict[str, Any]) -> None:
        line = (dumps(obj) + "\n").encode("utf-8")
        digest.update(line)
        out.write(line)

    emit(header)
    split_images: Counter[str] = Counter()
    label_counts: Counter[str] = Counter()
    origin_counts: Counter[str] = Counter()
    ious: list[float] = []
    n_annotations = 0
    for record in iter_records(project, filters, schema, splits, groups):
        emit(record)
        split_images[record["split"]] += 1
        n_annotations += len(record["boxes"]) + len(record["heads"])
        for box in record["boxes"]:
            label_counts[box["label"]] += 1
            origin_counts[box["origin"]] += 1
            if box["suggestion_bbox"] is not None:
                ious.append(iou(box["bbox"], box["suggestion_bbox"]))
    states = suggestion_counts(sorted(splits))
    taken = states[SuggestionState.ACCEPTED] + states[SuggestionState.EDITED]
    resolved = taken + states[SuggestionState.REJECTED]
    summary = {
        "images": len(splits),
        "patients_or_groups": len(set(groups.values())),
        "splits": {s: split_images.get(s, 0) for s in shares},
        "groups_per_split": {s: len({groups[i] for i, sp in splits.items() if sp == s}) for s in shares},
        "boxes_per_label": {label: label_counts.get(label, 0) for label in schema["box_labels"]},
        "boxes_per_origin": dict(sorted(origin_counts.items())),
        "suggestions": {
            "accepted": states[SuggestionState.ACCEPTED],
            "edited": states[SuggestionState.EDITED],
            "rejected": states[SuggestionState.REJECTED],
            "pending": states[SuggestionState.PENDING],
            "acceptance_rate": num(taken / resolved, 4) if resolved else None,
            "unchanged_acceptance_rate": num(states[SuggestionState.ACCEPTED] / resolved, 4) if resolved else None,
        },
        "suggested_vs_final_boxes": {
            "pairs": len(ious),
            "mean_iou": num(sum(ious) / len(ious), 4) if ious else None,
        },
    }
    return {
        "content_hash": digest.hexdigest(),
        "image_count": len(splits),
        "annotation_count": n_annotations,
        "summary": summary,
        "header": header,
    }


def manifest_path(version_number: int, project_id: int, content_hash: str) -> str:
    return str(Path("exports") / "versions" / str(project_id) / f"v{version_number}-{content_hash[:12]}.jsonl")
