"""Every state change of the exports app: create a dataset version, start and run an export.

Creating a version snapshots labels synchronously (database reads only, file hashes come from
``Image.sha256``); rendering a version into a zip is the slow part and runs as the Celery task
``workers.export.build`` on the export queue, or inline from ``manage.py export``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from skelex_web.audit.services import record as audit
from skelex_web.projects.models import Project
from skelex_web.recovery import JobSweep, lost_candidates, not_inspected, send_again

from . import snapshot
from .models import DatasetVersion, ExportFormat, ExportJob, ImageMode, JobState
from .render import open_manifest, render

logger = logging.getLogger(__name__)

EXPORT_TASK = "workers.export.build"
InvalidFilters = snapshot.InvalidFilters


class EmptyVersion(ValueError):
    """No image of the project matches: a dataset version of nothing is refused, not written."""


def _publish(project_id: int, payload: dict[str, Any]) -> None:
    try:
        from skelex_web import events
    except ImportError:  # events are best effort; an export never fails for want of a listener
        return
    events.publish(project_id, "job.progress", payload)


def _exports_dir(*parts: str) -> Path:
    path = Path(settings.MEDIA_ROOT, "exports", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _why_empty(project: Project, filters: dict[str, Any]) -> str:
    if not project.images.exclude(status="failed").exists():
        return "nothing to export: the project has no images yet"
    if filters != snapshot.normalise_filters(project, {}):
        return "nothing to export: no image matches these filters"
    return "nothing to export: no image is labelled yet (or include unlabelled images)"


def create_version(
    *,
    project: Project,
    actor: Any = None,
    name: str = "",
    filters: dict[str, Any] | None = None,
    split_seed: int = 0,
    split_ratios: dict[str, float] | None = None,
) -> DatasetVersion:
    """Snapshots the project's labels as a new immutable :class:`DatasetVersion`.

    Args:
        project: whose images and labels.
        actor: the user creating it (audited); None from the command line.
        name: a free-text label.
        filters: see :data:`snapshot.FILTER_KEYS`; unknown labels, heads or origins raise.
        split_seed: fixes the patient-level split.
        split_ratios: ``{"train": .8, "val": .1, "test": .1}`` by default.

    Raises:
        InvalidFilters: with per-field errors.
        EmptyVersion: no image matches (an empty project, or filters that leave nothing).
        ValueError: bad split ratios.
    """
    clean = snapshot.normalise_filters(project, filters)
    ratios = snapshot.normalise_ratios(split_ratios)
    tmp_dir = _exports_dir("versions", str(project.pk))
    fd, tmp_name = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            result = snapshot.write_manifest(project, out, filters=clean, seed=int(split_seed), ratios=ratios)
        if not result["image_count"]:
            raise EmptyVersion(_why_empty(project, clean))
        for _attempt in range(5):
            number = (DatasetVersion.objects.filter(project=project).aggregate(m=Max("number"))["m"] or 0) + 1
            rel = snapshot.manifest_path(number, project.pk, result["content_hash"])
            try:
                with transaction.atomic():
                    version = DatasetVersion.objects.create(
                        project=project,
                        number=number,
                        name=name,
                        filters=clean,
                        split_seed=int(split_seed),
                        split_ratios=result["header"]["split"]["ratios"],
                        manifest=rel,
                        content_hash=result["content_hash"],
                        image_count=result["image_count"],
                        annotation_count=result["annotation_count"],
                        summary=result["summary"],
                        created_by=actor if getattr(actor, "is_authenticated", False) else None,
                    )
                    audit(
                        actor=actor,
                        action="dataset_version.create",
                        target=version,
                        project=project,
                        after={"number": number, "content_hash": version.content_hash, "images": version.image_count},
                    )
            except IntegrityError:  # two leads created a version at the same moment: take the next number
                continue
            os.replace(tmp_name, Path(settings.MEDIA_ROOT, rel))
            return version
        raise RuntimeError("could not allocate a dataset version number")
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def start_export(
    *,
    version: DatasetVersion,
    actor: Any = None,
    fmt: str = ExportFormat.COCO,
    images: str = ImageMode.PNG16,
    embeddings: bool = False,
) -> ExportJob:
    """Creates an export job and enqueues ``workers.export.build`` once the transaction commits."""
    with transaction.atomic():
        job = _create_job(version, actor, fmt, images, embeddings)

        def send() -> None:
            from skelex_web.celery import app

            app.send_task(EXPORT_TASK, args=[job.pk])

        transaction.on_commit(send)
    return job


def run_export(job_id: int) -> ExportJob:
    """Renders the job's zip under ``MEDIA_ROOT/exports/<project>/``; idempotent once done.

    Progress goes to the job row and to ``job.progress`` events (``{"job": "export:<id>", ...}``).
    A failure marks the job failed with the error and re-raises.
    """
    job = ExportJob.objects.select_related("version__project").get(pk=job_id)
    if job.state == JobState.DONE and job.file and Path(settings.MEDIA_ROOT, job.file.name).exists():
        return job
    version = job.version
    project = version.project
    ExportJob.objects.filter(pk=job.pk).update(state=JobState.RUNNING, error="", done=0)
    label = f"export:{job.pk}"

    def progress(done: int, total: int) -> None:
        ExportJob.objects.filter(pk=job.pk).update(done=done, total=total)
        _publish(project.pk, {"job": label, "done": done, "total": total})

    folder = _exports_dir(str(project.pk))
    final = folder / f"{project.slug}-v{version.number}-{job.format}-{job.images}-{job.pk}.zip"
    tmp = final.with_suffix(".zip.part")
    try:
        render(version, job.format, job.images, tmp, progress, embeddings=job.embeddings)
        digest = hashlib.sha256()
        with open(tmp, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        os.replace(tmp, final)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        ExportJob.objects.filter(pk=job.pk).update(
            state=JobState.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        _publish(project.pk, {"job": label, "done": 0, "total": job.total, "state": JobState.FAILED})
        raise
    ExportJob.objects.filter(pk=job.pk).update(
        state=JobState.DONE,
        file=str(final.relative_to(settings.MEDIA_ROOT)),
        size=final.stat().st_size,
        sha256=digest.hexdigest(),
        finished_at=timezone.now(),
    )
    _publish(project.pk, {"job": label, "done": job.total, "total": job.total, "state": JobState.DONE})
    job.refresh_from_db()
    return job


_WAITING = (JobState.QUEUED, JobState.RUNNING)
EXPORT_TWICE = (
    "The export was interrupted twice (its worker stopped or lost its queue while building it); it is not"
    " tried a third time. Start a new export of this version to try again."
)


def recover_exports(
    older_than: timedelta, *, orphaned: bool = False, dry_run: bool = False, broker_url: str | None = None
) -> JobSweep:
    """Sends again, or fails, the export jobs whose build message was lost (see ``skelex_web/recovery.py``).

    Args:
        older_than: a job created longer ago than this, with no message in the broker, is lost.
        orphaned: the caller knows no message survives (the embedded worker's start-up): every
            queued or running job is lost, whatever its age, and the broker is not read.
        dry_run: report only.
        broker_url: the broker to read; None = ``CELERY_BROKER_URL``.

    A lost export is built again from its frozen dataset version, once; stuck again after that, it
    is marked failed. Rows locked by a concurrent sweep are skipped.

    Raises:
        kombu / redis connection errors: the broker is unreachable (nothing is changed then).
    """
    now = timezone.now()
    with transaction.atomic():
        stuck, calls = lost_candidates(
            ExportJob.objects.filter(state__in=_WAITING),
            ("pk", "resent_at", "version__project_id"),
            EXPORT_TASK,
            now - older_than,
            orphaned=orphaned,
            broker_url=broker_url,
        )
        if calls is None:
            return not_inspected("export job", stuck, dry_run)
        held = {int(args[0]) for args, _ in calls if args}
        resent = [pk for pk, resent_at, _ in stuck if pk not in held and resent_at is None]
        failed = [pk for pk, resent_at, _ in stuck if pk not in held and resent_at is not None]
        if not dry_run:
            for pk in resent:
                ExportJob.objects.filter(pk=pk).update(state=JobState.QUEUED, done=0, error="", resent_at=now)
                transaction.on_commit(lambda pk=pk: send_again(EXPORT_TASK, [pk], f"export job {pk}"))
            ExportJob.objects.filter(pk__in=failed, state__in=_WAITING).update(
                state=JobState.FAILED, error=EXPORT_TWICE, finished_at=now
            )
    if not dry_run:  # the half-written zips of the failed ones (a resent one writes its own again)
        for pk, _, project_id in stuck:
            if pk in failed:
                for part in Path(settings.MEDIA_ROOT, "exports", str(project_id)).glob(f"*-{pk}.zip.part"):
                    part.unlink(missing_ok=True)
    result = JobSweep(
        "export job",
        stuck=[r[0] for r in stuck],
        in_broker=[r[0] for r in stuck if r[0] in held],
        resent=resent,
        failed=failed,
        broker_checked=not orphaned,
        orphaned=orphaned,
        dry_run=dry_run,
    )
    if result.changed:
        logger.warning("lost export sweep: %s", result.summary().replace("\n", "; "))
    return result


def export_now(
    *, version: DatasetVersion, fmt: str, images: str, actor: Any = None, embeddings: bool = False
) -> ExportJob:
    """Creates and runs an export inline (command line, tests): no broker needed."""
    with transaction.atomic():
        job = _create_job(version, actor, fmt, images, embeddings)
    return run_export(job.pk)


class ImagesGone(ValueError):
    """Images of a version were deleted after it was made: its image files cannot be exported."""


def deleted_images(version: DatasetVersion) -> int:
    """How many of the version's images were deleted since it was made (their files went with them)."""
    from skelex_web.studies.models import Image

    _, records = open_manifest(version)
    ids = [int(r["image"]) for r in records()]
    kept = 0
    for start in range(0, len(ids), 5000):
        kept += Image.objects.filter(pk__in=ids[start : start + 5000]).count()
    return len(ids) - kept


def _create_job(version: DatasetVersion, actor: Any, fmt: str, images: str, embeddings: bool = False) -> ExportJob:
    """Validates format and image mode, then stores an audited, queued job (caller holds a transaction).

    An export with image files of a version some of whose images were deleted since (a wrong upload,
    a film with a name in its pixels) is refused with ``ImagesGone``, before anything is queued: the
    version's labels still export (``images="none"``), or a new version leaves those images out."""
    if fmt not in ExportFormat.values:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(ExportFormat.values)}")
    if images not in ImageMode.values:
        raise ValueError(f"unknown image mode {images!r}; one of {', '.join(ImageMode.values)}")
    if images != ImageMode.NONE and (gone := deleted_images(version)):
        raise ImagesGone(
            f"{gone} image{'s' if gone != 1 else ''} of dataset version {version.number} "
            f"{'were' if gone != 1 else 'was'} deleted after it was made, with {'their' if gone != 1 else 'its'} "
            "files: export its labels without image files, or make a new version of the labels as they are now"
        )
    job = ExportJob.objects.create(
        version=version,
        format=fmt,
        images=images,
        embeddings=embeddings,
        total=version.image_count,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    after = {"format": fmt, "images": images, "version": version.number, "embeddings": embeddings}
    audit(actor=actor, action="export.start", target=job, project=version.project, after=after)
    return job
