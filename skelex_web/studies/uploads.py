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
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.utils import timezone

from skelex_web.projects.models import Project

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
        job = UploadJob.objects.create(project=project, uploader=actor, task_id=task_id, files=len(paths))
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
            error="", finished_at=timezone.now(),
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
                state=UploadState.FAILED, error=message, finished_at=timezone.now()
            )
    except Exception:  # the database may be what failed; the staged files must still go
        logger.exception("upload job %s could not be marked failed", job_id)
    finally:
        discard_staged(paths)


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
