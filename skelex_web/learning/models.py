"""Model versions (backbones and heads) and what they compute per image."""

from __future__ import annotations

import numpy as np
from django.db import models


class ModelKind(models.TextChoices):
    BACKBONE = "backbone", "Backbone (MAE)"
    HEADS = "heads", "Classification heads"


class ModelVersion(models.Model):
    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    name = models.CharField(max_length=200)
    # Backbones are shared across projects (project None); heads belong to one project.
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="model_versions"
    )
    checkpoint = models.CharField(max_length=500, blank=True)  # path under MEDIA_ROOT or absolute
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


class Embedding(models.Model):
    image = models.ForeignKey("studies.Image", on_delete=models.CASCADE, related_name="embeddings")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    dim = models.PositiveIntegerField()
    vector = models.BinaryField()  # float16, L2-normalised, little endian
    # engine.embedding_hash of the readout (pooling, scales, preprocessing); "" = stored before it
    # was recorded. Two readouts can give vectors of one length that no head may mix.
    readout = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "model_version"], name="one_embedding_per_model")]

    def __str__(self) -> str:
        return f"embedding of image {self.image_id} by model {self.model_version_id}"

    def as_array(self) -> np.ndarray:
        return np.frombuffer(bytes(self.vector), dtype="<f2").astype(np.float32)


class ErrorMap(models.Model):
    image = models.ForeignKey("studies.Image", on_delete=models.CASCADE, related_name="error_maps")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    params_hash = models.CharField(max_length=64)
    params = models.JSONField(default=dict)
    file = models.FileField(upload_to="errormaps/", max_length=255)  # 8-bit PNG heat map on the image grid
    image_score = models.FloatField(default=0.0)
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "model_version", "params_hash"], name="one_errormap_per_params")
        ]

    def __str__(self) -> str:
        return f"error map of image {self.image_id} by model {self.model_version_id}"
