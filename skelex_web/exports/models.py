"""Dataset versions (immutable label snapshots) and the export runs made from them.

A :class:`DatasetVersion` freezes, at one moment, which images and which labels a dataset holds,
their split and their hashes: the manifest file (JSON lines, see ``formats/records.py``) is written
once and never rewritten, and ``content_hash`` is its sha256. Labels edited later do not change a
version; a new version captures them. An :class:`ExportJob` renders a version in one format.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class ExportFormat(models.TextChoices):
    COCO = "coco", "COCO JSON"
    YOLO = "yolo", "YOLO"
    VOC = "voc", "Pascal VOC XML"
    CSV = "csv", "CSV of head answers"
    DICOM_SR = "dicom-sr", "DICOM SR (TID 1500)"


class ImageMode(models.TextChoices):
    PNG16 = "png16", "16-bit PNG"
    PNG8 = "png8", "8-bit windowed PNG"
    ORIGINAL = "original", "Original file (de-identified DICOM for DICOM sources)"
    NONE = "none", "Labels only"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


# The largest split seed taken (API and page): a 32-bit integer column on every database.
SPLIT_SEED_MAX = 2**31 - 1


class DatasetVersion(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="dataset_versions")
    number = models.PositiveIntegerField()  # 1, 2, ... per project
    name = models.CharField(max_length=200, blank=True)
    # {"reviewed_only": bool, "labels": [..] | null, "heads": [..] | null, "body_parts": [..] | null,
    #  "origins": [..] | null, "include_unlabelled": bool}
    filters = models.JSONField(default=dict)
    split_seed = models.IntegerField(default=0)
    split_ratios = models.JSONField(default=dict)
    manifest = models.FileField(upload_to="exports/versions/", max_length=255)
    content_hash = models.CharField(max_length=64)
    image_count = models.PositiveIntegerField(default=0)
    annotation_count = models.PositiveIntegerField(default=0)
    # Split sizes, label counts, suggestion acceptance rate and mean IoU (see services.summarise).
    summary = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    FROZEN = ("project_id", "number", "filters", "split_seed", "split_ratios", "manifest", "content_hash")

    class Meta:
        ordering = ["project_id", "-number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="one_dataset_version_number")]

    def __str__(self) -> str:
        return f"{self.project_id} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Refuses to change a stored version's frozen fields: versions are immutable."""
        if self.pk is not None:
            stored = type(self).objects.filter(pk=self.pk).values(*self.FROZEN).first()
            if stored is not None:
                changed = [f for f in self.FROZEN if stored[f] != getattr(self, f)]
                if changed:
                    raise ValueError(f"dataset versions are immutable; refused to change {', '.join(changed)}")
        super().save(*args, **kwargs)


class ExportJob(models.Model):
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=16, choices=ExportFormat.choices)
    images = models.CharField(max_length=16, choices=ImageMode.choices, default=ImageMode.PNG16)
    # With the backbone's embeddings of the images (embeddings.npz, skelex_web/exports/embeddings.py).
    embeddings = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to="exports/", max_length=255, blank=True)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    resent_at = models.DateTimeField(null=True, blank=True)  # sent again after a lost message (once at most)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.format}) of {self.version}"
