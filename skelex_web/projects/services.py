"""State changes of projects and memberships. Every change writes an audit event."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.text import slugify
from rest_framework.exceptions import ValidationError

from skelex_web.audit.services import record

from .models import Membership, Project, Role
from .schema import default_schema, validate_schema

logger = logging.getLogger(__name__)

# Folders under MEDIA_ROOT that hold one project's files only, as ``<folder>/<project id>/``.
PROJECT_FOLDERS = ("originals", "display", "thumbs", "exports", "exports/versions", "heads", "rankings")


def _unique_slug(name: str) -> str:
    base = slugify(name)[:70] or "project"
    slug, n = base, 2
    while Project.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def create_project(
    *, actor: Any, name: str, slug: str = "", description: str = "", label_schema: dict[str, Any] | None = None
) -> Project:
    """Creates a project with ``actor`` as its lead; the schema defaults to the SKELEX heads."""
    schema = label_schema if label_schema is not None else default_schema()
    errors = validate_schema(schema)
    if errors:
        raise ValidationError({"label_schema": errors})
    project = Project.objects.create(
        name=name, slug=slug or _unique_slug(name), description=description, label_schema=schema, created_by=actor
    )
    Membership.objects.create(user=actor, project=project, role=Role.LEAD)
    record(actor=actor, action="project.create", target=project, project=project, after={"name": name})
    return project


@transaction.atomic
def delete_project(*, actor: Any, project: Project) -> dict[str, int]:
    """Deletes the project with all its rows and, once that has committed, its stored files; returns
    how many of each thing went with it (``{"images": 12, ...}``, as the audit event records).

    The project's own audit trail goes with it: its events hold label snapshots and member names,
    which a deletion is meant to remove. The deletion itself is recorded as a site-level event
    (``project`` None, so it outlives the project; staff read it): who, which project, and how
    many of each thing went with it. Counted before the delete, in the same transaction.

    Files go only after the commit (a rolled-back delete leaves a whole project): every file a row
    names (originals, display PNGs, thumbnails, error maps, manifests, export zips), the upload
    staging folders of its unfinished uploads, and the project's own folders (``PROJECT_FOLDERS``:
    heads, ranking comparisons, partial exports).
    """
    gone = {
        "members": project.memberships.count(),
        "studies": project.studies.count(),
        "images": project.images.count(),
        "annotations": project.annotations.filter(is_deleted=False).count(),
        "suggestions": project.suggestions.count(),
        "dataset_versions": project.dataset_versions.count(),
        "upload_jobs": project.upload_jobs.count(),
        "audit_events": project.audit_events.count(),
    }
    record(
        actor=actor,
        action="project.delete",
        target=project,
        before={"id": project.pk, "slug": project.slug, "name": project.name, **gone},
    )
    files, folders = _stored_files(project)
    project_id = project.pk  # delete() sets the instance's pk to None
    project.delete()
    transaction.on_commit(lambda: _remove(project_id, files, folders))
    return gone


def _stored_files(project: Project) -> tuple[list[str], list[Path]]:
    """Names (under MEDIA_ROOT) of every file the project's rows point at, and its own folders."""
    image_files = project.images.values_list("file", "display", "thumbnail")
    files = [name for row in image_files for name in row if name]
    files += (
        apps.get_model("learning", "ErrorMap").objects.filter(image__project=project).values_list("file", flat=True)
    )
    files += project.dataset_versions.values_list("manifest", flat=True)
    files += (
        apps.get_model("exports", "ExportJob").objects.filter(version__project=project).values_list("file", flat=True)
    )
    root = Path(settings.MEDIA_ROOT)
    folders = [root / folder / str(project.pk) for folder in PROJECT_FOLDERS]
    staging = project.upload_jobs.exclude(staging="").values_list("staging", flat=True)
    folders += [root / "staging" / name for name in staging if name.isalnum()]
    return [name for name in files if name], folders


def _remove(project_id: int, files: list[str], folders: list[Path]) -> None:
    """Removes a deleted project's files; a file already gone is no error, and one that cannot be
    removed is logged (by count, never by name) and does not stop the others."""
    failed = 0
    for name in files:
        try:
            default_storage.delete(name)
        except OSError:
            failed += 1
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    logger.info("project %s deleted: %s stored files removed", project_id, len(files) - failed)
    if failed:
        logger.warning("project %s deleted: %s stored files could not be removed", project_id, failed)


@transaction.atomic
def update_project(*, actor: Any, project: Project, changes: dict[str, Any]) -> Project:
    """Updates name, description, settings or label schema (validated; nothing stored on error)."""
    before = {k: getattr(project, k) for k in changes}
    if "label_schema" in changes:
        errors = validate_schema(changes["label_schema"])
        if errors:
            raise ValidationError({"label_schema": errors})
    for key, value in changes.items():
        setattr(project, key, value)
    project.save()
    record(actor=actor, action="project.update", target=project, project=project, before=before, after=changes)
    return project


def set_setting(*, actor: Any, project: Project, key: str, value: Any) -> bool:
    """Sets one of the project's settings, keeping the others (audited); False if it already had
    that value (nothing written)."""
    return set_settings(actor=actor, project=project, values={key: value})


def set_settings(*, actor: Any, project: Project, values: dict[str, Any]) -> bool:
    """Sets several of the project's settings in one audited change, keeping the others; False if
    it already had every one of those values (nothing written)."""
    if all(project.setting(k) == v for k, v in values.items()):
        return False
    update_project(actor=actor, project=project, changes={"settings": {**(project.settings or {}), **values}})
    return True


def keep_file_names(*, actor: Any, project: Project) -> bool:
    """Turns on the project's ``keep_file_names`` setting (audited); False if it was already on."""
    return set_setting(actor=actor, project=project, key="keep_file_names", value=True)


LAST_LEAD = "a project keeps at least one lead: make someone else lead first"


def _last_lead(membership: Membership) -> bool:
    """Whether no other member is lead. Locks the leads' rows (in the caller's transaction), so two
    leads demoting each other at the same moment cannot both succeed."""
    leads = list(membership.project.memberships.select_for_update().filter(role=Role.LEAD).values_list("pk", flat=True))
    return not [pk for pk in leads if pk != membership.pk]


@transaction.atomic
def set_membership(*, actor: Any, project: Project, user: Any, role: str) -> Membership:
    """Adds ``user`` with ``role`` or changes their role. A project keeps at least one lead: the
    last lead cannot be given another role (someone else must be made lead first)."""
    membership, created = Membership.objects.get_or_create(project=project, user=user, defaults={"role": role})
    before = None if created else {"role": membership.role}
    if not created and membership.role == Role.LEAD and role != Role.LEAD and _last_lead(membership):
        raise ValidationError({"role": [LAST_LEAD]})
    if not created:
        membership.role = role
        membership.save(update_fields=["role"])
    record(
        actor=actor,
        action="membership.set",
        target=membership,
        project=project,
        before=before,
        after={"user": user.username, "role": role},
    )
    return membership


@transaction.atomic
def remove_membership(*, actor: Any, membership: Membership) -> None:
    project = membership.project
    if membership.role == Role.LEAD and _last_lead(membership):
        raise ValidationError({"role": [LAST_LEAD]})
    record(
        actor=actor,
        action="membership.remove",
        target=membership,
        project=project,
        before={"user": membership.user.username, "role": membership.role},
    )
    membership.delete()
