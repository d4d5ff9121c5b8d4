"""The project page's **Activity** (reviewers and leads, who may read the audit trail): the latest
project-level changes in words, "lena added ana as annotator", newest first.

Labelling itself (``annotation.*``, ``suggestion.*``) is left out: it is hundreds of events a day and
the page's "Who labelled what" already sums it up; the whole trail stays at ``/api/audit-events/``.
Events carry ids and counts, never file or patient names, and so does their text here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.template.defaultfilters import pluralize

from skelex_web.audit.models import LABELLING, AuditEvent
from skelex_web.projects.models import Project

SHOWN = 15


@dataclass(frozen=True)
class Entry:
    when: datetime
    who: str
    what: str
    action: str


def _n(count: Any, noun: str) -> str:
    count = int(count or 0)
    return f"{count} {noun}{pluralize(count)}"


def _setting(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"turned {key} {'on' if value else 'off'}"
    if value in ("", None):
        return f"cleared {key}"
    return f"set {key} to {value}"


def _settings_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    old, new = before.get("settings") or {}, after.get("settings") or {}
    changed = [_setting(key, value) for key, value in new.items() if old.get(key) != value]
    return ", ".join(changed) if changed else "saved the settings unchanged"


def _project_update(before: dict[str, Any], after: dict[str, Any]) -> str:
    parts = []
    if "settings" in after:
        parts.append(_settings_change(before, after))
    if "name" in after:
        parts.append(f"renamed the project to {after['name']!r}")
    for key in ("description", "label_schema"):
        if key in after:
            parts.append(f"changed the {key.replace('_', ' ')}")
    return "; ".join(parts) or "changed the project"


def _membership_set(before: dict[str, Any], after: dict[str, Any]) -> str:
    if not before:
        return f"added {after.get('user')} as {after.get('role')}"
    return f"made {after.get('user')} {after.get('role')} (was {before.get('role')})"


def _ingest(before: dict[str, Any], after: dict[str, Any]) -> str:
    text = f"added {_n(after.get('ingested'), 'image')}"
    others = [f"{after[k]} {k}" for k in ("duplicate", "rejected") if after.get(k)]
    return text + (f" ({', '.join(others)})" if others else "")


DESCRIBE: dict[str, Callable[[dict[str, Any], dict[str, Any]], str]] = {
    "project.create": lambda b, a: "created the project",
    "project.update": _project_update,
    "project.activate_backbone": lambda b, a: f"switched the backbone to model version {a.get('active_backbone')}",
    "membership.set": _membership_set,
    "membership.remove": lambda b, a: f"removed {b.get('user')} ({b.get('role')})",
    "images.ingest": _ingest,
    "image.delete": lambda b, a: f"deleted an image with {_n(b.get('annotations'), 'label')}",
    "images.reanalyse": lambda b, a: f"queued {_n(a.get('images'), 'image')} for analysis again",
    "heads.retrain": lambda b, a: "asked for a training round"
    if a.get("queued")
    else "asked for a training round (one was queued already)",
    "rankings.compare": lambda b, a: "asked to compare the rankings on the project's labels"
    + ("" if a.get("queued") else " (one was running already)"),
    "dataset_version.create": lambda b, a: f"made dataset version {a.get('number')} ({_n(a.get('images'), 'image')})",
    "export.start": lambda b, a: f"exported version {a.get('version')} as {a.get('format')} ({a.get('images')} images)",
}


def describe(event: AuditEvent) -> str:
    """One event in words; an action without words of its own reads as its name."""
    words = DESCRIBE.get(event.action)
    return words(event.before or {}, event.after or {}) if words else event.action


def latest(project: Project, limit: int) -> QuerySet[AuditEvent]:
    """The project's latest project-level events (read from the ``audit_activity`` index)."""
    return (
        AuditEvent.objects.filter(project=project)
        .filter(~LABELLING)
        .select_related("actor")
        .order_by("-created_at", "-id")[:limit]
    )


def recent(project: Project, limit: int = SHOWN) -> list[Entry]:
    """The latest project-level events of ``project`` in words, newest first."""
    return [
        Entry(e.created_at, e.actor.get_username() if e.actor else "the system", describe(e), e.action)
        for e in latest(project, limit)
    ]
