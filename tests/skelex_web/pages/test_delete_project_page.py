"""Deleting a project from its page: only leads see the section and may send it, and only once they
have typed the project's slug; then the project, its rows and files go and the list says so."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage

from skelex_web.audit.models import AuditEvent
from skelex_web.projects.models import Project
from skelex_web.studies.models import Image
from tests.factories import ImageFactory
from tests.skelex_web.pages.conftest import messages_at


def test_a_lead_who_types_the_slug_deletes_the_project(
    project: Any, personas: Any, browser_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    images = [ImageFactory(project=project), ImageFactory(project=project)]
    stored = [image.file.name for image in images]
    assert all(default_storage.exists(name) for name in stored)

    with django_capture_on_commit_callbacks(execute=True):
        response = browser_for("lead").post(f"/projects/{project.pk}/delete/", {"confirm": " wrist "}, follow=True)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/"
    assert messages_at(response.content.decode()) == {"": ["Deleted project 'Wrist fractures' (2 images)."]}
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not Image.objects.filter(pk__in=[i.pk for i in images]).exists()
    assert not any(default_storage.exists(name) for name in stored)
    event = AuditEvent.objects.get(action="project.delete")
    # Recorded for staff: site-level (no project), so it outlives the project it names.
    assert event.actor == personas["lead"] and event.project is None
    assert event.before["slug"] == "wrist" and event.before["images"] == 2


def test_a_wrong_or_missing_slug_deletes_nothing_and_says_why(project: Any, browser_for: Any) -> None:
    ImageFactory(project=project)
    lead = browser_for("lead")
    said = {}
    for typed in ("Wrist fractures", ""):
        response = lead.post(f"/projects/{project.pk}/delete/", {"confirm": typed}, follow=True)
        assert response.redirect_chain[-1][0] == f"/projects/{project.pk}/#delete"
        said[typed] = messages_at(response.content.decode())
    assert said == {
        "Wrist fractures": {
            "delete": ["Not deleted: 'Wrist fractures' is not this project's slug; type wrist to confirm."]
        },
        "": {"delete": ["Not deleted: type the project's slug, wrist, to confirm."]},
    }
    assert Project.objects.filter(pk=project.pk).exists() and project.images.count() == 1
    assert not AuditEvent.objects.filter(action="project.delete").exists()


def test_only_leads_see_the_section_and_may_delete(project: Any, personas: Any, browser_for: Any) -> None:
    lead_page = browser_for("lead").get(f"/projects/{project.pk}/").content.decode()
    assert 'data-testid="delete-project"' in lead_page and "<code>wrist</code>" in lead_page
    for who in ("viewer", "annotator", "reviewer"):
        client = browser_for(who)
        assert client.post(f"/projects/{project.pk}/delete/", {"confirm": "wrist"}).status_code == 403
        page = client.get(f"/projects/{project.pk}/").content.decode()
        assert 'id="members"' in page and 'data-testid="delete-project"' not in page
    assert browser_for("outsider").post(f"/projects/{project.pk}/delete/", {"confirm": "wrist"}).status_code == 404
    assert Project.objects.filter(pk=project.pk).exists()
    assert not AuditEvent.objects.filter(action="project.delete").exists()
