"""The pages used every minute do the same work however many rows a project holds: the same number
of SQL queries over a few rows and over ten times as many, and no list as long as the project
(``skelex_web/pages/bench_pages.py`` measures the times on 10,000 images)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import ImageFactory, MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def queries_of(client: Client, url: str) -> list[str]:
    """The SQL one GET of ``url`` runs (after a first GET, so one-off work such as sessions is done)."""
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in captured.captured_queries]


def test_project_list_queries_do_not_grow_with_projects(project: Any, personas: dict[str, Any]) -> None:
    lead = personas["lead"]
    ImageFactory.create_batch(3, project=project)
    client = Client()
    client.force_login(lead)

    def add_projects(n: int) -> None:
        for _ in range(n):
            MembershipFactory(user=lead, project=ProjectFactory(), role="annotator")

    add_projects(2)
    few = queries_of(client, "/")
    add_projects(27)
    many = queries_of(client, "/")
    assert len(many) == len(few), "one role and one image count per project is an N+1"
    rows = client.get("/").context["projects"]
    assert len(rows) == 30 and {r["role"] for r in rows} == {"lead", "annotator"}
    assert [(r["role"], r["images"]) for r in rows if r["project"] == project] == [("lead", 3)]


def test_body_part_filter_lists_each_part_once(project: Any, personas: dict[str, Any]) -> None:
    for k in range(30):
        ImageFactory(project=project, body_part=("HAND", "KNEE", "")[k % 3])
    client = Client()
    client.force_login(personas["annotator"])
    html = client.get(f"/projects/{project.pk}/worklist/").content.decode()
    # One option per body part, not one per image (the DISTINCT once kept the images' default order).
    assert html.count('<option value="HAND">') == 1 and html.count('<option value="KNEE">') == 1
    assert client.get(f"/projects/{project.pk}/").context["summary"].body_parts == ["HAND", "KNEE"]
