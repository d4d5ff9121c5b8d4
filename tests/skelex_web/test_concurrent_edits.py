"""Two annotators saving the same version at the same moment: exactly one wins, the other gets 409.

Needs row locks across connections, so it runs on PostgreSQL (``make test-postgres``); on SQLite
(one writer at a time, in-memory test database) it is skipped.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from skelex_web.labeling.models import Annotation
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
