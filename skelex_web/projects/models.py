"""Projects and per-project roles."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.db import models

from .schema import default_schema


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    LEAD = "lead", "Lead"


# Each role can do everything the roles before it can.
ROLE_RANK = {Role.VIEWER: 0, Role.ANNOTATOR: 1, Role.REVIEWER: 2, Role.LEAD: 3}


# How a training round orders the labelling queue (``settings["sampling"]``; the strategies of
# workers/ml/sampling.py), with what a lead reads when choosing. Measured on FracAtlas in
# docs/active-learning.md: the hybrid is the default; k-center or the ensemble can do better on a
# rare finding, random order is the control that tells whether ranking helps at all.
SAMPLING: dict[str, str] = {
    "hybrid": "uncertain and varied (default): the most uncertain images, spread over the data, a few at random",
    "entropy": "most uncertain first: the images the model is least sure about",
    "margin": "closest calls first: the smallest gap between the two likeliest answers",
    "ensemble": "where models disagree: five models trained on resampled labels",
    "kcenter": "most unlike anything labelled: diversity only, the model's answers not used",
    "random": "random order: a control, to see whether ranking helps",
}


# Rankings that do not read the model's answers, and so ignore a focus finding.
IGNORE_FOCUS = frozenset({"kcenter", "random"})


def default_settings() -> dict[str, Any]:
    # keep_file_names: keep PNG/JPEG/TIFF base names as Image.name while de-identifying; only for
    # public, already anonymised datasets whose file names are their identifiers (FracAtlas).
    # focus: the one finding the queue is ranked for first ('' = every finding).
    return {"deidentify": True, "keep_file_names": False, "retrain_every": 20, "sampling": "hybrid", "focus": ""}


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    label_schema = models.JSONField(default=default_schema)
    settings = models.JSONField(default=default_settings)
    # The backbone analysing this project's images; None = the default (demo) backbone.
    active_backbone = models.ForeignKey(
        "learning.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.slug

    def setting(self, key: str) -> Any:
        return {**default_settings(), **(self.settings or {})}.get(key)


class Membership(models.Model):
    user = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="one_membership_per_user_project")]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.project_id}:{self.role}"
