"""Writing audit events. Called by every service that changes labels, schemas or members."""

from __future__ import annotations

from typing import Any

from .models import AuditEvent


def record(
    *,
    actor: Any,
    action: str,
    target: Any,
    project: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Stores one event; call inside the same transaction as the change it describes."""
    return AuditEvent.objects.create(
        project=project,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        target_type=type(target).__name__.lower(),
        target_id=str(getattr(target, "pk", "") or ""),
        before=before,
        after=after,
    )
