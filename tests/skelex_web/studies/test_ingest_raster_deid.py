"""Ingest of PNG/JPEG with identifying metadata: the stored original is scrubbed, pixels and orientation kept."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skelex_web.studies import services
from skelex_web.studies.models import Image
from tests.workers.imaging.samples import PHI_STRINGS, film, jpeg_with_metadata, png_with_text
from workers.imaging import load_image, read_png16

pytestmark = pytest.mark.django_db(transaction=True)


def _stored(result: services.IngestResult) -> tuple[Image, bytes]:
    assert result.status == "ingested", result.reason
    image = Image.objects.get(pk=result.image_id)
    return image, Path(image.file.path).read_bytes()


def test_jpeg_exif_removed_from_stored_original_orientation_kept(project: Any, sent_tasks: list[Any]) -> None:
    source = jpeg_with_metadata(film((40, 70)), orientation=6)
    decoded = load_image(source)
    assert decoded.pixels.shape == (70, 40)  # orientation 6: the decoder turns the image upright

    image, stored = _stored(services.ingest_file(project, source, "wrist.jpg"))

    for secret in PHI_STRINGS:
        assert secret not in stored, secret
    assert np.array_equal(load_image(stored).pixels, decoded.pixels)  # the original decodes the same
    assert np.array_equal(read_png16(Path(image.display.path).read_bytes()), decoded.pixels)
    assert (image.rows, image.cols) == (70, 40)
    assert any(n.startswith("removed from the stored original: ") and "EXIF" in n for n in image.notes)
    assert image.sha256 != "" and sent_tasks == [("workers.analysis.analyse_images", [[image.pk]])]


def test_png_text_chunks_removed_from_stored_original_in_a_batch(project: Any, sent_tasks: list[Any]) -> None:
    source = png_with_text(film(seed=3))
    results = services.ingest_many(project, [("hand.png", source), ("knee.jpg", jpeg_with_metadata(film(seed=4)))])

    for result in results:
        _, stored = _stored(result)
        for secret in PHI_STRINGS:
            assert secret not in stored, secret
    image, stored = _stored(results[0])
    assert np.array_equal(load_image(stored).pixels, load_image(source).pixels)
    assert np.array_equal(read_png16(Path(image.display.path).read_bytes()), film(seed=3))


def test_deidentify_off_keeps_raster_metadata(project: Any, sent_tasks: list[Any]) -> None:
    project.settings = {**project.settings, "deidentify": False}
    project.save()
    source = jpeg_with_metadata(film())

    image, stored = _stored(services.ingest_file(project, source, "as-received.jpg"))

    assert stored == source and not any("removed from" in n for n in image.notes)


def test_debug_logging_does_not_leak_metadata(
    project: Any, sent_tasks: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    # LOG_LEVEL=DEBUG is what an operator sets to chase a bug; Pillow's TIFF/EXIF parser logs every
    # tag's value at DEBUG, the patient's name included, unless its logger is held at INFO.
    files = [("a.jpg", jpeg_with_metadata(film())), ("b.png", png_with_text(film()))]
    caplog.set_level(logging.DEBUG)
    results = services.ingest_many(project, files)
    assert [r.status for r in results] == ["ingested", "ingested"]
    assert caplog.records, "the root logger records at DEBUG"
    for secret in PHI_STRINGS:
        assert secret.decode() not in caplog.text, secret
