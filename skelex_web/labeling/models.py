"""Expert labels (annotations) and model suggestions, with provenance."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class AnnotationKind(models.TextChoices):
    HEAD = "head", "Image-level head answer"
    BOX = "box", "Bounding box"


class Origin(models.TextChoices):
    MANUAL = "manual", "Manual"
    ACCEPTED = "suggestion-accepted", "Suggestion accepted"
    EDITED = "suggestion-edited", "Suggestion edited"
    IMPORTED = "imported", "Imported"


class SuggestionState(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    EDITED = "edited", "Edited"
    REJECTED = "rejected", "Rejected"


class Suggestion(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="suggestions")
    image = models.ForeignKey("studies.Image", on_delete=models.CASCADE, related_name="suggestions")
    kind = models.CharField(max_length=8, choices=AnnotationKind.choices, default=AnnotationKind.BOX)
    label = models.CharField(max_length=64, blank=True)  # box label
    head = models.CharField(max_length=64, blank=True)  # head name (kind=head)
    value = models.JSONField(null=True, blank=True)  # head: {"answer": .., "probabilities": {..}}
    # Box in original image pixels: x0 <= x1, y0 <= y1.
    x0 = models.FloatField(null=True, blank=True)
    y0 = models.FloatField(null=True, blank=True)
    x1 = models.FloatField(null=True, blank=True)
    y1 = models.FloatField(null=True, blank=True)
    score = models.FloatField(default=0.0)
    source = models.CharField(max_length=32, default="errormap")  # errormap, heads
    model_version = models.ForeignKey(
        "learning.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    params_hash = models.CharField(max_length=64, blank=True)
    rank = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(max_length=16, choices=SuggestionState.choices, default=SuggestionState.PENDING)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "rank", "id"]
        constraints = [
            # Idempotent analysis: one suggestion per rank per (image, model, parameters, source, head).
            models.UniqueConstraint(
                fields=["image", "model_version", "params_hash", "source", "head", "rank"],
                name="suggestion_unique_per_analysis",
            )
        ]

    def __str__(self) -> str:
        return f"suggestion {self.pk} ({self.kind} {self.label or self.head}, {self.state})"


class Annotation(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="annotations")
    image = models.ForeignKey("studies.Image", on_delete=models.CASCADE, related_name="annotations")
    kind = models.CharField(max_length=8, choices=AnnotationKind.choices)
    head = models.CharField(max_length=64, blank=True)
    value = models.JSONField(null=True, blank=True)  # head answer: class, [classes] or "unknown"
    label = models.CharField(max_length=64, blank=True)
    x0 = models.FloatField(null=True, blank=True)
    y0 = models.FloatField(null=True, blank=True)
    x1 = models.FloatField(null=True, blank=True)
    y1 = models.FloatField(null=True, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    origin = models.CharField(max_length=24, choices=Origin.choices, default=Origin.MANUAL)
    suggestion = models.ForeignKey(
        Suggestion, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotations"
    )
    model_version = models.ForeignKey(
        "learning.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    is_deleted = models.BooleanField(default=False)
    reviewed = models.BooleanField(default=False)
    time_spent_ms = models.PositiveIntegerField(default=0)
    # Idempotency key the client makes when the record is born (the viewer: crypto.randomUUID()):
    # a create sent again after a lost reply or a reload finds this row instead of adding one.
    client_uid = models.UUIDField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["image_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="head")
                | (Q(x0__isnull=False) & Q(y0__isnull=False) & Q(x1__isnull=False) & Q(y1__isnull=False)),
                name="box_annotation_has_coordinates",
            ),
            # One live answer per head per image and author; edits bump the version.
            models.UniqueConstraint(
                fields=["image", "head", "author"],
                condition=Q(kind="head", is_deleted=False),
                name="one_head_answer_per_author",
            ),
            # A client key names one record per image. Not per author as well: a key is random, so
            # another user's row under it is a client bug, refused rather than stored beside it.
            models.UniqueConstraint(
                fields=["image", "client_uid"],
                condition=Q(client_uid__isnull=False),
                name="annotation_client_uid_once_per_image",
            ),
        ]

    def __str__(self) -> str:
        return f"annotation {self.pk} ({self.kind} {self.label or self.head}, v{self.version})"
