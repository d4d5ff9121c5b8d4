"""Ingest service: real files in, rows + stored renditions out; duplicates and hostile input handled."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from django.conf import settings

from skelex_web.studies import services, uploads
from skelex_web.studies.models import Image, Study
from tests.paths import FRACATLAS
from tests.workers.imaging.samples import dicom_bytes, with_changes
from workers.imaging import read_png16
from workers.imaging.deid import pseudonym

from .ingest_helpers import SentTasks, bomb_png, media_files, png, zip_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> SentTasks:
    from skelex_web.celery import app

    recorder = SentTasks()
    monkeypatch.setattr(app, "send_task", recorder)
    return recorder


def test_dicom_ingested_deidentified_with_study_and_renditions(project: Any, sent: SentTasks) -> None:
    result = services.ingest_file(project, dicom_bytes("RG3_UNCR.dcm"), "Doe_Jane_11RG3.dcm")
    assert result.status == "ingested", result.reason
    image = Image.objects.get(pk=result.image_id)
    assert image.name.startswith("cr-") and "Doe" not in image.name and "11RG3" not in image.name
    assert "Doe" not in image.file.name and image.file.name.startswith(f"originals/{project.pk}/")
    stored = pydicom.dcmread(image.file.path)
    assert stored.PatientIdentityRemoved == "YES" and stored.PatientID != "11RG3"
    assert (image.rows, image.cols, image.bits, image.modality, image.body_part) == (1760, 1760, 10, "CR", "EXTREMITY")
    assert image.window_center == 473.0 and image.sop_instance_uid == stored.SOPInstanceUID
    display = read_png16(Path(image.display.path).read_bytes())
    assert display.shape == (1760, 1760) and display.dtype == np.uint16 and display.max() == 1023
    assert Path(image.thumbnail.path).stat().st_size > 1000
    study = Study.objects.get()
    assert image.study == study and study.study_instance_uid == stored.StudyInstanceUID
    assert study.patient_pseudo_id == pseudonym(services.project_key(project), "11RG3")
    assert sent.calls == [("workers.analysis.analyse_images", [[image.pk]], "gpu")]
    image.refresh_from_db()
    assert image.status == "queued"


def test_same_image_twice_is_duplicate_by_uid_and_by_pixels(project: Any, sent: SentTasks) -> None:
    first = services.ingest_file(project, dicom_bytes("RG3_UNCR.dcm"), "a.dcm")
    again = services.ingest_file(project, dicom_bytes("RG3_J2KR.dcm"), "b.dcm")  # same SOP UID, other syntax
    assert again.status == "duplicate" and again.image_id == first.image_id
    png_bytes = png(1)
    assert services.ingest_file(project, png_bytes, "x.png").status == "ingested"
    dup = services.ingest_file(project, png_bytes, "copy-of-x.png")
    assert dup.status == "duplicate" and "copy-of-x.png" in dup.reason
    assert Image.objects.count() == 2


def test_duplicates_only_within_a_project(project: Any, other_project: Any, sent: SentTasks) -> None:
    data = png(2)
    assert services.ingest_file(project, data, "x.png").status == "ingested"
    assert services.ingest_file(other_project, data, "x.png").status == "ingested"


def test_deidentify_off_keeps_original_bytes(project: Any, sent: SentTasks) -> None:
    project.settings = {**project.settings, "deidentify": False}
    project.save()
    data = dicom_bytes("MR_small.dcm")
    result = services.ingest_file(project, data, "mr.dcm")
    image = Image.objects.get(pk=result.image_id)
    assert Path(image.file.path).read_bytes() == data and image.name == "mr.dcm"


def test_multiframe_gives_one_image_per_frame(project: Any, sent: SentTasks) -> None:
    result = services.ingest_file(project, dicom_bytes("emri_small.dcm"), "emri.dcm")
    assert result.status == "ingested" and len(result.image_ids) == 10
    frames = list(Image.objects.filter(pk__in=result.image_ids).values_list("frame_index", flat=True))
    assert sorted(frames) == list(range(10))
    assert len({i.file.name for i in Image.objects.all()}) == 1  # one stored original


def test_burned_in_annotation_flagged_on_image(project: Any, sent: SentTasks) -> None:
    result = services.ingest_file(project, with_changes("MR_small.dcm", BurnedInAnnotation="YES"), "m.dcm")
    image = Image.objects.get(pk=result.image_id)
    assert image.burned_in_annotation and any("burned-in" in n for n in image.notes)


HOSTILE = [
    ("notdicom.dcm", b"hello, this is not an image" * 50, "not a recognised image file"),
    ("rtplan.dcm", "rtplan", "no pixel data"),
    ("mpeg.dcm", "mpeg", "unsupported transfer syntax"),
    ("bomb.png", bomb_png(), "image too large"),
]


def _hostile_bytes(spec: bytes | str) -> bytes:
    if spec == "rtplan":
        return dicom_bytes("rtplan.dcm")
    if spec == "mpeg":
        return with_changes("MR_small.dcm", TransferSyntaxUID="1.2.840.10008.1.2.4.100")
    assert isinstance(spec, bytes)
    return spec


def test_hostile_batch_rejects_each_bad_file_and_ingests_the_rest(project: Any, sent: SentTasks) -> None:
    items: list[tuple[str, Any]] = [("good-1.png", png(10))]
    items += [(name, _hostile_bytes(spec)) for name, spec, _ in HOSTILE]
    if FRACATLAS.is_dir():
        corrupt = FRACATLAS / "images" / "corrupt" / "IMG0004028.jpg"
        items.append(("IMG0004028.jpg", corrupt))
    items.append(
        (
            "upload.zip",
            zip_of(
                [
                    ("../escape.png", png(11)),
                    ("/abs.png", png(12)),
                    ("inner/ok.png", png(13)),
                    ("bomb.bin", b"\0" * 5_000_000),
                ]
            ),
        )
    )
    items.append(("good-2.png", png(14)))
    results = {r.name: r for r in services.ingest_many(project, items)}
    assert {n for n, r in results.items() if r.status == "ingested"} == {
        "good-1.png",
        "upload.zip/inner/ok.png",
        "good-2.png",
    }
    for name, _, problem in HOSTILE:
        assert results[name].status == "rejected" and results[name].reason.startswith(f"{name}: ")
        assert problem in results[name].reason
    assert "unsafe path" in results["upload.zip/../escape.png"].reason
    assert "unsafe path" in results["upload.zip//abs.png"].reason
    assert "zip bomb" in results["upload.zip/bomb.bin"].reason
    if FRACATLAS.is_dir():
        assert "IMG0004028.jpg: truncated or corrupt image data" in results["IMG0004028.jpg"].reason
    # No orphans: exactly 3 files (original, display, thumbnail) per ingested image, nothing else.
    assert Image.objects.count() == 3
    assert len(media_files(settings.MEDIA_ROOT)) == 9
    assert sorted(sent.image_ids) == sorted(Image.objects.values_list("pk", flat=True))


def test_size_limit(project: Any, sent: SentTasks, settings: Any) -> None:
    settings.MAX_UPLOAD_BYTES = 100
    result = services.ingest_file(project, png(3, (64, 64)), "big.png")
    assert result.status == "rejected" and "big.png: file too large" in result.reason


def test_failure_while_writing_rows_leaves_no_files(
    project: Any, sent: SentTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "_image_row", boom)
    with pytest.raises(RuntimeError):
        services.ingest_file(project, png(4), "x.png")
    assert media_files(settings.MEDIA_ROOT) == [] and Image.objects.count() == 0 and Study.objects.count() == 0


def test_analysis_batches_and_broker_failure_tolerated(
    project: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skelex_web.celery import app

    settings.ANALYSIS_BATCH_SIZE = 2
    recorder = SentTasks()
    monkeypatch.setattr(app, "send_task", recorder)
    services.ingest_many(project, [(f"{i}.png", png(20 + i)) for i in range(5)])
    assert [len(args[0]) for _, args, _ in recorder.calls] == [2, 2, 1]

    def down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(app, "send_task", down)
    result = services.ingest_file(project, png(40), "late.png")
    assert result.status == "ingested"
    assert Image.objects.get(pk=result.image_id).status == "ingested"


def test_folder_walk(project: Any, sent: SentTasks, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.png").write_bytes(png(30))
    (tmp_path / "b.png").write_bytes(png(31))
    (tmp_path / ".hidden.png").write_bytes(png(32))
    (tmp_path / "notes.txt").write_text("skip me")
    results = services.ingest_many(project, [("scans", tmp_path)])
    assert sorted(r.name for r in results) == ["scans/b.png", "scans/sub/a.png"]


def test_staged_files_task_body_deletes_staging(project: Any, sent: SentTasks, tmp_path: Path) -> None:
    staged = tmp_path / "u1"
    staged.write_bytes(png(50))
    out = uploads.import_staged(project.pk, [f"scan.png\t{staged}"])
    assert out[0].status == "ingested" and out[0].name == "scan.png" and not staged.exists()


def test_display_png_matches_decoding(project: Any, sent: SentTasks) -> None:
    result = services.ingest_file(project, dicom_bytes("CT_small.dcm"), "ct.dcm")
    image = Image.objects.get(pk=result.image_id)
    from workers.imaging import load_image

    assert np.array_equal(
        read_png16(Path(image.display.path).read_bytes()),
        load_image(io.BytesIO(dicom_bytes("CT_small.dcm")).getvalue()).pixels,
    )
    assert image.pixel_spacing_row == pytest.approx(0.661468)


def test_same_pixels_twice_in_one_batch_group(project: Any, sent: SentTasks) -> None:
    data = png(60)
    results = services.ingest_many(project, [("a.png", data), ("b.png", png(61)), ("a-again.png", data)])
    assert [r.status for r in results] == ["ingested", "ingested", "duplicate"]
    assert results[2].image_id == results[0].image_id
    assert Image.objects.count() == 2 and len(media_files(settings.MEDIA_ROOT)) == 6


def test_batch_failure_rolls_back_group_and_removes_its_files(
    project: Any, sent: SentTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = services._image_row
    calls = {"n": 0}

    def third_fails(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "_image_row", third_fails)
    with pytest.raises(RuntimeError):
        services.ingest_many(project, [(f"{i}.png", png(70 + i)) for i in range(4)])
    assert Image.objects.count() == 0 and media_files(settings.MEDIA_ROOT) == [] and sent.calls == []


def test_unexpected_decode_error_mid_batch_leaves_no_orphans(
    project: Any, sent: SentTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = services._decode

    def third_crashes(source: Any, name: str, *args: Any) -> Any:
        if name == "2.png":
            raise RuntimeError("decoder crashed")
        return real(source, name, *args)

    monkeypatch.setattr(services, "_decode", third_crashes)
    with pytest.raises(RuntimeError):
        services.ingest_many(project, [(f"{i}.png", png(80 + i)) for i in range(4)])
    assert Image.objects.count() == 0 and media_files(settings.MEDIA_ROOT) == []


@pytest.mark.parametrize("threads", [1, 3])
def test_results_in_input_order_whatever_the_threads(project: Any, sent: SentTasks, threads: int) -> None:
    items = [(f"{i}.png", png(90 + i) if i % 3 else b"junk" * 40) for i in range(7)]
    results = services.ingest_many(project, items, threads=threads, group_size=2)
    assert [r.name for r in results] == [n for n, _ in items]
    assert [r.status for r in results] == ["rejected" if i % 3 == 0 else "ingested" for i in range(7)]


def test_a_study_already_filed_under_another_patient_is_refused(project: Any, sent: SentTasks) -> None:
    # Merged or edited headers: one StudyInstanceUID, two patients. Filing both under one study
    # would put a patient on both sides of an export's patient-level split.
    uid = "1.2.826.0.1.3680043.8.498.777"
    ct = with_changes("CT_small.dcm", StudyInstanceUID=uid, PatientID="GRP-777")
    mr = with_changes("MR_small.dcm", StudyInstanceUID=uid, PatientID="OTHER-1")
    same_patient = with_changes("JPEG2000.dcm", StudyInstanceUID=uid, PatientID="GRP-777")
    results = {r.name: r for r in services.ingest_many(project, [("ct.dcm", ct), ("mr.dcm", mr)])}
    assert results["ct.dcm"].status == "ingested"
    assert results["mr.dcm"].status == "rejected"
    assert results["mr.dcm"].reason == (
        "mr.dcm: its study (StudyInstanceUID) is already in the project under another patient; "
        "a study belongs to one patient (merged or edited DICOM headers?)"
    )
    # Against a study stored earlier, and the same patient's next image joins it.
    assert services.ingest_file(project, mr, "mr-again.dcm").status == "rejected"
    assert services.ingest_file(project, same_patient, "more.dcm").status == "ingested"
    assert Study.objects.filter(project=project).count() == 1
    assert Image.objects.filter(study__isnull=False).count() == 2
