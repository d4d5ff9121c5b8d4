"""Two annotators saving the same version at the same moment: exactly one wins, the other gets 409.
A create racing its own copy (same ``client_uid``) makes one row, and both get it. Annotators
asking the labelling queue at the same moment get different images.

Needs row locks across connections, so it runs on PostgreSQL (``make test-postgres``); on SQLite
(one writer at a time, in-memory test database) it is skipped.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from django.db import connection, connections, transaction
from rest_framework.test import APIClient

from skelex_web.labeling import services
from skelex_web.labeling.models import Annotation
from skelex_web.studies.models import Image
from tests.factories import AnnotationFactory, ImageFactory


@pytest.mark.django_db(transaction=True)
def test_simultaneous_stale_writes_one_wins(project: Any, personas: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks; runs under `make test-postgres`")
    ann = AnnotationFactory(image=ImageFactory(project=project), author=personas["annotator"])
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def edit(who: str, x1: float) -> None:
        client = APIClient()
        client.force_authenticate(personas[who])
        barrier.wait()
        results[who] = client.patch(f"/api/annotations/{ann.pk}/", {"version": 1, "x1": x1}, format="json")
        connections.close_all()

    threads = [threading.Thread(target=edit, args=a) for a in (("reviewer", 111.0), ("lead", 222.0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    codes = sorted(r.status_code for r in results.values())
    assert codes == [200, 409]
    winner = next(who for who, r in results.items() if r.status_code == 200)
    stored = Annotation.objects.get(pk=ann.pk)
    assert stored.version == 2
    assert stored.x1 == (111.0 if winner == "reviewer" else 222.0)
    loser = next(r for r in results.values() if r.status_code == 409)
    assert loser.json()["current"]["x1"] == stored.x1


@pytest.mark.django_db(transaction=True)
def test_a_create_racing_its_own_copy_makes_one_row(project: Any, personas: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's wait on an uncommitted unique key; runs under `make test-postgres`")
    image, ana = ImageFactory(project=project), personas["annotator"]
    body = {"image": image.pk, "kind": "box", "label": "fracture", "x0": 1, "y0": 1, "x1": 9, "y1": 9}
    body["client_uid"] = str(uuid.uuid4())
    inserted, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def first_copy() -> None:
        # Inserted, not yet committed: the second copy's lookup cannot see this row.
        with transaction.atomic():
            data = {**body, "client_uid": uuid.UUID(body["client_uid"])}
            results["first"], _ = services.create_annotation(actor=ana, image=image, data=data)
            inserted.set()
            release.wait(20)
        connections.close_all()

    def second_copy() -> None:
        client = APIClient()
        client.force_authenticate(ana)
        results["second"] = client.post("/api/annotations/", body, format="json")
        connections.close_all()

    threads = [threading.Thread(target=first_copy), threading.Thread(target=second_copy)]
    threads[0].start()
    assert inserted.wait(20)
    threads[1].start()
    blocked = False
    deadline = time.monotonic() + 20
    with connection.cursor() as cursor:
        while not blocked and time.monotonic() < deadline and threads[1].is_alive():
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            blocked = cursor.fetchone()[0] > 0
            time.sleep(0.02)
    release.set()
    for t in threads:
        t.join(30)

    assert blocked, "the second copy should have waited on the first one's uncommitted key"
    assert results["second"].status_code == 200, results["second"].content
    assert results["second"].json()["id"] == results["first"].pk
    assert Annotation.objects.filter(image=image).count() == 1


@pytest.mark.django_db(transaction=True)
def test_annotators_asking_the_queue_at_the_same_moment_get_different_images(project: Any, personas: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's SKIP LOCKED; runs under `make test-postgres`")
    for i in range(5):
        ImageFactory(project=project, al_priority=1.0 - i / 10)
    who = ("annotator", "reviewer", "lead")
    barrier = threading.Barrier(len(who))
    handed: dict[str, int] = {}

    def ask(name: str) -> None:
        client = APIClient()
        client.force_authenticate(personas[name])
        barrier.wait()
        reply = client.post(f"/api/projects/{project.pk}/queue/next/", {}, format="json")
        handed[name] = reply.json()["image"]["id"]
        connections.close_all()

    threads = [threading.Thread(target=ask, args=(name,)) for name in who]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(handed.values())) == len(who), handed
    # Each image is claimed by the one it was handed to.
    for name, image_id in handed.items():
        assert Image.objects.get(pk=image_id).claimed_by == personas[name]
