"""Adding images from the project page: results as messages, large uploads queued and listed, roles."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from skelex_web.studies import uploads
from skelex_web.studies.models import Image, UploadJob
from tests.factories import MembershipFactory, UserFactory
from tests.skelex_web.studies.ingest_helpers import png, zip_of

pytestmark = pytest.mark.django_db(transaction=True)


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _post(client: Client, project: Any, *files: tuple[str, bytes]) -> tuple[Any, list[str]]:
    body = {"files": [SimpleUploadedFile(name, data) for name, data in files]}
    response = client.post(f"/projects/{project.pk}/upload/", body)
    return response, [str(m) for m in get_messages(response.wsgi_request)]


def test_annotator_adds_images_and_reads_what_was_refused(project: Any, personas: Any, sent_tasks: list) -> None:
    page = _client(personas["annotator"]).get(f"/projects/{project.pk}/").content.decode()
    assert 'data-testid="upload"' in page and 'enctype="multipart/form-data"' in page

    response, notes = _post(
        _client(personas["annotator"]),
        project,
        ("wrist.png", png(1)),
        ("again.png", png(1)),
        ("notes.txt", b"not an image"),
        ("knees.zip", zip_of([("left.png", png(2)), ("right.png", png(3))])),
    )
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.pk}/"
    assert Image.objects.filter(project=project).count() == 3
    assert notes[0] == "5 files: 3 added, 1 already in the project, 1 refused."
    assert len(notes) == 2 and notes[1].startswith("notes.txt: ")
    # The analysis of what was added is queued, as for any ingest.
    assert [name for name, _ in sent_tasks] == ["workers.analysis.analyse_images"]


def test_a_large_upload_is_queued_and_listed_with_its_counts(
    project: Any, personas: Any, sent_tasks: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "INLINE_MAX_FILES", 1)
    response, notes = _post(_client(personas["annotator"]), project, ("a.png", png(4)), ("b.png", png(5)))
    job = UploadJob.objects.get(project=project)
    assert notes == [f"Upload {job.pk} queued: 2 files are ingested in the background (see Uploads)."]
    assert [name for name, _ in sent_tasks] == ["workers.ingest.import_files"]
    assert not Image.objects.filter(project=project).exists()  # not until the worker runs

    uploads.import_staged(*sent_tasks[0][1])  # the task body, as the worker runs it
    page = _client(personas["annotator"]).get(f"/projects/{project.pk}/").content.decode()
    table = page.split('data-testid="uploads"')[1].split("</table>")[0]
    assert "Done" in table and f"/api/projects/{project.pk}/images/uploads/{job.pk}/" in table
    assert '<td class="num">2</td>' in table  # files, and added
    # Another annotator neither sees this upload nor its results; the lead does.
    colleague = UserFactory(username="ada")
    MembershipFactory(user=colleague, project=project, role="annotator")
    other = _client(colleague).get(f"/projects/{project.pk}/").content.decode()
    assert 'data-testid="uploads"' not in other
    assert 'data-testid="uploads"' in _client(personas["lead"]).get(f"/projects/{project.pk}/").content.decode()


def test_nothing_chosen_or_too_large_is_refused_with_a_reason(
    project: Any, personas: Any, sent_tasks: list, settings: Any
) -> None:
    client = _client(personas["annotator"])
    _, notes = _post(client, project)
    assert notes == ["Nothing uploaded: choose one or more DICOM, PNG, JPEG or TIFF files or zips."]
    settings.MAX_UPLOAD_BYTES = 100
    _, notes = _post(client, project, ("big.png", png(6)))
    assert notes[-1].startswith("Nothing uploaded: ") and "exceed the limit of 100 bytes" in notes[-1]
    assert not Image.objects.exists() and not UploadJob.objects.exists() and sent_tasks == []


def test_viewers_cannot_upload_and_outsiders_do_not_see_the_project(project: Any, personas: Any) -> None:
    page = _client(personas["viewer"]).get(f"/projects/{project.pk}/").content.decode()
    assert 'data-testid="upload"' not in page
    assert _post(_client(personas["viewer"]), project, ("a.png", png(7)))[0].status_code == 403
    assert _post(_client(personas["outsider"]), project, ("a.png", png(7)))[0].status_code == 404
    assert not Image.objects.exists()
