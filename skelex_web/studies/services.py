"""Ingest: files in any supported format → de-identified originals, display PNGs, thumbnails,
``Image`` and ``Study`` rows, and analysis enqueued once the rows are committed; and the way out
again, :func:`delete_image` (audited).

Every path (API upload, ``import_images``, ``import_dataset``, the ingest Celery task) ends in
:func:`ingest_file`. Guarantees:

- One result per input file: ``ingested``, ``duplicate`` (same remapped SOP Instance UID + frame,
  or same pixel hash, already in the project) or ``rejected`` with a reason naming the problem.
  One bad file never stops a batch.
- Nothing half-written: the files are written first, then the rows in one transaction; if
  anything fails, the files just written are deleted again.
- Stored names are random (``originals/<project>/<uuid>.dcm``), never the uploaded name, which
  may carry PHI. When de-identifying, the display name (``Image.name``) is a pseudonym too
  (:func:`_safe_name`). Logs carry counts and problems, never names or patient data.
- Analysis is enqueued by task name only (no torch in the web process), on commit, in batches
  of ``settings.ANALYSIS_BATCH_SIZE`` (:func:`queue_analysis`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q

from skelex_web import events
from skelex_web.audit.services import record
from skelex_web.projects.models import Project
from workers.imaging import ImagingError, read_source, sniff
from workers.imaging.deid import pseudonym
from workers.imaging.errors import fail
from workers.imaging.prepare import PreparedFile, PreparedFrame, prepare_file

from .ingest_sources import expand_sources
from .models import Image, ImageStatus, Study

logger = logging.getLogger(__name__)

INGESTED, DUPLICATE, REJECTED = "ingested", "duplicate", "rejected"
_EXTENSIONS = {"dicom": "dcm", "png": "png", "jpeg": "jpg", "tiff": "tif"}


@dataclass
class IngestResult:
    """The outcome for one input file (one archive entry counts as one file).

    ``image_id`` is the first (or only) image; ``image_ids`` lists one per frame. For a duplicate
    they point at the images already stored.
    """

    name: str
    status: str
    reason: str = ""
    image_id: int | None = None
    image_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def project_key(project: Project) -> bytes:
    """The project's de-identification key, derived from ``settings.DEID_KEY``: pseudonyms are
    stable within the project and unlinkable across projects."""
    return hmac.new(settings.DEID_KEY.encode(), f"skelex-project:{project.pk}".encode(), hashlib.sha256).digest()


def queue_analysis(image_ids: list[int], *, mark_queued: bool = True) -> int:
    """Sends ``workers.analysis.analyse_images`` for the images in batches; returns batches sent.

    Images go from ``ingested`` to ``queued`` (``mark_queued=False``: the caller stored them as
    ``queued`` already, saving a commit per file). Best effort: a broker that is down is logged
    and leaves the images ``ingested`` (a later sweep or a manual re-analysis picks them up); it
    never fails the ingest.
    """
    from skelex_web.celery import app

    size = max(1, int(settings.ANALYSIS_BATCH_SIZE))
    sent = 0
    # One commit for all the status changes: in autocommit each UPDATE would be its own commit (a
    # disk flush per batch of 8, more than the rest of ingesting those images on SQLite).
    with transaction.atomic():
        for start in range(0, len(image_ids), size):
            batch = list(image_ids[start : start + size])
            try:
                app.send_task("workers.analysis.analyse_images", args=[batch], queue="gpu")
            except Exception as exc:  # noqa: BLE001 - kombu raises many types; ingest must still succeed
                logger.warning("analysis of %d images not enqueued (%s); they stay 'ingested'", len(batch), exc)
                Image.objects.filter(pk__in=batch, status=ImageStatus.QUEUED).update(status=ImageStatus.INGESTED)
                continue
            if mark_queued:
                Image.objects.filter(pk__in=batch, status=ImageStatus.INGESTED).update(status=ImageStatus.QUEUED)
            sent += 1
    return sent


def ingest_file(
    project: Project,
    source: str | Path | bytes,
    name: str,
    *,
    actor: Any = None,
    enqueue: bool = True,
) -> IngestResult:
    """Ingests one image file (not an archive; see :func:`ingest_many`).

    Args:
        project: where the image goes; its ``deidentify`` setting decides de-identification
            (DICOM attributes, PNG/JPEG/TIFF metadata).
        source: a path or the file's bytes.
        name: the name the user knows the file by; echoed in the result, never logged, and not
            stored when de-identifying (unless ``keep_file_names``, and then never for DICOM).
        actor: the user importing (for events); None for command-line imports.
        enqueue: send the new images to analysis on commit (:func:`ingest_many` batches instead).
    """
    staged = _stage(project, source, name)
    if isinstance(staged, IngestResult):
        return staged
    result = _insert(project, staged, ImageStatus.QUEUED if enqueue else ImageStatus.INGESTED)
    if enqueue and result.status == INGESTED:
        ids = result.image_ids
        transaction.on_commit(lambda: queue_analysis(ids, mark_queued=False))
    return result


@dataclass
class _Staged:
    """A decoded file whose renditions are on storage but whose rows are not written yet."""

    name: str
    prepared: PreparedFile
    display_name: str
    original: str
    renditions: list[tuple[PreparedFrame, str, str]]  # frame, display path, thumbnail path
    written: list[str]

    def discard(self) -> None:
        for path in self.written:
            try:
                default_storage.delete(path)
            except OSError:
                logger.warning("could not remove a file after a failed ingest")
        self.written = []


def _stage(project: Project, source: str | Path | bytes, name: str) -> _Staged | IngestResult:
    """Decode, de-identify, check for duplicates and write the files; no database writes."""
    decoded = _decode(source, name, project_key(project), bool(project.setting("deidentify")))
    return decoded if isinstance(decoded, IngestResult) else _write(project, decoded, name)


def _decode(source: str | Path | bytes, name: str, key: bytes, deidentify: bool) -> PreparedFile | IngestResult:
    """The pure part of ingest (no ORM): safe to run in a worker thread."""
    try:
        data = read_source(source, name, settings.MAX_UPLOAD_BYTES)
        if sniff(data[:8]) == "zip":
            raise fail(name, "zip archives are opened by the batch importer (ingest_many), not here")
        return prepare_file(data, name, key=key, deidentify=deidentify, max_pixels=settings.MAX_IMAGE_PIXELS)
    except ImagingError as exc:
        logger.info("ingest rejected a file: %s", exc.problem)
        return IngestResult(name, REJECTED, str(exc))
    except MemoryError:
        return IngestResult(name, REJECTED, f"{name}: not enough memory to decode this image")


def _write(
    project: Project,
    prepared: PreparedFile,
    name: str,
    duplicates: dict[int, int] | None = None,
    studies: dict[str, str] | None = None,
) -> _Staged | IngestResult:
    """Duplicate check (unless the caller did it: ``duplicates`` as :func:`_existing` returns) and
    the study's patient check (``studies``: what the caller's earlier files filed), then the
    original and renditions written to storage (no rows yet)."""
    if duplicates is None:
        duplicates = _existing(project, prepared.frames)
    if len(duplicates) == len(prepared.frames):
        ids = sorted(set(duplicates.values()))
        return IngestResult(name, DUPLICATE, f"{name}: already in the project", ids[0], ids)
    refused = _other_patients_study(project, name, prepared, {} if studies is None else studies)
    if refused is not None:
        return refused
    display_name = _safe_name(prepared, name, project)
    staged = _Staged(name, prepared, display_name, "", [], [])

    def save(folder: str, ext: str, payload: bytes) -> str:
        path = default_storage.save(f"{folder}/{project.pk}/{uuid.uuid4().hex}.{ext}", ContentFile(payload))
        staged.written.append(path)
        return path

    try:
        staged.original = save("originals", _EXTENSIONS.get(prepared.file_format, "bin"), prepared.original)
        staged.renditions = [
            (frame, save("display", "png", frame.display_png), save("thumbs", "png", frame.thumbnail_png))
            for index, frame in enumerate(prepared.frames)
            if index not in duplicates
        ]
    except BaseException:
        staged.discard()
        raise
    return staged


def _insert(project: Project, staged: _Staged, status: str) -> IngestResult:
    """Writes the rows of one staged file in a transaction (a savepoint inside a batch); on any
    failure its files are removed again. A unique-constraint clash means another file of this
    batch, or a concurrent ingest, stored the same image first: reported as duplicate."""
    try:
        with transaction.atomic():
            images = _rows(project, staged, status)
            for image in images:
                image.save(force_insert=True)
    except IntegrityError:
        staged.discard()
        ids = sorted(set(_existing(project, staged.prepared.frames).values()))
        return IngestResult(
            staged.name, DUPLICATE, f"{staged.name}: already in the project", ids[0] if ids else None, ids
        )
    except BaseException:
        staged.discard()
        raise
    _announce(project, images)
    return _result(staged, images)


def _insert_group(project: Project, group: list[_Staged], status: str) -> list[IngestResult]:
    """The rows of several staged files in one multi-row INSERT; if any clashes with a unique
    constraint (the same image twice in the group, or a concurrent ingest), the group falls back
    to :func:`_insert` file by file, so only the clashing file becomes a duplicate. Call inside
    a transaction; the caller removes the files if this raises."""
    try:
        with transaction.atomic():  # a savepoint: the fallback starts from a clean state
            rows = [_rows(project, staged, status) for staged in group]
            Image.objects.bulk_create([image for images in rows for image in images])
    except IntegrityError:
        return [_insert(project, staged, status) for staged in group]
    _announce(project, [image for images in rows for image in images])
    return [_result(staged, images) for staged, images in zip(group, rows, strict=True)]


def _rows(project: Project, staged: _Staged, status: str) -> list[Image]:
    """The unsaved ``Image`` rows of one staged file (its ``Study`` is fetched or created)."""
    study = _study(project, staged.prepared)
    return [
        _image_row(project, study, staged.prepared, frame, staged.display_name, staged.original, display, thumb, status)
        for frame, display, thumb in staged.renditions
    ]


def _announce(project: Project, images: list[Image]) -> None:
    """``image.ingested`` for each new image, sent together once the rows are committed."""
    payloads = [{"image": image.pk, "name": image.name, "status": image.status} for image in images]
    events.publish_many(project.pk, "image.ingested", payloads)


def _result(staged: _Staged, images: list[Image]) -> IngestResult:
    ids = [image.pk for image in images]
    return IngestResult(staged.name, INGESTED, "", ids[0], ids)


def _existing(project: Project, frames: list[PreparedFrame]) -> dict[int, int]:
    """Frame index → id of an image already in the project with the same SOP UID + frame or pixels."""
    found: dict[int, int] = {}
    hashes = [f.pixel_sha256 for f in frames]
    uids = {f.decoded.sop_instance_uid for f in frames if f.decoded.sop_instance_uid}
    query = Q(pixel_sha256__in=hashes)
    if uids:
        query |= Q(sop_instance_uid__in=uids)
    rows = list(
        Image.objects.filter(project=project)
        .filter(query)
        .values_list("pk", "pixel_sha256", "sop_instance_uid", "frame_index")
    )
    for index, frame in enumerate(frames):
        for pk, pixel_sha, sop, frame_index in rows:
            same_sop = bool(sop) and sop == frame.decoded.sop_instance_uid and frame_index == frame.decoded.frame_index
            if pixel_sha == frame.pixel_sha256 or same_sop:
                found[index] = pk
                break
    return found


def _safe_name(prepared: PreparedFile, name: str, project: Project) -> str:
    """``Image.name``, what the UI shows and exports build file names from.

    De-identifying, it is a pseudonym (``cr-3fa2c1d09b7e.dcm``, ``jpeg-3fa2c1d09b7e.jpg``) from the
    hash of the de-identified original, because an uploaded name can carry PHI
    (``DOE_JOHN_1960-01-02.jpg``). The project setting ``keep_file_names`` keeps PNG/JPEG/TIFF base
    names, for public anonymised datasets whose names are their identifiers; DICOM names come from
    scanners and PACS and are replaced regardless. Not de-identifying, it is the base name.
    """
    fmt = prepared.file_format
    if project.setting("deidentify") and (fmt == "dicom" or not project.setting("keep_file_names")):
        prefix = (prepared.frames[0].decoded.modality or "dicom") if fmt == "dicom" else fmt
        return f"{prefix.lower()}-{prepared.sha256[:12]}.{_EXTENSIONS.get(fmt, 'bin')}"
    return PurePosixPath(name.replace("\\", "/")).name[:255] or f"image-{prepared.sha256[:12]}"


def _patient_of(project: Project, prepared: PreparedFile) -> str:
    """The patient pseudonym a DICOM file's study is filed under ("" when it names no patient)."""
    decoded = prepared.frames[0].decoded
    if prepared.deid:
        return prepared.deid.patient_pseudo_id
    return pseudonym(project_key(project), decoded.patient_id) if decoded.patient_id else ""


def _study(project: Project, prepared: PreparedFile) -> Study | None:
    decoded = prepared.frames[0].decoded
    if prepared.file_format != "dicom" or not decoded.study_instance_uid:
        return None
    study, _ = Study.objects.get_or_create(
        project=project,
        study_instance_uid=decoded.study_instance_uid,
        defaults={"patient_pseudo_id": _patient_of(project, prepared), "study_date": _parse_date(decoded.study_date)},
    )
    return study


def _other_patients_study(
    project: Project, name: str, prepared: PreparedFile, seen: dict[str, str]
) -> IngestResult | None:
    """A refusal when the file's study is already filed under another patient (this upload's
    earlier files included): exports split by patient, and one study under two patients would put
    a patient on both sides of a split. Merged or edited DICOM headers do this."""
    uid = prepared.frames[0].decoded.study_instance_uid
    if prepared.file_format != "dicom" or not uid:
        return None
    patient = _patient_of(project, prepared)
    if uid not in seen:
        filed = Study.objects.filter(project=project, study_instance_uid=uid).values_list(
            "patient_pseudo_id", flat=True
        )
        seen[uid] = next(iter(filed), patient)
    if seen[uid] == patient:
        return None
    return IngestResult(
        name,
        REJECTED,
        f"{name}: its study (StudyInstanceUID) is already in the project under another patient; "
        "a study belongs to one patient (merged or edited DICOM headers?)",
    )


def _parse_date(value: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(value.strip()[:8], "%Y%m%d").date()
    except (ValueError, AttributeError):
        return None


def _image_row(
    project: Project,
    study: Study | None,
    prepared: PreparedFile,
    frame: PreparedFrame,
    display_name: str,
    original: str,
    display: str,
    thumb: str,
    status: str,
) -> Image:
    d = frame.decoded
    spacing = d.pixel_spacing or (None, None)
    return Image(
        project=project,
        study=study,
        file=original,
        display=display,
        thumbnail=thumb,
        name=display_name,
        file_format=d.file_format,
        sha256=prepared.sha256,
        pixel_sha256=frame.pixel_sha256,
        sop_instance_uid=d.sop_instance_uid[:64],
        series_instance_uid=d.series_instance_uid[:64],
        frame_index=d.frame_index,
        modality=d.modality[:16],
        rows=d.rows,
        cols=d.cols,
        bits=d.bits,
        photometric_interpretation=d.photometric[:32],
        pixel_spacing_row=spacing[0],
        pixel_spacing_col=spacing[1],
        pixel_spacing_source=d.pixel_spacing_source,
        window_center=d.window[0],
        window_width=d.window[1],
        body_part=d.body_part[:64],
        view=d.view[:32],
        laterality=d.laterality[:8],
        burned_in_annotation=d.burned_in_annotation,
        status=status,
        notes=list(d.notes)
        + (["burned-in annotation: check the pixels for identifying text"] if d.burned_in_annotation else []),
    )


# --- batches -----------------------------------------------------------------------------------


def ingest_many(
    project: Project,
    items: Iterable[tuple[str, str | Path | bytes]],
    *,
    actor: Any = None,
    progress: Callable[[IngestResult], None] | None = None,
    group_size: int = 16,
    threads: int = 2,
) -> list[IngestResult]:
    """Ingests files, folders and zips; returns one result per file, in input order.

    Decoding and rendering (pure, GIL-releasing work) run in ``threads`` worker threads, up to
    twice as many files ahead, so they keep working while the calling thread stores a group.
    Duplicate checks, storage writes and rows stay on the calling thread, ``group_size`` files at
    a time: one duplicate query, the files written, one multi-row INSERT and one commit per group
    (a commit costs a disk flush, often more than decoding a small JPEG; the database is locked
    only while the rows go in). A unique-constraint clash sends that group through one savepoint
    per file, so a clash makes only that file a duplicate. New images are sent to analysis once
    the batch is done, in batches of ANALYSIS_BATCH_SIZE. ``progress`` is called once per file as
    its result is final. A batch that added images writes one audit event (``images.ingest``: the
    counts and the new images' ids, by ``actor``).
    """
    results: list[IngestResult] = []
    new_ids: list[int] = []
    group: list[tuple[str, PreparedFile]] = []

    def finish(result: IngestResult) -> None:
        if result.status == INGESTED:
            new_ids.extend(result.image_ids)
        results.append(result)
        if progress is not None:
            progress(result)

    def flush() -> None:
        stored = _store_group(project, group)
        group.clear()
        for result in stored:
            finish(result)

    def collect(name: str, outcome: PreparedFile | IngestResult) -> None:
        if isinstance(outcome, PreparedFile):
            group.append((name, outcome))
            if len(group) >= group_size:
                flush()
            return
        if group:  # keep results in input order
            flush()
        finish(outcome)

    key, deidentify = project_key(project), bool(project.setting("deidentify"))
    workers = max(1, threads)
    sources = iter(expand_sources(items))
    ahead: deque[tuple[str, Future[PreparedFile | IngestResult] | IngestResult]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest-decode") as pool:
        while True:
            while len(ahead) < 2 * workers and (item := next(sources, None)) is not None:
                name, source, error = item
                if error or source is None:
                    ahead.append((name, IngestResult(name, REJECTED, error)))
                else:
                    ahead.append((name, pool.submit(_decode, source, name, key, deidentify)))
            if not ahead:
                break
            name, job = ahead.popleft()
            collect(name, job.result() if isinstance(job, Future) else job)
        if group:
            flush()
    counts = summarise(results)
    if new_ids:
        # After the groups' own commits: who added which images (no names), one event per batch.
        record(
            actor=actor, action="images.ingest", target=project, project=project, after={**counts, "images": new_ids}
        )
        transaction.on_commit(lambda: queue_analysis(new_ids))
    logger.info("ingest into project %s: %s", project.pk, ", ".join(f"{k} {v}" for k, v in counts.items()))
    return results


def _store_group(project: Project, group: list[tuple[str, PreparedFile]]) -> list[IngestResult]:
    """Duplicate check, files and rows of decoded files in one transaction; one result per file.

    If anything fails, every file this group wrote is removed again and the error propagates.
    """
    found = _existing(project, [frame for _, prepared in group for frame in prepared.frames])
    outcomes: list[_Staged | IngestResult] = []
    studies: dict[str, str] = {}  # StudyInstanceUID -> patient, as filed or as this group files it
    try:
        offset = 0
        for name, prepared in group:
            count = len(prepared.frames)
            duplicates = {i - offset: pk for i, pk in found.items() if offset <= i < offset + count}
            offset += count
            outcomes.append(_write(project, prepared, name, duplicates, studies))
        staged = [outcome for outcome in outcomes if isinstance(outcome, _Staged)]
        with transaction.atomic():
            inserted = iter(_insert_group(project, staged, ImageStatus.INGESTED) if staged else [])
    except BaseException:
        for outcome in outcomes:  # rolled back or never inserted: none of its files may stay
            if isinstance(outcome, _Staged):
                outcome.discard()
        raise
    return [next(inserted) if isinstance(outcome, _Staged) else outcome for outcome in outcomes]


def summarise(results: Iterable[IngestResult]) -> dict[str, int]:
    return count_statuses(result.status for result in results)


def count_statuses(statuses: Iterable[str]) -> dict[str, int]:
    """``{"ingested", "duplicate", "rejected"}`` counts of ingest statuses."""
    counts = {INGESTED: 0, DUPLICATE: 0, REJECTED: 0}
    for status in statuses:
        counts[status] += 1
    return counts


@transaction.atomic
def delete_image(*, actor: Any, image: Image) -> dict[str, Any]:
    """Deletes an image with its labels, suggestions, embeddings and error maps; audited with the
    counts of what went with it, which it returns. Never the image's name: a pseudonym or, with
    ``keep_file_names``, an uploaded file name. The stored files are removed once the delete has
    committed, so a rolled-back delete leaves a whole image."""
    gone = {
        "study": image.study_id,
        "file_format": image.file_format,
        "sha256": image.sha256,
        "status": image.status,
        "annotations": image.annotations.filter(is_deleted=False).count(),
        "suggestions": image.suggestions.count(),
        "error_maps": image.error_maps.count(),
    }
    record(actor=actor, action="image.delete", target=image, project=image.project, before=gone)
    files = [f.name for f in (image.file, image.display, image.thumbnail) if f]
    files += [name for name in image.error_maps.values_list("file", flat=True) if name]
    project_id, image_id = image.project_id, image.pk
    image.delete()
    transaction.on_commit(lambda: _delete_files(files))
    events.publish(project_id, "image.deleted", {"image": image_id, "by": getattr(actor, "username", "")})
    return gone


def _delete_files(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)  # a file already gone is no error
