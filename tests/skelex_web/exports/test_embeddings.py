"""Exports with the backbone's embeddings: the stored vectors, bit for bit, of one readout, in the
manifest's order with the stems the label files use, and what is missing said in embeddings.json."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.test import Client

from skelex_web.exports import services
from skelex_web.exports.models import ExportJob
from skelex_web.learning.models import Embedding, ModelVersion
from skelex_web.learning.pipeline import analysis_params, embedding_hash
from tests.skelex_web.exports.conftest import read_zip

pytestmark = pytest.mark.django_db


def _store(image: Any, backbone: ModelVersion, readout: str, seed: int, dim: int = 8) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=dim).astype("<f2")
    Embedding.objects.create(image=image, model_version=backbone, dim=dim, vector=vector.tobytes(), readout=readout)
    return vector


def test_an_export_with_embeddings_carries_the_stored_vectors_of_one_readout(project: Any, labelled: Any) -> None:
    backbone = ModelVersion.objects.create(
        kind="backbone", name="skelex-demo", config={"default": True, "sha256": "ab12"}
    )
    current = embedding_hash(analysis_params())
    images = labelled["images"]
    stored = {image.pk: _store(image, backbone, current, k) for k, image in enumerate(images[:10])}
    _store(images[10], backbone, "an-older-readout", 99)  # analysed with other settings: left out
    version = services.create_version(project=project)

    job = services.export_now(version=version, fmt="coco", images="none", embeddings=True)

    files = read_zip(Path(default_storage.path(job.file.name)))
    npz = np.load(io.BytesIO(files["embeddings.npz"]))
    records = [json.loads(line) for line in files["manifest.jsonl"].decode().splitlines()[1:]]
    expected = [r for r in records if r["image"] in stored]
    assert npz["image"].tolist() == [r["image"] for r in expected]  # the manifest's order
    assert npz["stem"].tolist() == [r["stem"] for r in expected]
    assert npz["embeddings"].dtype == np.float16 and npz["embeddings"].shape == (10, 8)
    for row, record in zip(npz["embeddings"], expected, strict=True):
        assert row.tobytes() == stored[record["image"]].tobytes()  # bit for bit
    about = json.loads(files["embeddings.json"])
    assert about["backbone"] == {"id": backbone.pk, "name": "skelex-demo", "sha256": "ab12"}
    assert (about["readout"], about["readout_is_current"], about["dim"], about["count"]) == (current, True, 8, 10)
    assert about["missing"] == 2 and sorted(about["missing_stems"]) == sorted(
        r["stem"] for r in records if r["image"] not in stored
    )
    assert json.loads(files["summary.json"])["embeddings"] is True


def test_exports_leave_embeddings_out_unless_asked(project: Any, labelled: Any) -> None:
    version = services.create_version(project=project)
    job = services.export_now(version=version, fmt="yolo", images="none")
    assert not {"embeddings.npz", "embeddings.json"} & set(read_zip(Path(default_storage.path(job.file.name))))


def test_the_api_and_the_page_ask_for_embeddings(
    project: Any, labelled: Any, personas: Any, client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    browser = Client()
    browser.force_login(personas["lead"])
    version = services.create_version(project=project)
    with mock.patch("skelex_web.celery.app.send_task"), django_capture_on_commit_callbacks(execute=True):
        api = client_for("lead").post(
            f"/api/dataset-versions/{version.pk}/export/", {"format": "coco", "embeddings": True}, format="json"
        )
        page = browser.post(
            f"/projects/{project.pk}/export/",
            {"version": version.pk, "format": "csv", "images": "none", "embeddings": "on"},
        )
    assert api.status_code == 202 and api.json()["embeddings"] is True
    assert page.status_code == 302
    assert list(ExportJob.objects.order_by("id").values_list("format", "embeddings")) == [("coco", True), ("csv", True)]


def test_the_command_asks_for_embeddings(project: Any, labelled: Any, tmp_path: Path) -> None:
    from django.core.management import call_command

    call_command("export", "--project", project.slug, "--format", "csv", "--images", "none", "--embeddings",
                 "--out", str(tmp_path / "e.zip"), stdout=io.StringIO())  # fmt: skip
    about = json.loads(read_zip(tmp_path / "e.zip")["embeddings.json"])
    # The fixture's backbone has embedded none of them: an empty matrix, and all 12 said missing.
    assert (about["backbone"]["name"], about["count"], about["missing"]) == ("demo", 0, 12)
