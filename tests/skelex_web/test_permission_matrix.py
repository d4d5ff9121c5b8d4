"""Every role plus an outsider x every endpoint x own vs other project.

In your own project: at or above the minimum role → success; below → 403. Anything of a project
you are not a member of → 404 (its existence is not revealed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.base import ContentFile

from skelex_web.projects.models import ROLE_RANK, Role
from tests.factories import AnnotationFactory, ImageFactory, StudyFactory, SuggestionFactory, UserFactory


@dataclass(frozen=True)
class Op:
    name: str
    method: str
    url: str  # formatted with the objects of the target project
    minimum: str
    body: dict[str, Any] | None = None


OPS = [
    Op("read project", "get", "/api/projects/{project}/", Role.VIEWER),
    Op("edit project", "patch", "/api/projects/{project}/", Role.LEAD, {"description": "new"}),
    Op("delete project", "delete", "/api/projects/{project}/", Role.LEAD),
    Op("list members", "get", "/api/projects/{project}/members/", Role.VIEWER),
    Op("add member", "post", "/api/projects/{project}/members/", Role.LEAD, {"username": "newbie", "role": "viewer"}),
    Op("change member", "patch", "/api/projects/{project}/members/{membership}/", Role.LEAD, {"role": "reviewer"}),
    Op("read image", "get", "/api/images/{image}/", Role.VIEWER),
    Op("download display", "get", "/api/images/{image}/display/", Role.VIEWER),
    Op("download thumbnail", "get", "/api/images/{image}/thumbnail/", Role.VIEWER),
    Op("delete image", "delete", "/api/images/{image}/", Role.LEAD),
    Op("accept all", "post", "/api/images/{image}/accept-all/", Role.ANNOTATOR),
    Op("read annotation", "get", "/api/annotations/{annotation}/", Role.VIEWER),
    Op(
        "create box",
        "post",
        "/api/annotations/",
        Role.ANNOTATOR,
        {"image": "{image}", "kind": "box", "label": "fracture", "x0": 1, "y0": 2, "x1": 30, "y1": 40},
    ),
    Op("edit others' annotation", "patch", "/api/annotations/{annotation}/", Role.REVIEWER, {"version": 1, "x1": 70}),
    Op("delete others' annotation", "delete", "/api/annotations/{annotation}/?version=1", Role.REVIEWER),
    Op("read suggestion", "get", "/api/suggestions/{suggestion}/", Role.VIEWER),
    Op("accept suggestion", "post", "/api/suggestions/{suggestion}/accept/", Role.ANNOTATOR),
    Op("reject suggestion", "post", "/api/suggestions/{suggestion}/reject/", Role.ANNOTATOR),
    Op("reopen suggestion", "post", "/api/suggestions/{rejected}/reopen/", Role.ANNOTATOR),
    Op("retrain", "post", "/api/projects/{project}/retrain/", Role.LEAD),
    Op("claim image", "post", "/api/images/{image}/claim/", Role.ANNOTATOR),
    Op("read queue", "get", "/api/projects/{project}/queue/", Role.VIEWER),
    Op("learning curve", "get", "/api/projects/{project}/learning-curve/", Role.VIEWER),
    Op("ranking comparison", "get", "/api/projects/{project}/ranking-comparison/", Role.VIEWER),
    Op("compare rankings", "post", "/api/projects/{project}/ranking-comparison/", Role.LEAD),
    Op("list upload jobs", "get", "/api/projects/{project}/images/uploads/", Role.VIEWER),
]
PEOPLE = ["lead", "reviewer", "annotator", "viewer", "outsider"]


def _objects(project: Any) -> dict[str, Any]:
    lead = project.memberships.get(role=Role.LEAD).user
    image = ImageFactory(project=project)
    image.display.save("d.png", ContentFile(b"png16"), save=False)
    image.thumbnail.save("t.png", ContentFile(b"png8"), save=True)
    UserFactory(username="newbie")
    return {
        "project": project.pk,
        # Not the only lead's: a project keeps at least one lead (refused whoever asks).
        "membership": (project.memberships.exclude(role=Role.LEAD).first() or project.memberships.get(user=lead)).pk,
        "image": image.pk,
        "annotation": AnnotationFactory(image=image, author=lead).pk,
        "suggestion": SuggestionFactory(image=image).pk,
        "rejected": SuggestionFactory(image=image, state="rejected").pk,
    }


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str):
        filled = value.format(**ids)
        return int(filled) if value.startswith("{") and filled.isdigit() else filled
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("target", ["own", "other"])
@pytest.mark.parametrize("who", PEOPLE)
@pytest.mark.parametrize("op", OPS, ids=[o.name for o in OPS])
def test_permission_matrix(op: Op, who: str, target: str, project: Any, other_project: Any, client_for: Any) -> None:
    ids = _objects(project if target == "own" else other_project)
    client = client_for(who)
    response = getattr(client, op.method)(_fill(op.url, ids), _fill(op.body, ids) or {}, format="json")

    if target == "other" or who == "outsider":
        assert response.status_code == 404, response.content
    elif ROLE_RANK[Role(who)] >= ROLE_RANK[Role(op.minimum)]:
        assert 200 <= response.status_code < 300, response.content
    else:
        assert response.status_code == 403, response.content
        # Refusals no retry will change say so (the viewer takes such a change back).
        expected = "not_your_annotation" if "others'" in op.name and who == "annotator" else "role_too_low"
        assert response.json()["code"] == expected, response.content


def test_anonymous_gets_nothing_and_is_asked_to_sign_in(project: Any, personas: Any) -> None:
    from rest_framework.test import APIClient

    ids = _objects(project)
    anon = APIClient()
    for op in OPS:
        response = getattr(anon, op.method)(_fill(op.url, ids), _fill(op.body, ids) or {}, format="json")
        # 401 with a challenge: "sign in", which scripts and the viewer tell apart from "not allowed".
        assert response.status_code == 401, (op.name, response.status_code)
        assert response["WWW-Authenticate"] == "Token", op.name
    assert anon.get("/api/schema/").status_code == 401


@pytest.mark.parametrize(
    "url",
    ["/api/projects/", "/api/images/", "/api/annotations/", "/api/suggestions/", "/api/studies/"],
)
def test_lists_show_only_member_projects(url: str, project: Any, other_project: Any, client_for: Any) -> None:
    own, other = _objects(project), _objects(other_project)
    response = client_for("viewer").get(url)
    assert response.status_code == 200
    rows = response.json()["results"]
    key = "id" if url == "/api/projects/" else "project"
    seen = {row[key] for row in rows}
    assert other["project"] not in seen
    if url != "/api/studies/":
        assert own["project"] in seen


@pytest.mark.parametrize(
    "url",
    [
        "/api/images/?project={project}",
        "/api/images/?study={study}",
        "/api/studies/?project={project}",
        "/api/annotations/?image={image}",
        "/api/suggestions/?image={image}",
        "/api/model-versions/?project={project}",
        "/api/audit-events/?project={project}",
        "/api/dataset-versions/?project={project}",
    ],
)
def test_a_filter_by_another_projects_id_answers_as_for_an_id_that_does_not_exist(
    url: str, project: Any, other_project: Any, client_for: Any
) -> None:
    # Otherwise ?project=N is a probe for which projects (images, studies) exist.
    other = {**_objects(other_project), "study": StudyFactory(project=other_project).pk}
    client = client_for("lead")
    foreign = client.get(url.format(**other))
    missing = client.get(url.format(**dict.fromkeys(other, 10**6)))
    assert foreign.status_code == missing.status_code == 200, (foreign.content, missing.content)
    assert foreign.json()["results"] == missing.json()["results"] == []


def test_audit_events_visible_to_reviewers_and_leads_only(project: Any, client_for: Any) -> None:
    ids = _objects(project)
    client_for("annotator").post(
        "/api/annotations/",
        {"image": ids["image"], "kind": "box", "label": "lesion", "x0": 1, "y0": 1, "x1": 9, "y1": 9},
        format="json",
    )
    for who, expect_rows in [("lead", True), ("reviewer", True), ("annotator", False), ("viewer", False)]:
        rows = client_for(who).get(f"/api/audit-events/?project={project.pk}").json()["results"]
        assert bool(rows) is expect_rows, who
