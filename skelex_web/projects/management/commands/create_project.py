"""``python manage.py create_project NAME --lead USER [--slug SLUG] [--description TEXT]``.

Creates a project with the default label schema (the SKELEX heads, boxes fracture / lesion /
implant) and USER as its lead, audited as the API's create is; prints its slug, which
``import_images`` and ``import_dataset`` take as ``--project``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from skelex_web.projects.models import Project
from skelex_web.projects.services import create_project


class Command(BaseCommand):
    help = "Create a project (default label schema) with a lead; prints its slug for --project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the project's name, e.g. 'FracAtlas'")
        parser.add_argument("--lead", required=True, help="username of the project's first lead")
        parser.add_argument("--slug", default="", help="short name for --project (default: made from the name)")
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        lead = get_user_model().objects.filter(username=options["lead"]).first()
        if lead is None:
            raise CommandError(f"no user {options['lead']!r}: create the account first (manage.py create_user NAME)")
        slug = options["slug"].strip()
        if slug and Project.objects.filter(slug=slug).exists():
            raise CommandError(f"a project with slug {slug!r} exists already")
        name = options["name"].strip()
        if not name:
            raise CommandError("the project needs a name")
        try:
            project = create_project(actor=lead, name=name, slug=slug, description=options["description"])
        except IntegrityError as exc:  # a slug taken at the same moment
            raise CommandError(f"could not create the project: {exc}") from None
        self.stdout.write(f"created project {project.name!r} (slug {project.slug}, id {project.pk}), lead {lead}")
