"""Dataset versions: filters, patient-level splits, immutability, reproducible exports, summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from skelex_web.exports import services
from skelex_web.exports.models import DatasetVersion
from skelex_web.labeling.models import Annotation
from tests.factories import AnnotationFactory, StudyFactory
from tests.skelex_web.exports.conftest import read_zip

pytestmark = pytest.mark.django_db


def manifest(version: DatasetVersion) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    lines = Path(settings.MEDIA_ROOT, version.manifest.name).read_text().splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def test_version_lists_every_labelled_image_with_hashes_and_split(project: Any, labelled: dict[str, Any]) -> None:
    version = services.create_version(project=project, split_seed=1)
    header, records = manifest(version)
    assert version.number == 1 and version.image_count == 12 == len(records)
    assert header["image_count"] == 12 and header["split"]["seed"] == 1
    by_id = {r["image"]: r for r in records}
    first = by_id[labelled["images"][0].pk]
    assert first["file_sha256"] == labelled["images"][0].sha256
    assert len(first["labels_sha256"]) == 64
    assert [b["label"] for b in first["boxes"]] == ["fracture", "lesion"]
    assert first["heads"]["abnormal"]["value"] == "yes"
    edited = next(b for b in first["boxes"] if b["label"] == "lesion")
    assert edited["origin"] == "suggestion-edited" and edited["model_version"].startswith("demo#")
    assert edited["suggestion_bbox"] == [2, 3.5, 10, 20]
    assert {r["split"] for r in records} <= {"train", "val", "test"}


def test_same_labels_give_the_same_content_hash_and_an_edit_changes_it(project: Any, labelled: dict[str, Any]) -> None:
    v1 = services.create_version(project=project, split_seed=5)
    v2 = services.create_version(project=project, split_seed=5)
    assert (v1.number, v2.number) == (1, 2)
    assert v1.content_hash == v2.content_hash
    Annotation.objects.filter(pk=labelled["edited"].pk).update(x1=11.0)
    v3 = services.create_version(project=project, split_seed=5)
    assert v3.content_hash != v1.content_hash


def test_versions_are_immutable(project: Any, labelled: dict[str, Any]) -> None:
    version = services.create_version(project=project)
    version.split_seed = 99
    with pytest.raises(ValueError, match="immutable"):
        version.save()
    version.refresh_from_db()
    version.name = "renamed is fine"
    version.save()


def test_filters_keep_reviewed_labels_label_subset_and_body_parts(project: Any, labelled: dict[str, Any]) -> None:
    version = services.create_version(
        project=project, filters={"reviewed_only": True, "labels": ["fracture"], "heads": [], "body_parts": ["leg"]}
    )
    header, records = manifest(version)
    assert header["label_schema"] == {"box_labels": ["fracture"], "heads": []}
    # Leg patients are 0, 2, 4; of those only 0 and 2 have fractures, reviewed on their first image.
    assert len(records) == 2
    assert all(r["body_part"] == "leg" for r in records)
    assert all(b["reviewed"] and b["label"] == "fracture" for r in records for b in r["boxes"])
    assert all(r["heads"] == {} for r in records)


def test_unknown_filter_names_are_refused(project: Any, labelled: dict[str, Any]) -> None:
    with pytest.raises(services.InvalidFilters) as info:
        services.create_version(project=project, filters={"labels": ["fractur"], "colour": True})
    assert "labels" in info.value.errors and "filters" in info.value.errors


def test_no_patient_in_two_splits_with_many_images_per_patient(project: Any, image_maker: Any) -> None:
    for p in range(30):
        study = StudyFactory(project=project, patient_pseudo_id=f"patient-{p}")
        for _ in range(4):
            image = image_maker(study, rows=8, cols=8)
            if p % 3 == 0:
                AnnotationFactory(image=image, label="fracture", x0=1, y0=1, x1=4, y1=4)
            else:
                AnnotationFactory(image=image, kind="head", head="abnormal", value="no")
    version = services.create_version(project=project, split_seed=11)
    _, records = manifest(version)
    splits_of_group: dict[str, set[str]] = {}
    for r in records:
        splits_of_group.setdefault(r["group"], set()).add(r["split"])
    assert len(splits_of_group) == 30
    assert all(len(s) == 1 for s in splits_of_group.values())
    assert set(version.summary["splits"]) == {"train", "val", "test"}
    assert all(n > 0 for n in version.summary["splits"].values())


def test_summary_has_acceptance_rate_and_mean_iou(project: Any, labelled: dict[str, Any]) -> None:
    version = services.create_version(project=project)
    sugg = version.summary["suggestions"]
    assert (sugg["edited"], sugg["rejected"], sugg["acceptance_rate"]) == (1, 1, 0.5)
    # Suggested 2..10 x 3.5..20, final 2..12: IoU = 8 / 10.
    assert version.summary["suggested_vs_final_boxes"] == {"pairs": 1, "mean_iou": 0.8}


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc", "csv"])
def test_reexporting_a_version_gives_identical_bytes_even_after_labels_change(
    project: Any, labelled: dict[str, Any], fmt: str
) -> None:
    version = services.create_version(project=project, split_seed=2)
    first = services.export_now(version=version, fmt=fmt, images="png16")
    Annotation.objects.filter(project=project).update(x1=30.0)  # later edits do not leak into the version
    second = services.export_now(version=version, fmt=fmt, images="png16")
    a = Path(settings.MEDIA_ROOT, first.file.name).read_bytes()
    b = Path(settings.MEDIA_ROOT, second.file.name).read_bytes()
    assert first.sha256 == second.sha256 and a == b
    entries = read_zip(Path(settings.MEDIA_ROOT, first.file.name))
    assert "manifest.jsonl" in entries and "summary.json" in entries
    assert sum(1 for n in entries if n.startswith("images/")) == 12
