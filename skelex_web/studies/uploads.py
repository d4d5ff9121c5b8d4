"""Queued uploads: the staged files, the job that reports each file's fate, and the task body.

An upload too large to ingest inline (``api_upload``) is written to ``MEDIA_ROOT/staging/<hex>/``
as ``00000``, ``00001``, ... with the uploaded names in a sidecar, ``names.json``; an
:class:`~.models.UploadJob` row is created, then ``workers.ingest.import_files`` is sent with
the staged paths and ids only. An uploaded name can carry a patient's name
(``DOE_JOHN_1960-01-02.jpg``), and the broker keeps a message until a worker acknowledges it
(Redis may write it to disk). The ingest still reads the names from the sidecar: a project that
keeps file names (``keep_file_names``) stores them as ``Image.name``.

The job's per-file results name no file either. Each entry says where the file was in the request
(``index``, 1-based) and, for a zip member, where it was among that archive's results (``entry``,
1-based; a member's path inside the zip is a name too). Reasons lose the ``"<name>: "`` prefix
every imaging error starts with, and any other mention of the name.

Staged files survive a failed attempt, so the task's retries (database errors) ingest them again
(files stored by the failed attempt then come back as duplicates); they are deleted once the
ingest is done or the task has failed for good (:func:`fail_upload`).
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.db import transaction
from django.utils import timezone

from skelex_web.projects.models import Project
from skelex_web.recovery import JobSweep, lost_candidates, not_inspected, send_again

from .ingest_sources import is_zip
from .models import UploadJob, UploadState
from .services import REJECTED, IngestResult, count_statuses, ingest_many

logger = logging.getLogger(__name__)

IMPORT_TASK = "workers.ingest.import_files"
NAMES_FILE = "names.json"
_FINISHED = (UploadState.DONE, UploadState.FAILED)


class QueueUnavailable(Exception):
    """The broker refused the task; nothing of the upload was kept."""


def staging_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "staging"


# --- staging -----------------------------------------------------------------------------------


def stage_files(uploads: Iterable[tuple[str, Iterable[bytes]]]) -> list[Path]:
    """Writes each upload (name, chunks) to a new staging folder, names in the sidecar only.

    The staged files are called by position (``00000``), never by the uploaded name. If writing
    fails, the folder is removed again.
    """
    folder = staging_root() / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        paths, names = [], {}
        for i, (name, chunks) in enumerate(uploads):
            path = folder / f"{i:05d}"
            with path.open("wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            paths.append(path)
            names[path.name] = name or f"file-{i + 1}"
        (folder / NAMES_FILE).write_text(json.dumps(names), encoding="utf-8")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return paths


def staged_items(paths: Sequence[str]) -> list[tuple[str, Path]]:
    """``(uploaded name, staged path)`` for the task's paths, names read from each folder's sidecar.

    A ``"name\\tpath"`` string (messages queued before the names moved to the sidecar) carries its
    own name; a file the sidecar does not list goes by its staged name.
    """
    sidecars: dict[Path, dict[str, str]] = {}
    items = []
    for item in paths:
        if "\t" in item:
            name, raw = item.split("\t", 1)
            items.append((name, Path(raw)))
            continue
        path = Path(item)
        if path.parent not in sidecars:
            sidecars[path.parent] = _read_names(path.parent / NAMES_FILE)
        items.append((sidecars[path.parent].get(path.name) or path.name, path))
    return items


def _read_names(sidecar: Path) -> dict[str, str]:
    try:
        names = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}


def discard_staged(paths: Sequence[str]) -> None:
    """Deletes the staged files, their sidecars and their folders (only folders under staging/)."""
    root = staging_root().resolve()
    folders = set()
    for item in paths:
        path = Path(item.split("\t", 1)[-1])
        path.unlink(missing_ok=True)
        folders.add(path.parent)
    for folder in folders:
        (folder / NAMES_FILE).unlink(missing_ok=True)
        if folder.resolve().parent == root:
            try:
                folder.rmdir()
            except OSError:  # not empty (someone else's file?) or already gone: leave it
                pass


# --- the job -----------------------------------------------------------------------------------


def queue_upload(project: Project, actor: Any, uploads: Iterable[tuple[str, Iterable[bytes]]]) -> UploadJob:
    """Stages the files, records the job, then sends the ingest task; returns the job.

    Call outside a transaction: the worker must be able to read the job row when the message
    arrives. Raises :class:`QueueUnavailable` if the broker refuses the task, after removing the
    job row and the staged files.
    """
    from skelex_web.celery import app

    paths = stage_files(uploads)
    task_id = str(uuid.uuid4())
    try:
        job = UploadJob.objects.create(
            project=project,
            uploader=actor,
            task_id=task_id,
            files=len(paths),
            staging=paths[0].parent.name if paths else "",
        )
    except BaseException:
        discard_staged([str(p) for p in paths])
        raise
    args = [project.pk, [str(p) for p in paths], getattr(actor, "pk", None), job.pk]
    try:
        app.send_task(IMPORT_TASK, args=args, queue="ingest", task_id=task_id)
    except Exception as exc:  # kombu raises many types for a broker that is down
        job.delete()
        discard_staged(args[1])
        raise QueueUnavailable(str(exc)) from exc
    return job


def import_staged(
    project_id: int, paths: list[str], actor_id: int | None = None, job_id: int | None = None
) -> list[IngestResult]:
    """Celery task body (``workers.ingest.import_files``): ingest staged files, record the job, delete them.

    The job (if any) is marked running, then done with its per-file results. A job already
    finished (the message delivered again after a worker died before acknowledging it) is left as
    it is and nothing is ingested. If the ingest raises, the staged files stay for a retry.
    """
    project = Project.objects.get(pk=project_id)
    if job_id is not None and not _begin(job_id):
        logger.info("upload job %s already finished; its staged files are discarded", job_id)
        discard_staged(paths)
        return []
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    results: list[IngestResult] = []
    entries: list[dict[str, Any]] = []
    for first, run, archive in _runs(staged_items(paths)):
        got = ingest_many(project, run, actor=actor)
        results += got
        entries += per_file_results(first, run, archive, got)
    if job_id is not None:
        UploadJob.objects.filter(pk=job_id).update(
            state=UploadState.DONE, results=entries, counts=count_statuses(e["status"] for e in entries),
            error="", finished_at=timezone.now(), staging="",
        )  # fmt: skip
    discard_staged(paths)
    return results


def _runs(items: list[tuple[str, Path]]) -> Iterator[tuple[int, list[tuple[str, Path]], bool]]:
    """``(1-based index of the first, items, is a zip)``: each zip alone, consecutive plain files together.

    One ingest per run, so each run's results belong to its files by construction (one result per
    plain file; a zip's members or the one refusal of the archive), whatever the names; plain
    files still share the ingest's batched decoding and commits.
    """
    run: list[tuple[str, Path]] = []
    for index, item in enumerate(items, 1):
        if is_zip(item[1]):
            if run:
                yield index - len(run), run, False
                run = []
            yield index, [item], True
        else:
            run.append(item)
    if run:
        yield len(items) - len(run) + 1, run, False


def _begin(job_id: int) -> bool:
    """Marks the job running; False if it has finished already."""
    UploadJob.objects.filter(pk=job_id, state=UploadState.QUEUED).update(
        state=UploadState.RUNNING, started_at=timezone.now()
    )
    return not UploadJob.objects.filter(pk=job_id, state__in=_FINISHED).exists()


def fail_upload(paths: list[str], job_id: int | None, exc: BaseException, retries: int = 0) -> None:
    """The task failed for good (after its retries): the job records why, the staged files go.

    The message names the error but no file (names are scrubbed from the exception's text).
    """
    names = [name for name, _ in staged_items(paths)]
    try:
        if job_id is not None:
            after = f" after {retries} {'retry' if retries == 1 else 'retries'}" if retries else ""
            detail = scrub_names(str(exc), *names)[:300]
            message = (
                f"The import stopped with an error{after}: {type(exc).__name__}"
                + (f" ({detail})" if detail else "")
                + ". Files stored before the error stay in the project; uploading again reports"
                " them as duplicates."
            )
            UploadJob.objects.filter(pk=job_id).exclude(state=UploadState.DONE).update(
                state=UploadState.FAILED, error=message, finished_at=timezone.now(), staging=""
            )
    except Exception:  # the database may be what failed; the staged files must still go
        logger.exception("upload job %s could not be marked failed", job_id)
    finally:
        discard_staged(paths)


# --- jobs whose message was lost (see skelex_web/recovery.py) ----------------------------------------

_WAITING = (UploadState.QUEUED, UploadState.RUNNING)
_STORED_STAY = " Files stored before the interruption stay in the project; uploading again reports them as duplicates."
GONE = (
    "The import was interrupted and its staged files are gone (the app or its worker stopped, or the task gave up"
    " while the database was unreachable)."
)
TWICE = (
    "The import was interrupted twice (its worker stopped or lost its queue while ingesting these files); it is"
    " not tried a third time."
)


def staged_folder_paths(folder: str) -> list[str]:
    """The staged files of one staging folder (``00000``, ``00001``, ...) in upload order; [] if none."""
    if not _plain_name(folder):
        return []
    base = staging_root() / folder
    try:
        return sorted(str(p) for p in base.iterdir() if p.is_file() and p.name.isdigit())
    except OSError:
        return []


def _plain_name(folder: str) -> bool:
    """A folder name straight under staging/ (what ``stage_files`` makes), nothing that climbs out."""
    return bool(folder) and "/" not in folder and "\\" not in folder and not folder.startswith(".")


def recover_uploads(
    older_than: timedelta, *, orphaned: bool = False, dry_run: bool = False, broker_url: str | None = None
) -> JobSweep:
    """Sends again, or fails, the upload jobs whose import message was lost; removes abandoned staging folders.

    Args:
        older_than: a job created longer ago than this, with no message in the broker, is lost;
            a staging folder untouched for longer, that no waiting job or message uses, is abandoned.
        orphaned: the caller knows no message survives (the embedded worker's start-up): every
            queued or running job is lost, whatever its age, and the broker is not read.
        dry_run: report only.
        broker_url: the broker to read; None = ``CELERY_BROKER_URL``.

    A lost job whose staged files are still there is sent again once (back to "queued"; files the
    first attempt stored come back as duplicates); one whose files are gone, or that was sent again
    already, is marked failed with the reason. Rows locked by a concurrent sweep are skipped.

    Raises:
        kombu / redis connection errors: the broker is unreachable (nothing is changed then).
    """
    now = timezone.now()
    cutoff = now - older_than
    with transaction.atomic():
        stuck, calls = lost_candidates(
            UploadJob.objects.filter(state__in=_WAITING),
            ("pk", "staging", "resent_at", "project_id", "uploader_id"),
            IMPORT_TASK,
            cutoff,
            orphaned=orphaned,
            broker_url=broker_url,
        )
        if calls is None:
            return not_inspected("upload job", stuck, dry_run)
        held_jobs: set[int] = set()
        held_folders: set[str] = set()
        for args, kwargs in calls:
            job_id = args[3] if len(args) > 3 else kwargs.get("job_id")
            if job_id is not None:
                held_jobs.add(int(job_id))
            paths = args[1] if len(args) > 1 else kwargs.get("paths") or []
            held_folders.update(Path(str(p).split("\t", 1)[-1]).parent.name for p in paths)
        resent, failed = [], []
        for pk, folder, resent_at, project_id, uploader_id in stuck:
            if pk in held_jobs:
                continue
            paths = staged_folder_paths(folder)
            if paths and resent_at is None:
                resent.append((pk, project_id, uploader_id, paths))
            else:
                failed.append((pk, GONE if not paths else TWICE, folder))
        gone = {folder for _, _, folder in failed if folder}
        busy = {f for f in UploadJob.objects.filter(state__in=_WAITING).values_list("staging", flat=True) if f}
        abandoned = _abandoned_folders(cutoff, (busy - gone) | held_folders)
        if not dry_run:
            for pk, project_id, uploader_id, paths in resent:
                task_id = str(uuid.uuid4())
                UploadJob.objects.filter(pk=pk).update(
                    state=UploadState.QUEUED, task_id=task_id, resent_at=now, error="", started_at=None
                )
                args = [project_id, paths, uploader_id, pk]
                transaction.on_commit(
                    lambda a=args, t=task_id, pk=pk: send_again(
                        IMPORT_TASK, a, f"upload job {pk}", queue="ingest", task_id=t
                    )
                )
            for pk, reason, _ in failed:
                UploadJob.objects.filter(pk=pk, state__in=_WAITING).update(
                    state=UploadState.FAILED, error=reason + _STORED_STAY, finished_at=now, staging=""
                )
    if not dry_run:
        for folder in sorted(gone | set(abandoned)):
            if _plain_name(folder):
                shutil.rmtree(staging_root() / folder, ignore_errors=True)
    result = JobSweep(
        "upload job",
        stuck=[r[0] for r in stuck],
        in_broker=[r[0] for r in stuck if r[0] in held_jobs],
        resent=[r[0] for r in resent],
        failed=[f[0] for f in failed],
        broker_checked=not orphaned,
        orphaned=orphaned,
        dry_run=dry_run,
        folders_removed=abandoned,
    )
    if result.changed:
        logger.warning("lost upload sweep: %s", result.summary().replace("\n", "; "))
    return result


def _abandoned_folders(cutoff: datetime, keep: set[str]) -> list[str]:
    """Staging folders untouched since ``cutoff`` that ``keep`` does not name."""
    root = staging_root()
    if not root.is_dir():
        return []
    stamp = cutoff.timestamp()
    found = []
    for folder in root.iterdir():
        try:
            if folder.is_dir() and folder.name not in keep and folder.stat().st_mtime < stamp:
                found.append(folder.name)
        except OSError:  # removed meanwhile
            continue
    return sorted(found)


# --- one request's files: inline or queued -------------------------------------------------------

INLINE_MAX_FILES = 20
INLINE_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Received:
    """What became of one request's files: ``results`` when ingested inline, ``job`` when queued."""

    results: list[IngestResult] | None = None
    job: UploadJob | None = None


def receive_uploads(project: Project, actor: Any, uploads: Sequence[UploadedFile]) -> Received:
    """Ingests a small upload at once; stages and queues a larger one (the API and the project page).

    Up to :data:`INLINE_MAX_FILES` files and :data:`INLINE_MAX_BYTES` are ingested in the request;
    more go to the ingest queue as an :class:`UploadJob`. Raises :class:`QueueUnavailable` as
    :func:`queue_upload` does. The caller checks ``MAX_UPLOAD_BYTES`` first.
    """
    total = sum(f.size or 0 for f in uploads)
    if len(uploads) > INLINE_MAX_FILES or total > INLINE_MAX_BYTES:
        return Received(job=queue_upload(project, actor, [(f.name or "", f.chunks()) for f in uploads]))
    items = [(f.name or f"file-{i}", _source(f)) for i, f in enumerate(uploads, 1)]
    return Received(results=ingest_many(project, items, actor=actor))


def _source(upload: UploadedFile) -> bytes | Path:
    """Spooled uploads are read from their temporary file; small ones from memory."""
    if isinstance(upload, TemporaryUploadedFile):
        return Path(upload.temporary_file_path())
    upload.seek(0)
    return upload.read()


# --- per-file results --------------------------------------------------------------------------


def per_file_results(
    first: int, run: list[tuple[str, Path]], archive: bool, results: list[IngestResult]
) -> list[dict[str, Any]]:
    """The job entries of one run of :func:`_runs`: ``{"index", "entry", "status", "reason", "image_ids"}``.

    ``results`` are :func:`ingest_many`'s for ``run``: one per plain file, in order; for a zip (a
    run of its own), one per member (named ``"<zip>/<member>"``) or one for the archive itself if
    it could not be opened. A zip with no files gets a rejected entry, so every index is answered.
    """
    if archive:
        name = run[0][0]
        if not results:
            return [_entry(first, None, REJECTED, "zip archive with no files", [])]
        if len(results) == 1 and results[0].name == name:  # the archive itself was refused
            r = results[0]
            return [_entry(first, None, r.status, scrub_names(r.reason, name), r.image_ids)]
        return [
            _entry(first, k, r.status, scrub_names(r.reason, r.name, name, r.name[len(name) + 1 :]), r.image_ids)
            for k, r in enumerate(results, 1)
        ]
    return [
        _entry(index, None, r.status, scrub_names(r.reason, r.name, name), r.image_ids)
        for index, (name, _), r in zip(range(first, first + len(run)), run, results, strict=True)
    ]


def _entry(index: int, entry: int | None, status: str, reason: str, image_ids: list[int]) -> dict[str, Any]:
    return {"index": index, "entry": entry, "status": status, "reason": reason, "image_ids": list(image_ids)}


def scrub_names(text: str, *names: str) -> str:
    """``text`` without the names: the ``"<name>: "`` prefix of an imaging error goes, and any
    other mention of a name (whole, or its base name) becomes ``(file)``.

    Names shorter than 4 characters are left in the text (``a.x`` carries no one's name, and
    replacing it would mangle words).
    """
    for name in names:
        if name and text.startswith(f"{name}: "):
            text = text[len(name) + 2 :]
            break
    candidates = {n for name in names if name for n in (name, PurePosixPath(name.replace("\\", "/")).name)}
    for name in sorted(candidates, key=len, reverse=True):
        if len(name) >= 4:
            text = text.replace(name, "(file)")
    return text
