"""Members on the project page: everyone sees who is in the project and their role; leads add an
existing account by user name, change roles and remove members, with clear messages, and a project
keeps at least one lead."""

from __future__ import annotations

import re
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from skelex_web.audit.models import AuditEvent
from skelex_web.projects.models import Membership, Project
from tests.skelex_web.pages.conftest import messages_at


def _post(client: Any, project: Any, **data: Any) -> tuple[str, list[str]]:
    """Where the form sends you back to, and the messages shown there: in the Members section when
    back on the project page (the page opens there, below the fold), else at the top."""
    response = client.post(f"/projects/{project.pk}/members/", data, follow=True)
    assert response.status_code == 200
    back = response.redirect_chain[-1][0]
    shown = messages_at(response.content.decode())
    where = "members" if back.endswith("#members") else ""
    assert set(shown) <= {where}, f"messages shown at {set(shown)}, expected {where!r}"
    return back, shown.get(where, [])


def _roles(project: Any) -> dict[str, str]:
    return dict(project.memberships.values_list("user__username", "role"))


def test_a_lead_adds_changes_and_removes_members(project: Any, personas: Any, browser_for: Any) -> None:
    lead = browser_for("lead")
    get_user_model().objects.create_user(username="zoe", password="x-pass-1234")
    back, said = _post(lead, project, op="add", username="zoe", role="annotator")
    assert back == f"/projects/{project.pk}/#members"
    assert said == ["zoe added as annotator."]
    assert _roles(project)["zoe"] == "annotator"

    zoe = Membership.objects.get(project=project, user__username="zoe")
    assert _post(lead, project, op="role", membership=zoe.pk, role="reviewer")[1] == ["zoe is now reviewer."]
    assert _post(lead, project, op="remove", membership=zoe.pk)[1] == ["zoe removed from the project."]
    assert "zoe" not in _roles(project)
    actions = list(AuditEvent.objects.filter(project=project).values_list("action", flat=True).order_by("id"))
    assert actions[-3:] == ["membership.set", "membership.set", "membership.remove"]

    page = lead.get(f"/projects/{project.pk}/").content.decode()
    assert 'data-testid="add-member"' in page
    assert re.search(r'data-member="ana".*?<option value="annotator" selected>', page, re.S)


def test_mistakes_get_a_reason_and_change_nothing(project: Any, personas: Any, browser_for: Any) -> None:
    lead = browser_for("lead")
    before = _roles(project)
    assert _post(lead, project, op="add", username="nobody", role="annotator")[1] == [
        "No account named 'nobody': add people who already have an account here (an administrator creates accounts)."
    ]
    assert _post(lead, project, op="add", username="", role="annotator")[1] == [
        "Nothing added: type the user name of an existing account."
    ]
    assert _post(lead, project, op="add", username="ana", role="viewer")[1] == [
        "ana is already a member (annotator); change the role below."
    ]
    assert _post(lead, project, op="add", username="ana", role="owner")[1] == [
        "Not changed: the role must be one of viewer, annotator, reviewer, lead."
    ]
    assert _post(lead, project, op="role", membership="abc", role="viewer")[1] == [
        "Not changed: that member is not in this project (any more)."
    ]
    mine = Membership.objects.get(project=project, user=personas["lead"])
    last = "Not changed: a project keeps at least one lead: make someone else lead first."
    assert _post(lead, project, op="role", membership=mine.pk, role="viewer")[1] == [last]
    assert _post(lead, project, op="remove", membership=mine.pk)[1] == [last]
    assert _roles(project) == before


def test_only_leads_manage_members_and_everyone_in_the_project_sees_them(
    project: Any, personas: Any, browser_for: Any
) -> None:
    target = Membership.objects.get(project=project, user=personas["viewer"])
    for who in ("viewer", "annotator", "reviewer"):
        client = browser_for(who)
        assert (
            client.post(f"/projects/{project.pk}/members/", {"op": "remove", "membership": target.pk}).status_code
            == 403
        )
        page = client.get(f"/projects/{project.pk}/").content.decode()
        assert 'data-member="vic"' in page and 'data-testid="add-member"' not in page
    assert (
        browser_for("outsider")
        .post(f"/projects/{project.pk}/members/", {"op": "remove", "membership": target.pk})
        .status_code
        == 404
    )
    assert Membership.objects.filter(pk=target.pk).exists()


def test_a_lead_who_leaves_goes_back_to_the_project_list(project: Any, personas: Any, browser_for: Any) -> None:
    Membership.objects.filter(project=project, user=personas["reviewer"]).update(role="lead")
    mine = Membership.objects.get(project=project, user=personas["lead"])
    # The page asks first (the browser's confirm, tests/e2e), in words that say it is the lead's own way out.
    page = browser_for("lead").get(f"/projects/{project.pk}/").content.decode()
    assert f'data-confirm="Leave {project.name}? You will no longer see it; another lead can add you again."' in page
    back, said = _post(browser_for("lead"), project, op="remove", membership=mine.pk)
    assert back == "/" and said == [f"You left {project.name!r}."]


def test_anyone_signed_in_starts_a_project_and_leads_it(personas: Any, browser_for: Any) -> None:
    otto = browser_for("outsider")
    response = otto.post("/projects/new/", {"name": "Wrist study", "description": "distal radius"}, follow=True)
    project = Project.objects.get(name="Wrist study")
    assert response.redirect_chain[-1][0] == f"/projects/{project.pk}/"
    assert [str(m) for m in response.context["messages"]] == [
        f"Project 'Wrist study' created (slug {project.slug}); you are its lead."
    ]
    assert _roles(project) == {"otto": "lead"}
    assert project.label_schema["box_labels"] == ["fracture", "lesion", "implant"]
    blank = otto.post("/projects/new/", {"name": "  "}, follow=True)
    assert [str(m) for m in blank.context["messages"]] == ["No project created: give it a name."]
    assert 'data-testid="new-project"' in otto.get("/").content.decode()


def test_create_project_command_prints_the_slug_import_commands_take(personas: Any) -> None:
    out = StringIO()
    call_command("create_project", "FracAtlas", lead="lena", slug="fracatlas", stdout=out)
    project = Project.objects.get(slug="fracatlas")
    assert out.getvalue().strip() == f"created project 'FracAtlas' (slug fracatlas, id {project.pk}), lead lena"
    assert _roles(project) == {"lena": "lead"}
    with pytest.raises(CommandError, match="a project with slug 'fracatlas' exists already"):
        call_command("create_project", "Again", lead="lena", slug="fracatlas")
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("create_project", "X", lead="nobody")
