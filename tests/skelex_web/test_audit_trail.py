"""The audit trail covers the changes that take data away or start work: deleting an image or a
project, adding images, retraining and analysing again from the project page."""

from __future__ import annotations

import json
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.test import Client

from skelex_web.audit.models import AuditEvent
from skelex_web.learning.models import ErrorMap
from skelex_web.projects import services as project_services
from skelex_web.projects.models import Project
from skelex_web.studies import services
from skelex_web.studies.models import Image
from tests.factories import AnnotationFactory, ImageFactory, ModelVersionFactory, SuggestionFactory, UserFactory
from tests.skelex_web.studies.ingest_helpers import png


def test_deleting_an_image_is_audited_with_what_went_with_it(
    project: Any, personas: Any, client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    image = ImageFactory(project=project, name="SMITH_JOHN_wrist.png")
    image.display.save("d.png", ContentFile(b"png16"), save=True)
    AnnotationFactory(image=image)
    AnnotationFactory(image=image, is_deleted=True)
    SuggestionFactory(image=image)
    emap = ErrorMap.objects.create(image=image, model_version=ModelVersionFactory(), params_hash="p")
    emap.file.save("e.png", ContentFile(b"heat"), save=True)
    stored = [image.file.name, image.display.name, emap.file.name]

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("lead").delete(f"/api/images/{image.pk}/")

    assert response.status_code == 204
    event = AuditEvent.objects.get(action="image.delete")
    assert (event.project, event.actor, event.target_id) == (project, personas["lead"], str(image.pk))
    assert event.before == {
        "study": None,
        "file_format": "png",
        "sha256": image.sha256,
        "status": "analysed",
        "annotations": 1,
        "suggestions": 1,
        "error_maps": 1,
    }
    assert "SMITH" not in json.dumps(event.before)
    assert not any(default_storage.exists(name) for name in stored)
    rows = client_for("reviewer").get(f"/api/audit-events/?project={project.pk}&action=image.delete").json()
    assert [row["target_id"] for row in rows["results"]] == [str(image.pk)]


def test_a_deleted_project_leaves_a_site_level_event_that_staff_read(
    project: Any, personas: Any, client_for: Any
) -> None:
    ImageFactory.create_batch(2, project=project)
    client_for("lead").patch(f"/api/projects/{project.pk}/", {"description": "wrists"}, format="json")

    response = client_for("lead").delete(f"/api/projects/{project.pk}/")

    assert response.status_code == 204 and not Project.objects.filter(pk=project.pk).exists()
    # The project's own trail went with it (label snapshots, member names); its deletion stays.
    event = AuditEvent.objects.get()
    assert (event.action, event.project, event.actor) == ("project.delete", None, personas["lead"])
    assert event.before["id"] == project.pk and event.before["slug"] == "wrist"
    assert {k: event.before[k] for k in ("members", "images", "audit_events")} == {
        "members": 4,
        "images": 2,
        "audit_events": 1,
    }
    staff = Client()
    staff.force_login(UserFactory(username="sam", is_staff=True))
    assert [r["action"] for r in staff.get("/api/audit-events/").json()["results"]] == ["project.delete"]
    assert client_for("lead").get("/api/audit-events/").json()["results"] == []


def test_a_deleted_projects_stored_files_go_with_it_and_no_one_elses(
    project: Any, other_project: Any, personas: Any, client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    services.ingest_many(project, [("a.png", png(1)), ("b.png", png(2))], actor=personas["lead"])
    services.ingest_many(other_project, [("c.png", png(3))], actor=personas["lead"])
    image = Image.objects.filter(project=project).first()
    emap = ErrorMap.objects.create(image=image, model_version=ModelVersionFactory(), params_hash="p")
    emap.file.save("e.png", ContentFile(b"heat"), save=True)
    heads = default_storage.save(f"heads/{project.pk}/heads-1.safetensors", ContentFile(b"weights"))
    ours = [n for row in Image.objects.filter(project=project).values_list("file", "display", "thumbnail") for n in row]
    theirs = [n for row in Image.objects.filter(project=other_project).values_list("file", "display") for n in row]
    assert len(ours) == 6 and all(default_storage.exists(n) for n in ours + theirs)

    with django_capture_on_commit_callbacks(execute=True):
        assert client_for("lead").delete(f"/api/projects/{project.pk}/").status_code == 204

    # Originals, renditions, error maps and the heads' weights are gone; the other project's stay.
    assert not any(default_storage.exists(n) for n in [*ours, emap.file.name, heads])
    assert all(default_storage.exists(n) for n in theirs)


def test_a_project_delete_that_does_not_commit_keeps_every_file(
    project: Any, personas: Any, django_capture_on_commit_callbacks: Any
) -> None:
    services.ingest_many(project, [("a.png", png(1))], actor=personas["lead"])
    stored = list(Image.objects.filter(project=project).values_list("file", "display", "thumbnail").get())

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        project_services.delete_project(actor=personas["lead"], project=project)
        transaction.set_rollback(True)

    assert Project.objects.filter(slug="wrist").exists()
    assert stored and all(default_storage.exists(n) for n in stored)


def test_retrain_and_analyse_again_from_the_project_page_are_audited(
    project: Any, personas: Any, sent_tasks: list, django_capture_on_commit_callbacks: Any
) -> None:
    lead = Client()
    lead.force_login(personas["lead"])
    backbone = ModelVersionFactory()
    project.active_backbone = backbone
    project.save()
    old = ImageFactory(project=project)
    ErrorMap.objects.create(image=old, model_version=backbone, params_hash="0123456789abcdef")

    with django_capture_on_commit_callbacks(execute=True):
        lead.post(f"/projects/{project.pk}/retrain/")
        lead.post(f"/projects/{project.pk}/reanalyse/")
        lead.post(f"/projects/{project.pk}/reanalyse/")  # nothing left to analyse: nothing changed

    events = list(AuditEvent.objects.filter(project=project).order_by("id").values_list("action", "actor", "after"))
    lena = personas["lead"].pk
    assert events == [
        ("heads.retrain", lena, {"queued": True}),
        ("images.reanalyse", lena, {"images": 1}),
    ]


def test_an_ingest_that_adds_images_is_audited_without_file_names(project: Any, personas: Any) -> None:
    first = services.ingest_many(project, [("DOE_JANE.png", png(1))], actor=personas["annotator"])
    services.ingest_many(project, [("DOE_JANE-again.png", png(1))], actor=personas["annotator"])  # a duplicate

    event = AuditEvent.objects.get(action="images.ingest")
    assert (event.project, event.actor) == (project, personas["annotator"])
    assert event.after == {"ingested": 1, "duplicate": 0, "rejected": 0, "images": first[0].image_ids}
    assert "DOE" not in json.dumps(event.after)
    assert Image.objects.filter(project=project).count() == 1
