"""Labelling from the queue in the browser: "Label next" hands each annotator a different image,
the viewer in queue mode asks the queue for Next, and an image open elsewhere says whose it is."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from skelex_web.learning import loop
from skelex_web.studies.models import Image
from tests.factories import AnnotationFactory, ImageFactory


@pytest.fixture
def queue(project: Any) -> list[Image]:
    """Three unlabelled images, highest priority first, with the reason the queue gives."""
    return [
        ImageFactory(project=project, name=f"wrist-{i}.png", al_priority=p, al_reason=f"uncertain: p(abnormal) = {p}")
        for i, p in enumerate((0.9, 0.8, 0.7))
    ]


def _config(html: str) -> dict[str, Any]:
    match = re.search(r'<script id="viewer-config" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the viewer page carries its configuration"
    return dict(json.loads(match.group(1)))


def test_two_annotators_pressing_label_next_get_different_images(
    project: Any, personas: Any, queue: list[Image], browser_for: Any
) -> None:
    ana, rui = browser_for("annotator"), browser_for("reviewer")
    first = ana.post(f"/projects/{project.pk}/next/")
    assert first.status_code == 302 and first["Location"] == f"/projects/{project.pk}/images/{queue[0].pk}/?queue=1"
    second = rui.post(f"/projects/{project.pk}/next/")
    assert second["Location"] == f"/projects/{project.pk}/images/{queue[1].pk}/?queue=1"
    assert Image.objects.get(pk=queue[0].pk).claimed_by == personas["annotator"]

    # The viewer in queue mode: Next asks the queue, the reason is shown, no worklist neighbours.
    page = ana.get(first["Location"]).content.decode()
    config = _config(page)
    assert config["queue"]["next_api"] == f"/api/projects/{project.pk}/queue/next/"
    assert config["queue"]["viewer_url"] == f"/projects/{project.pk}/images/{{id}}/?queue=1"
    assert config["next_url"] is None and config["open_elsewhere"] is None
    assert "Queue: uncertain: p(abnormal) = 0.9" in page

    # Asking the queue from that viewer (what its Next does) skips rui's image.
    nxt = ana.post(f"/api/projects/{project.pk}/queue/next/", {"skip": [queue[0].pk]}, content_type="application/json")
    assert nxt.json()["image"]["id"] == queue[2].pk
    # The buttons are there for annotators and above, not for viewers, who cannot take images.
    assert 'data-testid="label-next"' in ana.get(f"/projects/{project.pk}/").content.decode()
    assert 'data-testid="label-next"' not in browser_for("viewer").get(f"/projects/{project.pk}/").content.decode()
    assert browser_for("viewer").post(f"/projects/{project.pk}/next/").status_code == 403
    assert browser_for("outsider").post(f"/projects/{project.pk}/next/").status_code == 404
    assert Client().post(f"/projects/{project.pk}/next/").status_code == 302  # to sign in


def test_label_next_is_a_post(project: Any, queue: list[Image], browser_for: Any) -> None:
    # A link or a prefetch must not take an image out of everyone else's queue.
    assert browser_for("annotator").get(f"/projects/{project.pk}/next/").status_code == 405
    assert not Image.objects.filter(claimed_by__isnull=False).exists()


def test_an_empty_queue_sends_you_to_the_worklist_and_keeps_what_you_have_open(
    project: Any, personas: Any, queue: list[Image], browser_for: Any
) -> None:
    ana = browser_for("annotator")
    ana.post(f"/projects/{project.pk}/next/")  # ana has queue[0]
    for image in queue[1:]:
        assert loop.claim(image, personas["reviewer"])
    # Nothing else for ana: the queue's Next from her viewer answers 204 and she keeps her image.
    reply = ana.post(
        f"/api/projects/{project.pk}/queue/next/", {"skip": [queue[0].pk]}, content_type="application/json"
    )
    assert reply.status_code == 204
    assert Image.objects.get(pk=queue[0].pk).claimed_by == personas["annotator"]
    # The button, with ana's own image skipped by nobody: she gets her open image back.
    again = ana.post(f"/projects/{project.pk}/next/")
    assert again["Location"].startswith(f"/projects/{project.pk}/images/{queue[0].pk}/")
    # Everything taken by others: a message and the worklist.
    lena = browser_for("lead")
    response = lena.post(f"/projects/{project.pk}/next/")
    assert response["Location"] == f"/projects/{project.pk}/worklist/"
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "The labelling queue is empty: every image is labelled or open in someone else's viewer."
    ]


def test_label_next_says_why_there_is_nothing_to_label(project: Any, personas: Any, browser_for: Any) -> None:
    ana = browser_for("annotator")

    def said() -> list[str]:
        response = ana.post(f"/projects/{project.pk}/next/", follow=True)
        return [str(m) for m in response.context["messages"]]

    assert said() == ["No images to label yet: add images to the project first."]
    ImageFactory(project=project, status="failed")  # never in the queue
    assert said() == ["No images to label yet: add images to the project first."]
    done = ImageFactory(project=project)
    AnnotationFactory(image=done, author=personas["reviewer"])
    assert said() == ["Every image in this project is labelled."]


def test_an_image_open_elsewhere_says_whose_it_is_in_the_viewer_and_the_worklist(
    project: Any, personas: Any, queue: list[Image], browser_for: Any
) -> None:
    browser_for("annotator").get(f"/projects/{project.pk}/images/{queue[0].pk}/")  # ana opens it
    page = browser_for("reviewer").get(f"/projects/{project.pk}/images/{queue[0].pk}/").content.decode()
    assert "Open in ana's viewer" in page and _config(page)["open_elsewhere"] == "ana"
    assert Image.objects.get(pk=queue[0].pk).claimed_by == personas["annotator"]  # not taken over
    # Ana's own view of it has no such warning; the worklist marks it for others only.
    assert (
        _config(browser_for("annotator").get(f"/projects/{project.pk}/images/{queue[0].pk}/").content.decode())[
            "open_elsewhere"
        ]
        is None
    )
    assert "open: ana" in browser_for("reviewer").get(f"/projects/{project.pk}/worklist/").content.decode()
    assert "open: ana" not in browser_for("annotator").get(f"/projects/{project.pk}/worklist/").content.decode()
    # Once ana's claim lapses, the next viewer to open it takes it and sees no warning.
    Image.objects.filter(pk=queue[0].pk).update(claimed_at=timezone.now() - loop.CLAIM_TTL - timedelta(seconds=1))
    assert "open: ana" not in browser_for("reviewer").get(f"/projects/{project.pk}/worklist/").content.decode()
    page = browser_for("reviewer").get(f"/projects/{project.pk}/images/{queue[0].pk}/").content.decode()
    assert _config(page)["open_elsewhere"] is None
    assert Image.objects.get(pk=queue[0].pk).claimed_by == personas["reviewer"]


def test_the_queue_refuses_a_malformed_skip_list_and_hands_out_nothing(
    project: Any, queue: list[Image], client_for: Any
) -> None:
    api, url = client_for("annotator"), f"/api/projects/{project.pk}/queue/next/"
    for body in ({"skip": 5}, {"skip": ["a"]}, {"skip": [True]}, {"skip": "12"}, [1, 2]):
        reply = api.post(url, body, format="json")
        assert reply.status_code == 400, body
        assert "skip" in reply.json()["detail"]
    assert not Image.objects.filter(claimed_by__isnull=False).exists()
    assert api.post(url, {}, format="json").json()["image"]["id"] == queue[0].pk
    assert api.post(url, {"skip": [queue[0].pk]}, format="json").json()["image"]["id"] == queue[1].pk


def test_a_viewer_leaving_an_image_hands_back_its_own_claim_but_not_a_newer_one(
    project: Any, personas: Any, queue: list[Image], browser_for: Any
) -> None:
    ana, rui = browser_for("annotator"), browser_for("reviewer")
    url = f"/api/images/{queue[0].pk}/claim/"
    first = _config(ana.get(f"/projects/{project.pk}/images/{queue[0].pk}/").content.decode())["claimed_at"]
    # Ana reloads the viewer: the new page claims the image again before the old one's pagehide
    # sends its release, which must leave the new page's claim alone.
    second = _config(ana.get(f"/projects/{project.pk}/images/{queue[0].pk}/").content.decode())["claimed_at"]
    assert first and second and first != second
    assert ana.delete(f"{url}?{urlencode({'at': first})}").status_code == 204
    assert Image.objects.get(pk=queue[0].pk).claimed_by == personas["annotator"]
    nxt = rui.post(f"/api/projects/{project.pk}/queue/next/", {}, content_type="application/json")
    assert nxt.json()["image"]["id"] == queue[1].pk  # still open in ana's viewer
    # A renewal names the claim anew; leaving with that name hands the image back at once, so
    # rui's next request gets it without waiting ten minutes for the claim to lapse.
    renewed = ana.post(url).json()["claimed_at"]
    assert ana.delete(f"{url}?{urlencode({'at': renewed})}").status_code == 204
    assert Image.objects.get(pk=queue[0].pk).claimed_by is None
    nxt = rui.post(f"/api/projects/{project.pk}/queue/next/", {}, content_type="application/json")
    assert nxt.json()["image"]["id"] == queue[0].pk
    # Ana's stale release, sent again, ends nothing of rui's.
    assert ana.delete(f"{url}?{urlencode({'at': renewed})}").status_code == 204
    assert ana.delete(url).status_code == 204
    assert Image.objects.get(pk=queue[0].pk).claimed_by == personas["reviewer"]


def test_a_release_with_a_malformed_claim_time_is_refused_and_ends_nothing(
    project: Any, personas: Any, queue: list[Image], browser_for: Any
) -> None:
    ana = browser_for("annotator")
    ana.get(f"/projects/{project.pk}/images/{queue[0].pk}/")
    for bad in ("yesterday", "2026-13-45T99:00:00"):
        reply = ana.delete(f"/api/images/{queue[0].pk}/claim/?{urlencode({'at': bad})}")
        assert reply.status_code == 400
        assert reply.json()["detail"].startswith(
            f"'at' must be the claim's time as the claim returned it (ISO 8601), not '{bad}'"
        )
    assert Image.objects.get(pk=queue[0].pk).claimed_by == personas["annotator"]
