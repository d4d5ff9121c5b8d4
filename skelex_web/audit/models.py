"""Audit trail: who changed what, when, with the state before and after."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

# Labelling events: hundreds a day per annotator. The rest (members, settings, images added or
# deleted, rounds, exports) are the project's Activity (skelex_web/pages/activity.py).
LABELLING = Q(action__startswith="annotation.") | Q(action__startswith="suggestion.")


class AuditEvent(models.Model):
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=64)  # e.g. annotation.create, suggestion.reject
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The project page's Activity (the latest project-level events) reads these few rows
            # directly, not every labelling event since the last of them (200,000 events: 80,000
            # rows filtered, 18 ms on PostgreSQL without it).
            models.Index(
                F("project"), F("created_at").desc(), F("id").desc(), name="audit_activity", condition=~LABELLING
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"
