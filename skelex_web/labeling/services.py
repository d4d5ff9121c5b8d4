"""Every change to annotations and suggestions: validation, optimistic concurrency, provenance,
audit events, and live events on commit.

Concurrency: an update names the version it was based on; the row is locked
(``select_for_update``) and a stale version raises :class:`StaleVersion` carrying the current
state, so the first writer's change is never overwritten silently. A create may carry a
``client_uid`` made by the client: sent again (lost reply, retry, reload) it returns the row the
first send made, and the unique index settles two copies racing each other.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError

from skelex_web.audit.services import record
from skelex_web.projects.models import Role
from skelex_web.projects.permissions import has_role, require_role
from skelex_web.projects.schema import validate_head_answer
from skelex_web.studies.models import Image

from .models import Annotation, AnnotationKind, Origin, Suggestion, SuggestionState

BOX_FIELDS = ("x0", "y0", "x1", "y1")
EDITABLE_FIELDS = ("label", "head", "value", *BOX_FIELDS, "time_spent_ms", "reviewed")
# A box within this many pixels of its suggestion counts as accepted, not edited.
ACCEPT_TOLERANCE_PX = 0.5


class StaleVersion(Exception):
    """The client edited an old version; ``current`` is the annotation as stored now."""

    def __init__(self, current: Annotation) -> None:
        super().__init__("stale version")
        self.current = current


class ClientUidTaken(APIException):
    """Another user's annotation on this image carries the ``client_uid`` of this create."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = (
        "This client_uid already names another user's annotation on this image; "
        "a new annotation needs a new client_uid."
    )
    default_code = "client_uid_taken"


def snapshot(a: Annotation) -> dict[str, Any]:
    """The audited state of an annotation (JSON-safe)."""
    return {
        "kind": a.kind,
        "label": a.label,
        "head": a.head,
        "value": a.value,
        "box": [a.x0, a.y0, a.x1, a.y1] if a.kind == AnnotationKind.BOX else None,
        "origin": a.origin,
        "version": a.version,
        "is_deleted": a.is_deleted,
        "reviewed": a.reviewed,
    }


def _publish(project_id: int, event: str, payload: dict[str, Any]) -> None:
    try:
        from skelex_web.events import publish
    except ImportError:  # events module not installed yet: labels still save
        return
    publish(project_id, event, payload)


def _validate(image: Image, data: dict[str, Any]) -> None:
    """Raises ValidationError with field errors; checks against the project's schema and image size."""
    schema = image.project.label_schema
    errors: dict[str, list[str]] = {}
    kind = data.get("kind")
    if kind == AnnotationKind.BOX:
        if data.get("value") is not None:  # unchecked, any JSON up to the 10 MB body limit was stored
            errors["value"] = ["a box has no value; only head answers do"]
        if data.get("label") not in schema.get("box_labels", []):
            errors["label"] = [f"must be one of the project's box labels: {', '.join(schema.get('box_labels', []))}"]
        coords = [data.get(k) for k in BOX_FIELDS]
        if any(c is None for c in coords):
            errors["box"] = ["x0, y0, x1 and y1 are required for a box"]
        else:
            x0, y0, x1, y1 = (float(c) for c in coords)
            if not (x0 < x1 and y0 < y1):
                errors["box"] = ["needs x0 < x1 and y0 < y1"]
            elif image.cols and image.rows and (x0 < 0 or y0 < 0 or x1 > image.cols or y1 > image.rows):
                errors["box"] = [f"must lie inside the image (0..{image.cols} x 0..{image.rows})"]
    elif kind == AnnotationKind.HEAD:
        msg = validate_head_answer(schema, data.get("head") or "", data.get("value"))
        if msg:
            errors["value" if data.get("head") else "head"] = [msg]
    else:
        errors["kind"] = ["must be 'box' or 'head'"]
    if errors:
        raise ValidationError(errors)


def _origin_for(suggestion: Suggestion | None, data: dict[str, Any]) -> str:
    if suggestion is None:
        return Origin.MANUAL
    if suggestion.kind == AnnotationKind.HEAD:
        return Origin.ACCEPTED if data.get("value") == (suggestion.value or {}).get("answer") else Origin.EDITED
    same = (
        all(abs(float(data[k]) - float(getattr(suggestion, k))) <= ACCEPT_TOLERANCE_PX for k in BOX_FIELDS)
        and data.get("label") == suggestion.label
    )
    return Origin.ACCEPTED if same else Origin.EDITED


def _made_earlier(actor: Any, image: Image, client_uid: UUID | None) -> Annotation | None:
    """The row an earlier send of this create made, if any; another author's raises ClientUidTaken."""
    if client_uid is None:
        return None
    earlier = Annotation.objects.select_related("author").filter(image=image, client_uid=client_uid).first()
    if earlier is not None and earlier.author_id != actor.pk:
        raise ClientUidTaken()
    return earlier


@transaction.atomic
def create_annotation(*, actor: Any, image: Image, data: dict[str, Any]) -> tuple[Annotation, bool]:
    """Creates a box or head answer. With a suggestion id, resolves it (accepted or edited).

    Returns ``(annotation, created)``. With ``data["client_uid"]`` the create is idempotent: when
    the actor's row with that key exists on the image it is returned as stored (``created`` False,
    nothing written or announced), even if this body differs; the client sends the difference as
    an update. Another user's row with the key raises :class:`ClientUidTaken` (409).
    """
    require_role(actor, image.project, Role.ANNOTATOR)
    client_uid = data.get("client_uid")
    if (earlier := _made_earlier(actor, image, client_uid)) is not None:
        return earlier, False
    _validate(image, data)
    suggestion = None
    if data.get("suggestion") is not None:
        suggestion = Suggestion.objects.select_for_update().filter(pk=data["suggestion"], image=image).first()
        if suggestion is None:
            raise ValidationError({"suggestion": ["no such suggestion on this image"]})
        # A copy of this create that held the lock before us has committed by now: return its row
        # rather than refusing the suggestion it resolved.
        if (earlier := _made_earlier(actor, image, client_uid)) is not None:
            return earlier, False
        if suggestion.state != SuggestionState.PENDING:
            raise ValidationError({"suggestion": [f"already {suggestion.state}"]})
        # What it suggested must be what this answers: a head answer naming a box suggestion
        # compared corners it does not have (a 500), a box resolved a head's prediction.
        if suggestion.kind != data["kind"] or suggestion.head != (data.get("head") or ""):
            what = f"the head {suggestion.head!r}" if suggestion.kind == AnnotationKind.HEAD else "a box"
            raise ValidationError({"suggestion": [f"suggestion {suggestion.pk} suggests {what}, not this"]})
    if data["kind"] == AnnotationKind.HEAD:
        existing = Annotation.objects.filter(
            image=image, head=data["head"], author=actor, kind=AnnotationKind.HEAD, is_deleted=False
        ).first()
        if existing is not None:
            if client_uid is not None and existing.client_uid == client_uid:
                return existing, False  # a copy of this create committed since the lookup above
            raise StaleVersion(existing)
    origin = _origin_for(suggestion, data)
    try:
        # A savepoint: a concurrent copy with the same key makes this insert wait on the unique
        # index and then fail; the transaction goes on to read the copy's row.
        with transaction.atomic():
            annotation = Annotation.objects.create(
                project=image.project,
                image=image,
                kind=data["kind"],
                label=data.get("label") or "",
                head=data.get("head") or "",
                value=data.get("value"),
                x0=data.get("x0"),
                y0=data.get("y0"),
                x1=data.get("x1"),
                y1=data.get("y1"),
                author=actor,
                updated_by=actor,
                origin=origin,
                suggestion=suggestion,
                model_version=suggestion.model_version if suggestion else None,
                time_spent_ms=int(data.get("time_spent_ms") or 0),
                client_uid=client_uid,
            )
    except IntegrityError:
        if (earlier := _made_earlier(actor, image, client_uid)) is None:
            raise
        return earlier, False
    if suggestion is not None:
        suggestion.state = SuggestionState.ACCEPTED if origin == Origin.ACCEPTED else SuggestionState.EDITED
        suggestion.resolved_by = actor
        suggestion.resolved_at = timezone.now()
        suggestion.save(update_fields=["state", "resolved_by", "resolved_at"])
    elif annotation.kind == AnnotationKind.HEAD:
        _resolve_predictions(actor, annotation)
    record(
        actor=actor, action="annotation.create", target=annotation, project=image.project, after=snapshot(annotation)
    )
    _notify_saved(annotation, actor)
    return annotation, True


def _resolve_predictions(actor: Any, annotation: Annotation) -> None:
    """A head answered without confirming the model's pending prediction resolves it all the same:
    accepted when the answer is the model's, rejected otherwise (audited and announced), so it
    does not wait in the pending count and the worklist next to an answered finding."""
    pending = Suggestion.objects.select_for_update().filter(
        image_id=annotation.image_id, kind=AnnotationKind.HEAD, head=annotation.head, state=SuggestionState.PENDING
    )
    for s in pending:
        same = annotation.value == (s.value or {}).get("answer")
        new = SuggestionState.ACCEPTED if same else SuggestionState.REJECTED
        _set_state(actor, s, new, "suggestion.resolve", by_answer=annotation.pk)


def _check_can_edit(actor: Any, annotation: Annotation) -> None:
    require_role(actor, annotation.project, Role.ANNOTATOR)
    if annotation.author_id != actor.pk and not has_role(actor, annotation.project, Role.REVIEWER):
        raise PermissionDenied("Annotators may only change their own annotations.", code="not_your_annotation")


@transaction.atomic
def update_annotation(*, actor: Any, annotation_id: int, version: int, changes: dict[str, Any]) -> Annotation:
    """Applies ``changes`` if ``version`` is current, else raises StaleVersion."""
    annotation = Annotation.objects.select_for_update().select_related("image__project").get(pk=annotation_id)
    _check_can_edit(actor, annotation)
    if annotation.is_deleted or annotation.version != version:
        raise StaleVersion(annotation)
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError({k: ["cannot be changed"] for k in unknown})
    if "reviewed" in changes and not has_role(actor, annotation.project, Role.REVIEWER):
        raise PermissionDenied("Only reviewers and leads mark annotations reviewed.")
    before = snapshot(annotation)
    merged = {**{f: getattr(annotation, f) for f in EDITABLE_FIELDS}, "kind": annotation.kind, **changes}
    _validate(annotation.image, merged)
    for key, value in changes.items():
        setattr(annotation, key, value)
    if annotation.origin == Origin.ACCEPTED and any(k in changes for k in (*BOX_FIELDS, "label", "value")):
        annotation.origin = Origin.EDITED
        if annotation.suggestion_id:
            Suggestion.objects.filter(pk=annotation.suggestion_id).update(state=SuggestionState.EDITED)
    annotation.version += 1
    annotation.updated_by = actor
    annotation.save()
    _audit_and_notify(annotation, actor, "annotation.update", before)
    return annotation


@transaction.atomic
def delete_annotation(*, actor: Any, annotation_id: int, version: int) -> Annotation:
    """Soft delete (kept for audit and provenance); stale versions raise StaleVersion."""
    annotation = Annotation.objects.select_for_update().select_related("project").get(pk=annotation_id)
    _check_can_edit(actor, annotation)
    if annotation.is_deleted or annotation.version != version:
        raise StaleVersion(annotation)
    before = snapshot(annotation)
    annotation.is_deleted = True
    annotation.version += 1
    annotation.updated_by = actor
    annotation.save(update_fields=["is_deleted", "version", "updated_by", "updated_at"])
    if annotation.suggestion_id:
        # The suggestion goes back to pending so it can be resolved again.
        Suggestion.objects.filter(pk=annotation.suggestion_id).update(
            state=SuggestionState.PENDING, resolved_by=None, resolved_at=None
        )
    _audit_and_notify(annotation, actor, "annotation.delete", before)
    return annotation


def accept_suggestion(*, actor: Any, suggestion: Suggestion) -> Annotation:
    """Turns a pending suggestion into an annotation with origin suggestion-accepted."""
    if suggestion.kind == AnnotationKind.HEAD:
        data: dict[str, Any] = {
            "kind": "head",
            "head": suggestion.head,
            "value": (suggestion.value or {}).get("answer"),
        }
    else:
        data = {"kind": "box", "label": suggestion.label, **{k: getattr(suggestion, k) for k in BOX_FIELDS}}
    data["suggestion"] = suggestion.pk
    annotation, _ = create_annotation(actor=actor, image=suggestion.image, data=data)
    return annotation


def reject_suggestion(*, actor: Any, suggestion: Suggestion) -> Suggestion:
    return _move_suggestion(
        actor, suggestion, SuggestionState.PENDING, SuggestionState.REJECTED, "suggestion.reject", "already {state}"
    )


def reopen_suggestion(*, actor: Any, suggestion: Suggestion) -> Suggestion:
    """Undoes a rejection: the suggestion is pending again (the viewer's undo of ``R``)."""
    return _move_suggestion(
        actor,
        suggestion,
        SuggestionState.REJECTED,
        SuggestionState.PENDING,
        "suggestion.reopen",
        "only a rejected suggestion can be reopened; this one is {state}",
    )


@transaction.atomic
def _move_suggestion(
    actor: Any, suggestion: Suggestion, expect: str, new: str, action: str, refusal: str
) -> Suggestion:
    """Rejects or reopens under a row lock; audited and announced (``suggestion.resolved``)."""
    require_role(actor, suggestion.project, Role.ANNOTATOR)
    suggestion = Suggestion.objects.select_for_update().get(pk=suggestion.pk)
    if suggestion.state != expect:
        raise ValidationError({"state": [refusal.format(state=suggestion.state)]})
    _set_state(actor, suggestion, new, action)
    return suggestion


def _set_state(actor: Any, suggestion: Suggestion, new: str, action: str, **why: Any) -> None:
    """Moves a (locked) suggestion to ``new``: who resolved it and when, audited (``why`` joins the
    audit's after-state) and announced (``suggestion.resolved``)."""
    before = suggestion.state
    suggestion.state = new
    resolved = new != SuggestionState.PENDING
    suggestion.resolved_by = actor if resolved else None
    suggestion.resolved_at = timezone.now() if resolved else None
    suggestion.save(update_fields=["state", "resolved_by", "resolved_at"])
    record(actor=actor, action=action, target=suggestion, project=suggestion.project, before={"state": before},
           after={"state": new, **why})  # fmt: skip
    _publish(
        suggestion.project_id,
        "suggestion.resolved",
        {"image": suggestion.image_id, "suggestion": suggestion.pk, "state": new},
    )


@transaction.atomic
def accept_all(*, actor: Any, image: Image) -> list[Annotation]:
    """Accepts every pending box suggestion of the image."""
    require_role(actor, image.project, Role.ANNOTATOR)
    pending = list(Suggestion.objects.filter(image=image, kind=AnnotationKind.BOX, state=SuggestionState.PENDING))
    return [accept_suggestion(actor=actor, suggestion=s) for s in pending]


def _audit_and_notify(annotation: Annotation, actor: Any, action: str, before: dict[str, Any]) -> None:
    record(
        actor=actor,
        action=action,
        target=annotation,
        project=annotation.project,
        before=before,
        after=snapshot(annotation),
    )
    _notify_saved(annotation, actor)


def _notify_saved(annotation: Annotation, actor: Any) -> None:
    _publish(
        annotation.project_id,
        "annotation.saved",
        {
            "image": annotation.image_id,
            "annotation": annotation.pk,
            "version": annotation.version,
            "author": getattr(actor, "username", ""),
            "deleted": annotation.is_deleted,
        },
    )
    transaction.on_commit(lambda: _after_label_saved(annotation.project_id))


def _after_label_saved(project_id: int) -> None:
    """Hook for the active-learning loop (retrain every N labels); installed by the learning app."""
    try:
        from skelex_web.learning.loop import on_label_saved
    except ImportError:
        return
    on_label_saved(project_id)
