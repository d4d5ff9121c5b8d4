"""The project page's Activity: the latest project-level changes in words, for reviewers and
leads only, labelling left out (it is summed up elsewhere)."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from skelex_web.audit.services import record
from skelex_web.learning import loop
from skelex_web.projects import services as projects
from skelex_web.studies import services as studies
from skelex_web.studies.models import Image
from tests.factories import AnnotationFactory, UserFactory
from tests.skelex_web.pages.conftest import index_plan
from tests.skelex_web.studies.ingest_helpers import png


def activity(html: str) -> list[tuple[str, str]]:
    """(who, what) rows of the Activity table, newest first."""
    section = html.split('data-testid="activity"', 1)[1].split("</section>", 1)[0]
    return [
        (unescape(who), unescape(what))
        for who, what in re.findall(
            r"<tr data-action=\"[^\"]+\"><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td></tr>", section
        )
    ]


def test_leads_and_reviewers_read_what_changed_in_words(project: Any, personas: Any, browser_for: Any) -> None:
    lead = personas["lead"]
    studies.ingest_many(project, [("a.png", png(1)), ("b.png", png(2)), ("c.png", png(1))], actor=lead)
    maria = UserFactory(username="maria")
    projects.set_membership(actor=lead, project=project, user=maria, role="annotator")
    projects.set_membership(actor=lead, project=project, user=maria, role="reviewer")
    projects.set_settings(actor=lead, project=project, values={"sampling": "margin"})
    projects.keep_file_names(actor=lead, project=project)
    studies.delete_image(actor=lead, image=Image.objects.filter(project=project).first())
    loop.retrain_on_demand(project, lead)
    AnnotationFactory(image=Image.objects.filter(project=project).first(), author=personas["annotator"])

    rows = activity(browser_for("reviewer").get(f"/projects/{project.pk}/").content.decode())

    assert rows[:7] == [
        ("lena", "asked for a training round"),
        ("lena", "deleted an image with 0 labels"),
        ("lena", "turned keep_file_names on"),
        ("lena", "set sampling to margin"),
        ("lena", "made maria reviewer (was annotator)"),
        ("lena", "added maria as annotator"),
        ("lena", "added 2 images (1 duplicate)"),
    ]
    assert not any("annotation" in what for _, what in rows)  # labelling is summed up elsewhere


def test_annotators_and_viewers_do_not_see_it(project: Any, browser_for: Any) -> None:
    for who in ("annotator", "viewer"):
        assert 'data-testid="activity"' not in browser_for(who).get(f"/projects/{project.pk}/").content.decode()


def test_activity_is_read_from_its_index_not_through_every_labelling_event(project: Any, personas: Any) -> None:
    """A busy project has hundreds of labelling events for each project-level one: the Activity
    query reads its 15 rows from a partial index instead of filtering all of them (PostgreSQL, the
    production database: SQLite uses a partial index only for literal terms, not bound parameters)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite cannot prove a partial index's condition from bound parameters")

    from skelex_web.pages.activity import latest

    for k in range(30):
        record(
            actor=personas["lead"],
            action="annotation.create" if k % 3 else "images.ingest",
            target=project,
            project=project,
        )
    plan = index_plan(latest(project, 15))
    assert "audit_activity" in plan, plan
