"""``python manage.py create_user USERNAME [--email E] [--project SLUG [--role ROLE]] [--staff]
[--password-stdin]``.

Creates a person's account (the projects page's members form adds only existing accounts) and,
with ``--project``, makes them a member with ``--role`` (annotator by default), audited as the
members form is. For an existing account ``--project`` only adds or changes the membership.

The password is asked twice at a terminal, or read from the first line of standard input with
``--password-stdin`` (scripts); never an argument, which the process list and shell history keep.
It must pass the site's password rules (``AUTH_PASSWORD_VALIDATORS``), which the error names.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework.exceptions import ValidationError as RefusedChange

from skelex_web.projects.models import Project, Role
from skelex_web.projects.services import LAST_LEAD, set_membership


class Command(BaseCommand):
    help = "Create an account (password asked, or read with --password-stdin); --project adds it to a project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="the name the person signs in with")
        parser.add_argument("--email", default="")
        parser.add_argument("--project", default="", help="slug of a project to add the account to")
        parser.add_argument(
            "--role", default=Role.ANNOTATOR, choices=Role.values, help="role in --project (default annotator)"
        )
        parser.add_argument("--staff", action="store_true", help="may sign in to /admin/ and read site-level audit")
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from the first line of standard input"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"].strip()
        if not username:
            raise CommandError("the account needs a user name")
        project = None
        if options["project"]:
            project = Project.objects.filter(slug=options["project"]).first()
            if project is None:
                raise CommandError(f"no project with slug {options['project']!r}")
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is not None and project is None:
            raise CommandError(f"user {username!r} exists already; give --project SLUG to add them to a project")
        with transaction.atomic():
            if user is None:
                user = User(username=username, email=options["email"], is_staff=options["staff"])
                user.set_password(self._password(user, options["password_stdin"]))
                user.save()
                self.stdout.write(f"created user {username!r}" + (" (staff)" if options["staff"] else ""))
            if project is not None:
                try:
                    set_membership(actor=None, project=project, user=user, role=options["role"])
                except RefusedChange as exc:  # the last lead of a project keeps their role
                    raise CommandError(f"membership not changed: {LAST_LEAD}") from exc
                self.stdout.write(f"{username} is {options['role']} in {project.name!r} (slug {project.slug})")

    def _password(self, user: Any, from_stdin: bool) -> str:
        if from_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        elif sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password (again): ") != password:
                raise CommandError("the two passwords differ; nothing created")
        else:
            raise CommandError(
                "no terminal to ask the password at: pipe it in with --password-stdin "
                "(never as an argument, which the process list and shell history keep)"
            )
        if not password:
            raise CommandError("empty password; nothing created")
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("password refused: " + " ".join(exc.messages) + " Nothing created.") from None
        return password
