"""A lead deletes the image on screen from the viewer (a wrong upload, a name burned into the
pixels); nobody else can, and nothing else goes with it."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.storage import default_storage

from skelex_web.audit.models import AuditEvent
from skelex_web.studies import services
from skelex_web.studies.models import Image
from tests.factories import AnnotationFactory, SuggestionFactory
from tests.skelex_web.pages.conftest import messages_at
from tests.skelex_web.studies.ingest_helpers import png


@pytest.fixture
def films(project: Any, personas: Any) -> list[Image]:
    services.ingest_many(project, [("first.png", png(1)), ("other.png", png(2))], actor=personas["lead"])
    return list(Image.objects.filter(project=project).order_by("pk"))


def test_a_lead_deletes_the_image_with_its_labels_and_files_and_lands_on_the_worklist(
    project: Any, films: list[Image], browser_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    doomed, kept = films
    AnnotationFactory.create_batch(2, image=doomed)
    SuggestionFactory(image=doomed)
    AnnotationFactory(image=kept)
    stored = [doomed.file.name, doomed.display.name, doomed.thumbnail.name]
    lead = browser_for("lead")
    assert 'data-testid="delete-image"' in lead.get(f"/projects/{project.pk}/images/{doomed.pk}/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        r = lead.post(f"/projects/{project.pk}/images/{doomed.pk}/delete/", follow=True)

    assert r.redirect_chain[-1][0] == f"/projects/{project.pk}/worklist/"
    assert messages_at(r.content.decode())[""] == [f"Deleted image {doomed.name} and its 2 labels."]
    assert list(Image.objects.filter(project=project)) == [kept] and kept.annotations.count() == 1
    assert not any(default_storage.exists(n) for n in stored) and default_storage.exists(kept.file.name)
    assert AuditEvent.objects.filter(action="image.delete", target_id=str(doomed.pk)).exists()


@pytest.mark.parametrize("who", ["reviewer", "annotator", "viewer"])
def test_only_leads_see_or_use_it(project: Any, films: list[Image], browser_for: Any, who: str) -> None:
    client = browser_for(who)
    page = client.get(f"/projects/{project.pk}/images/{films[0].pk}/").content.decode()

    assert "delete-image" not in page
    assert client.post(f"/projects/{project.pk}/images/{films[0].pk}/delete/").status_code == 403
    assert Image.objects.filter(pk=films[0].pk).exists()


def test_outsiders_and_other_projects_images_get_404(
    project: Any, other_project: Any, films: list[Image], personas: Any, browser_for: Any
) -> None:
    services.ingest_many(other_project, [("theirs.png", png(3))], actor=personas["lead"])
    theirs = Image.objects.get(project=other_project)
    lead = browser_for("lead")  # lead of `project`, not of `other_project`

    assert lead.post(f"/projects/{other_project.pk}/images/{theirs.pk}/delete/").status_code == 404
    assert lead.post(f"/projects/{project.pk}/images/{theirs.pk}/delete/").status_code == 404
    assert lead.get(f"/projects/{project.pk}/images/{films[0].pk}/delete/").status_code == 405
    assert Image.objects.count() == 3
