"""The server-rendered pages: project list, project progress, worklist and the viewer shell.

Every page needs a signed-in user (else a redirect to sign in) and membership of the project
(else 404, so a project's existence does not leak). The viewer page only hands the browser its
configuration; the viewer itself talks to the REST API.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.safestring import mark_safe

from skelex_web.learning import loop
from skelex_web.projects.models import Project, Role
from skelex_web.projects.permissions import has_role, role_of
from skelex_web.staticserve import versioned_url
from skelex_web.studies.models import Image, ImageStatus

from . import activity, selectors

WORKLIST_PAGE_SIZE = 60
VIEWER_SRC = Path(settings.BASE_DIR) / "frontend" / "src"
VIEWER_MAIN = "frontend/viewer/main.js"
DECODE_WORKER = "frontend/viewer/decode-worker.js"
# JSON inside a <script> element: nothing that could close it or start markup.
_SCRIPT_SAFE = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


@functools.cache
def viewer_modules() -> list[str]:
    """Static paths of every viewer module, preloaded by the page so the browser fetches them all
    at once instead of discovering them import by import (a waterfall of round trips)."""
    return sorted(
        f"frontend/{p.relative_to(VIEWER_SRC).as_posix()}"
        for p in (VIEWER_SRC / "viewer").rglob("*.js")
        if p.name != "decode-worker.js"  # runs in the worker, not in the page
    )


def viewer_scripts() -> dict[str, Any]:
    """The viewer's script URLs with content versions (cached by browsers for good, see
    ``staticserve``), and the import map that sends the modules' own relative imports to the same
    versioned URLs (import maps do not reach the worker: its two imports are revalidated)."""
    urls = {m: versioned_url(m) for m in viewer_modules()}
    importmap = {"imports": {static(m): url for m, url in urls.items()}}
    return {
        "modules": [{"url": url, "main": m == VIEWER_MAIN} for m, url in urls.items()],
        "main_url": urls[VIEWER_MAIN],
        "worker_url": versioned_url(DECODE_WORKER),
        "importmap": mark_safe(json.dumps(importmap).translate(_SCRIPT_SAFE)),  # escaped: _SCRIPT_SAFE
    }


def _project(request: HttpRequest, project_id: int) -> Project:
    project = get_object_or_404(Project, pk=project_id)
    if role_of(request.user, project) is None:
        raise Http404("No such project.")
    return project


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/project_list.html", {"projects": selectors.project_rows(request.user)})


@login_required
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    summary = selectors.project_summary(project)
    role = role_of(request.user, project)
    return render(
        request,
        "pages/project_detail.html",
        {
            "project": project,
            "role": role,
            "summary": summary,
            "learning": selectors.learning_summary(project),
            "export": selectors.export_summary(project) if role == Role.LEAD else None,
            "activity": activity.recent(project) if has_role(request.user, project, Role.REVIEWER) else None,
            "members": project.memberships.select_related("user").order_by("user__username"),
            "roles": Role.values,
            "can_label": has_role(request.user, project, Role.ANNOTATOR),
            "live_url": versioned_url("frontend/project/live.js"),
            "upload": selectors.upload_summary(request.user, project)
            if has_role(request.user, project, Role.ANNOTATOR)
            else None,
        },
    )


@login_required
def comparison_plot(request: HttpRequest, project_id: int) -> FileResponse:
    """The latest ranking comparison's plot (learning curves per ranking, gains over random), for
    every member; 404 while there is none."""
    from skelex_web.learning.services import comparison_dir

    path = comparison_dir(_project(request, project_id)) / "report.png"
    if not path.is_file():
        raise Http404("No ranking comparison yet.")
    response = FileResponse(path.open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, no-cache"  # a new comparison replaces it under the same URL
    return response


@login_required
def worklist(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    filters = selectors.WorklistFilters.from_query(request.GET)
    qs = selectors.annotate_for_list(selectors.worklist(project, filters))
    page = Paginator(qs, WORKLIST_PAGE_SIZE).get_page(request.GET.get("page"))
    holders = loop.open_elsewhere([i.pk for i in page.object_list], request.user)
    for image in page.object_list:
        image.open_elsewhere = holders.get(image.pk)
    query = urlencode(filters.as_query())
    return render(
        request,
        "pages/worklist.html",
        {
            "project": project,
            "page": page,
            "filters": filters,
            "query": query,
            "statuses": ImageStatus.choices,
            "labels": project.label_schema.get("box_labels", []),
            "body_parts": selectors.body_parts(project),
            "suggestion_states": selectors.SUGGESTION_FILTERS,
            "can_label": has_role(request.user, project, Role.ANNOTATOR),
            "live_url": versioned_url("frontend/project/worklist.js"),
        },
    )


def _viewer_url(project: Project, image_id: int | None, query: str) -> str | None:
    if image_id is None:
        return None
    url = reverse("pages:viewer", args=[project.pk, image_id])
    return f"{url}?{query}" if query else url


@login_required
def viewer(request: HttpRequest, project_id: int, image_id: int) -> HttpResponse:
    project = _project(request, project_id)
    image = get_object_or_404(Image, pk=image_id, project=project)
    can_edit = has_role(request.user, project, Role.ANNOTATOR)
    holder = claimed_at = None
    # Open in this viewer: the active-learning queue hands it to no one else meanwhile. Someone
    # else's fresh claim is kept, and this viewer says whose it is.
    if can_edit:
        claimed_at = loop.claim(image, request.user)
        if claimed_at is None:
            holder = loop.open_elsewhere([image.pk], request.user).get(image.pk)
    # Queue mode (from "Label next"): Next asks the queue for the next image handed to you alone,
    # skipping labelled images and those open elsewhere, instead of walking the worklist.
    queue: dict[str, str] | None = None
    if can_edit and request.GET.get("queue") == "1":
        filters = selectors.WorklistFilters()
        prev_id = next_id = None
        placeholder = reverse("pages:viewer", args=[project.pk, 0])
        queue = {
            "next_api": reverse("project-queue-next", args=[project.pk]),
            "viewer_url": placeholder[: placeholder.rindex("/0/")] + "/{id}/?queue=1",
            "reason": image.al_reason,
        }
    else:
        filters = selectors.WorklistFilters.from_query(request.GET)
        prev_id, next_id = selectors.neighbours(project, filters, image.pk)
    query = urlencode(filters.as_query())
    worklist_url = reverse("pages:worklist", args=[project.pk]) + (f"?{query}" if query else "")
    config: dict[str, Any] = {
        "project": {"id": project.pk, "name": project.name},
        "image": {
            "id": image.pk,
            "name": image.name,
            "rows": image.rows,
            "cols": image.cols,
            "pixel_spacing_row": image.pixel_spacing_row,
            "pixel_spacing_col": image.pixel_spacing_col,
            "window_center": image.window_center,
            "window_width": image.window_width,
            "display_url": reverse("image-display", args=[image.pk]),
            "errormap_url": reverse("image-errormap", args=[image.pk]) if image.error_maps.exists() else None,
        },
        "schema": project.label_schema,
        "user": {"id": request.user.pk, "name": request.user.get_username()},
        "can_edit": can_edit,
        "can_edit_others": has_role(request.user, project, Role.REVIEWER),
        "prev_url": _viewer_url(project, prev_id, query),
        "next_url": _viewer_url(project, next_id, query),
        "worklist_url": worklist_url,
        "queue": queue,
        "claim_url": reverse("image-claim", args=[image.pk]) if can_edit else None,
        "open_elsewhere": holder,
        "claimed_at": claimed_at.isoformat() if claimed_at else None,
    }
    return render(
        request,
        "pages/viewer.html",
        {
            "project": project,
            "image": image,
            "config": config,
            "worklist_url": worklist_url,
            "queue": queue,
            "open_elsewhere": holder,
            "role": role_of(request.user, project),
            "image_labels": image.annotations.filter(is_deleted=False).count(),
            **viewer_scripts(),
        },
    )
