"""``manage.py create_user``: an account for a person, optionally a member of a project, with a
password that passes the site's rules and never appears as an argument."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from skelex_web.audit.models import AuditEvent
from skelex_web.projects.models import Membership

User = get_user_model()
GOOD = "radiology-wrist-77"


def run(*args: str, stdin: str | None = GOOD + "\n", monkeypatch: Any) -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin) if stdin is not None else io.StringIO(""))
    out = io.StringIO()
    call_command("create_user", *args, *(["--password-stdin"] if stdin is not None else []), stdout=out)
    return out.getvalue()


def test_creates_an_account_that_signs_in_and_joins_the_project(project: Any, monkeypatch: Any) -> None:
    said = run("maria", "--project", "wrist", "--role", "reviewer", monkeypatch=monkeypatch)

    assert "created user 'maria'" in said and "maria is reviewer in 'Wrist fractures'" in said
    maria = authenticate(username="maria", password=GOOD)
    assert maria is not None and not maria.is_staff
    assert Membership.objects.get(user=maria, project=project).role == "reviewer"
    event = AuditEvent.objects.get(action="membership.set", project=project)
    assert event.after == {"user": "maria", "role": "reviewer"}


def test_a_weak_password_is_refused_with_the_rule_and_nothing_is_created(project: Any, monkeypatch: Any) -> None:
    with pytest.raises(CommandError, match="password refused: .*too short.*Nothing created"):
        run("maria", "--project", "wrist", stdin="short\n", monkeypatch=monkeypatch)
    assert (
        not User.objects.filter(username="maria").exists()
        and not Membership.objects.filter(user__username="maria").exists()
    )


def test_without_a_terminal_or_password_stdin_it_says_how(db: Any, monkeypatch: Any) -> None:
    with pytest.raises(CommandError, match="--password-stdin"):
        run("maria", stdin=None, monkeypatch=monkeypatch)
    assert not User.objects.filter(username="maria").exists()


def test_an_existing_account_is_only_added_to_a_project(project: Any, personas: Any, monkeypatch: Any) -> None:
    with pytest.raises(CommandError, match="exists already; give --project"):
        run("ana", monkeypatch=monkeypatch)
    before = personas["viewer"].password

    run(personas["viewer"].username, "--project", "wrist", "--role", "annotator", monkeypatch=monkeypatch)

    personas["viewer"].refresh_from_db()
    assert personas["viewer"].password == before  # the password given is not applied to an existing account
    assert Membership.objects.get(user=personas["viewer"], project=project).role == "annotator"


def test_the_last_lead_keeps_their_role_and_unknown_projects_are_named(
    project: Any, personas: Any, monkeypatch: Any
) -> None:
    with pytest.raises(CommandError, match="at least one lead"):
        run(personas["lead"].username, "--project", "wrist", "--role", "viewer", monkeypatch=monkeypatch)
    assert Membership.objects.get(user=personas["lead"], project=project).role == "lead"
    with pytest.raises(CommandError, match="no project with slug 'ankle'"):
        run("maria", "--project", "ankle", monkeypatch=monkeypatch)
    assert not User.objects.filter(username="maria").exists()
