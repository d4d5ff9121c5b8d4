"""Studies and images: what was ingested, decoded and stored, with the metadata downstream needs;
and the jobs of queued uploads, which report what became of each file."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, OrderBy, Q


class Study(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="studies")
    # Remapped (de-identified) Study Instance UID; empty for plain PNG/JPEG uploads.
    study_instance_uid = models.CharField(max_length=64, blank=True)
    # Keyed pseudonym of the patient id, stable within the project (patient-level splits).
    patient_pseudo_id = models.CharField(max_length=64, blank=True, db_index=True)
    study_date = models.DateField(null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "study_instance_uid"],
                condition=~Q(study_instance_uid=""),
                name="study_uid_unique_in_project",
            )
        ]

    def __str__(self) -> str:
        return f"study {self.pk}"


class NullsLastIndex(models.Index):
    """An index whose ``DESC NULLS LAST`` columns serve ``ORDER BY ... DESC NULLS LAST`` on
    PostgreSQL (where a plain descending index puts NULLs first). SQLite refuses ``NULLS LAST`` in
    an index, but its descending order already puts NULLs last, so there the modifier is dropped."""

    def create_sql(self, model: Any, schema_editor: Any, using: str = "", **kwargs: Any) -> Any:
        if schema_editor.connection.vendor != "sqlite":
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        plain = [
            OrderBy(e.expression, descending=e.descending) if isinstance(e, OrderBy) else e for e in self.expressions
        ]
        index = models.Index(*plain, name=self.name, condition=self.condition)
        return index.create_sql(model, schema_editor, using=using, **kwargs)


class ImageStatus(models.TextChoices):
    INGESTED = "ingested", "Ingested"
    QUEUED = "queued", "Queued for analysis"
    ANALYSING = "analysing", "Analysing"
    ANALYSED = "analysed", "Analysed"
    FAILED = "failed", "Failed"


class Image(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="images")
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="images")
    # The original as received (after de-identification), the 16-bit display PNG, a thumbnail.
    file = models.FileField(upload_to="originals/", max_length=255)
    display = models.FileField(upload_to="display/", max_length=255, blank=True)
    thumbnail = models.FileField(upload_to="thumbs/", max_length=255, blank=True)
    # A name safe to show (never the uploaded path, which may carry PHI for DICOM).
    name = models.CharField(max_length=255, blank=True)
    file_format = models.CharField(max_length=16, blank=True)  # dicom, png, jpeg, tiff
    sha256 = models.CharField(max_length=64)
    pixel_sha256 = models.CharField(max_length=64)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    series_instance_uid = models.CharField(max_length=64, blank=True)
    frame_index = models.PositiveIntegerField(default=0)
    modality = models.CharField(max_length=16, blank=True)
    rows = models.PositiveIntegerField(default=0)
    cols = models.PositiveIntegerField(default=0)
    bits = models.PositiveSmallIntegerField(default=8)
    photometric_interpretation = models.CharField(max_length=32, blank=True)
    pixel_spacing_row = models.FloatField(null=True, blank=True)  # mm
    pixel_spacing_col = models.FloatField(null=True, blank=True)
    pixel_spacing_source = models.CharField(max_length=32, blank=True)
    window_center = models.FloatField(null=True, blank=True)  # in display-PNG units
    window_width = models.FloatField(null=True, blank=True)
    body_part = models.CharField(max_length=64, blank=True, db_index=True)
    view = models.CharField(max_length=32, blank=True)
    laterality = models.CharField(max_length=8, blank=True)
    burned_in_annotation = models.BooleanField(default=False)
    notes = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=ImageStatus.choices, default=ImageStatus.INGESTED, db_index=True)
    error_message = models.TextField(blank=True)
    # Active learning: higher priority = label sooner; reason is shown in the worklist.
    al_priority = models.FloatField(null=True, blank=True, db_index=True)
    al_reason = models.CharField(max_length=200, blank=True)
    # Who has the image open in a viewer (so the queue does not hand it to two annotators at once).
    claimed_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        # The labelling queue's order (worklist, Label next, the viewer's neighbours): with it the
        # database walks a project's images in that order and stops at the first it can hand out,
        # instead of sorting the whole project on every "next".
        indexes = [
            NullsLastIndex(F("project"), F("al_priority").desc(nulls_last=True), F("id"), name="image_queue_order")
        ]
        constraints = [
            models.UniqueConstraint(fields=["project", "pixel_sha256"], name="image_pixels_unique_in_project"),
            models.UniqueConstraint(
                fields=["project", "sop_instance_uid", "frame_index"],
                condition=~Q(sop_instance_uid=""),
                name="image_sop_unique_in_project",
            ),
        ]

    def __str__(self) -> str:
        return f"image {self.pk} ({self.name})"


class UploadState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Ingesting"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class UploadJob(models.Model):
    """A queued upload (``workers.ingest.import_files``) and what became of each of its files.

    ``results`` holds one entry per ingest result, ``{"index", "entry", "status", "reason",
    "image_ids"}``: ``index`` is the file's 1-based position in the upload request, ``entry`` the
    1-based position of an archive member among that archive's results (null for plain files).
    Never a file name: uploaded names and zip member paths can carry a patient's name, and the
    uploader's client knows its files by position (see ``skelex_web/studies/uploads.py``).
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="upload_jobs")
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    task_id = models.CharField(max_length=64, blank=True)
    files = models.PositiveIntegerField(default=0)  # files in the request (a zip counts as one)
    state = models.CharField(max_length=16, choices=UploadState.choices, default=UploadState.QUEUED)
    counts = models.JSONField(default=dict)  # {"ingested", "duplicate", "rejected"} once done
    results = models.JSONField(default=list)
    error = models.TextField(blank=True)  # why a failed job failed (no file names)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The staging folder's name under MEDIA_ROOT/staging/ while the import has not finished, so a job
    # whose message was lost can be sent again (uploads.recover_uploads); blank for inline uploads.
    staging = models.CharField(max_length=32, blank=True)
    resent_at = models.DateTimeField(null=True, blank=True)  # sent again after a lost message (once at most)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "uploader", "-created_at"], name="upload_job_recent")]

    def __str__(self) -> str:
        return f"upload {self.pk} ({self.state})"
