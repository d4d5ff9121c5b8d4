"""The pages used every minute do the same work however many rows a project holds: the same number
of SQL queries over a few rows and over ten times as many, and no list as long as the project
(``skelex_web/pages/bench_pages.py`` measures the times on 10,000 images)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import AnnotationFactory, ImageFactory, MembershipFactory, ProjectFactory, SuggestionFactory
from tests.skelex_web.pages.conftest import index_plan

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


def labelled_image(project: Any, author: Any) -> Any:
    """An image with 2 live boxes (and a deleted one), 2 findings answers, 2 pending box
    suggestions, a rejected one and a pending head prediction."""
    image = ImageFactory(project=project, al_priority=0.5)
    AnnotationFactory.create_batch(2, image=image, author=author)
    AnnotationFactory(image=image, author=author, is_deleted=True)
    for head in ("abnormal", "implant"):
        AnnotationFactory(image=image, author=author, kind="head", head=head, value="no", label="",
                          x0=None, y0=None, x1=None, y1=None)  # fmt: skip
    SuggestionFactory.create_batch(2, image=image)
    SuggestionFactory(image=image, state="rejected")
    SuggestionFactory(image=image, kind="head", head="abnormal", label="", value={"answer": "yes"})
    return image


def test_worklist_counts_per_image_without_grouping_the_project(project: Any, personas: dict[str, Any]) -> None:
    client = Client()
    client.force_login(personas["annotator"])
    url = f"/projects/{project.pk}/worklist/"
    for _ in range(3):
        labelled_image(project, personas["annotator"])
    few = queries_of(client, url)
    for _ in range(27):
        labelled_image(project, personas["annotator"])
    many = queries_of(client, url)
    assert len(many) == len(few)
    # Counted per image in subqueries: a join of annotations and suggestions grouped by image made
    # the database count every image of the project (and multiply the rows) before the LIMIT.
    assert not [sql for sql in many if "GROUP BY" in sql.upper()]
    html = client.get(url).content.decode()
    assert html.count("2 boxes</span>") == 30 and html.count("2 answers</span>") == 30
    assert html.count("2 suggested</span>") == 30


def test_the_queue_is_read_in_index_order(project: Any, personas: dict[str, Any]) -> None:
    """Label next (and the worklist) read the project's images in the queue's order from an index
    and stop at the first one to hand out, instead of sorting every image of the project."""

    from skelex_web.learning import loop

    for k in range(30):
        ImageFactory(project=project, al_priority=None if k % 5 == 0 else k / 30)
    plan = index_plan(loop.worklist(project, personas["annotator"])[:1])
    assert "image_queue_order" in plan, plan
