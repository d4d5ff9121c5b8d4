"""The server-rendered pages: sign-in gate, membership (404 for outsiders), project progress counts,
the worklist's filters and active-learning order, and the viewer shell's configuration."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from skelex_web.staticserve import StaticFiles
from tests.factories import AnnotationFactory, ImageFactory, SuggestionFactory
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.django_db


def signed_in(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


def viewer_config(html: str) -> dict[str, Any]:
    start = html.index('<script id="viewer-config" type="application/json">') + len(
        '<script id="viewer-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


@pytest.mark.parametrize(
    "path", ["/", "/projects/{p}/", "/projects/{p}/worklist/", "/projects/{p}/images/{i}/"], ids=lambda p: p
)
def test_pages_send_anonymous_users_to_sign_in(project: Any, path: str) -> None:
    image = ImageFactory(project=project)
    url = path.format(p=project.pk, i=image.pk)
    r = Client().get(url)
    assert r.status_code == 302
    assert r["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("path", ["/projects/{p}/", "/projects/{p}/worklist/", "/projects/{p}/images/{i}/"])
def test_outsiders_get_404(project: Any, personas: dict[str, Any], path: str) -> None:
    image = ImageFactory(project=project)
    r = signed_in(personas["outsider"]).get(path.format(p=project.pk, i=image.pk))
    assert r.status_code == 404


def test_image_of_another_project_is_404_in_this_projects_viewer(
    project: Any, other_project: Any, personas: Any
) -> None:
    foreign = ImageFactory(project=other_project)
    r = signed_in(personas["annotator"]).get(f"/projects/{project.pk}/images/{foreign.pk}/")
    assert r.status_code == 404


def test_sign_in_page_renders_and_signs_in(personas: dict[str, Any]) -> None:
    c = Client()
    page = c.get("/accounts/login/")
    assert page.status_code == 200
    assert b"Sign in" in page.content
    r = c.post("/accounts/login/", {"username": "ana", "password": "pw-for-tests-1"})
    assert r.status_code == 302 and r["Location"] == "/"
    bad = Client().post("/accounts/login/", {"username": "ana", "password": "wrong"})
    assert b"did not match" in bad.content


def test_people_change_their_own_password_from_the_top_bar(personas: dict[str, Any]) -> None:
    ana, elsewhere = Client(), Client()
    for c in (ana, elsewhere):
        c.post("/accounts/login/", {"username": "ana", "password": "pw-for-tests-1"})
    assert 'href="/accounts/password_change/"' in ana.get("/").content.decode()
    form = ana.get("/accounts/password_change/")
    assert 'data-testid="password-change"' in form.content.decode()  # the house page, not the admin's

    wrong = ana.post(
        "/accounts/password_change/",
        {"old_password": "guess", "new_password1": "wrist-films-42", "new_password2": "wrist-films-42"},
    )
    short = ana.post(
        "/accounts/password_change/",
        {"old_password": "pw-for-tests-1", "new_password1": "short", "new_password2": "short"},
    )
    assert "Your old password was entered incorrectly" in wrong.content.decode()
    assert "too short" in short.content.decode()
    assert Client().login(username="ana", password="pw-for-tests-1")  # unchanged so far

    done = ana.post(
        "/accounts/password_change/",
        {"old_password": "pw-for-tests-1", "new_password1": "wrist-films-42", "new_password2": "wrist-films-42"},
        follow=True,
    )
    assert 'data-testid="password-changed"' in done.content.decode()
    assert Client().login(username="ana", password="wrist-films-42")
    assert ana.get("/").status_code == 200  # still signed in here
    assert elsewhere.get("/").status_code == 302  # the other browser was signed out


def test_password_change_needs_a_signed_in_user(db: Any) -> None:
    r = Client().get("/accounts/password_change/")
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


def test_project_list_shows_only_my_projects(project: Any, other_project: Any, personas: Any) -> None:
    html = signed_in(personas["annotator"]).get("/").content.decode()
    assert "Wrist fractures" in html
    assert "Someone else" not in html


def test_project_page_counts_progress_and_who_labelled_what(project: Any, personas: Any) -> None:
    a, b, c = (ImageFactory(project=project, status=s) for s in ("analysed", "analysed", "failed"))
    AnnotationFactory(image=a, author=personas["annotator"], origin="suggestion-accepted", time_spent_ms=120000)
    AnnotationFactory(
        image=a,
        author=personas["annotator"],
        kind="head",
        head="abnormal",
        value="yes",
        x0=None,
        y0=None,
        x1=None,
        y1=None,
    )
    AnnotationFactory(image=b, author=personas["reviewer"], is_deleted=True)
    SuggestionFactory(image=a, state="accepted")
    SuggestionFactory(image=b, state="rejected")
    SuggestionFactory(image=b, state="rejected")
    SuggestionFactory(image=c, state="pending")
    r = signed_in(personas["viewer"]).get(f"/projects/{project.pk}/")
    assert r.status_code == 200
    s = r.context["summary"]
    assert (s.labelled, s.total) == (1, 3), "a deleted annotation does not make an image labelled"
    assert {v: n for v, _, n in s.by_status}["failed"] == 1
    assert s.suggestions == {"pending": 1, "accepted": 1, "edited": 0, "rejected": 2}
    assert s.by_user == [
        {"username": "ana", "images": 1, "boxes": 1, "heads": 1, "accepted": 1, "edited": 0, "time_min": 2.0}
    ]
    html = r.content.decode()
    assert "1 / 3" in html and f"/projects/{project.pk}/worklist/" in html
    # Labels imported without an author are called that, not a deleted user's.
    AnnotationFactory(image=b, author=None, origin="imported")
    names = [
        row["username"]
        for row in signed_in(personas["viewer"]).get(f"/projects/{project.pk}/").context["summary"].by_user
    ]
    assert sorted(names) == ["(imported)", "ana"]  # NULL authors sort first or last by database


def test_worklist_orders_by_active_learning_priority_then_id(project: Any, personas: Any) -> None:
    low = ImageFactory(project=project, al_priority=0.1)
    unscored = ImageFactory(project=project)
    high = ImageFactory(project=project, al_priority=0.9, al_reason="uncertain: abnormal")
    r = signed_in(personas["annotator"]).get(f"/projects/{project.pk}/worklist/")
    assert [i.pk for i in r.context["page"].object_list] == [high.pk, low.pk, unscored.pk]
    assert "uncertain: abnormal" in r.content.decode()


def test_labelled_images_keep_their_place_in_the_worklist_without_their_old_reason(project: Any, personas: Any) -> None:
    done = ImageFactory(project=project, al_priority=0.95, al_reason="uncertain: p(implant) = 0.49")
    AnnotationFactory(image=done, kind="head", head="implant", value="no", label="")
    todo = ImageFactory(project=project, al_priority=0.2, al_reason="uncertain: p(abnormal) = 0.61")
    SuggestionFactory(image=todo, kind="head", head="abnormal", label="", value={"answer": "yes"})
    SuggestionFactory(image=todo)
    r = signed_in(personas["annotator"]).get(f"/projects/{project.pk}/worklist/")
    # The order stays put (N goes on from a just-labelled image); "not yet" lists what is left.
    assert [i.pk for i in r.context["page"].object_list] == [done.pk, todo.pk]
    left = signed_in(personas["annotator"]).get(f"/projects/{project.pk}/worklist/?labelled=no")
    assert [i.pk for i in left.context["page"].object_list] == [todo.pk]
    html = r.content.decode()
    assert "uncertain: p(abnormal) = 0.61" in html and "p(implant) = 0.49" not in html
    # Pending box suggestions, as the viewer counts them (the head prediction is not a box).
    assert "1 suggested" in html


def test_worklist_filters(project: Any, personas: Any) -> None:
    hand = ImageFactory(project=project, body_part="hand", status="analysed")
    wrist = ImageFactory(project=project, body_part="wrist", status="ingested")
    labelled = ImageFactory(project=project, body_part="hand")
    AnnotationFactory(image=labelled, label="implant")
    SuggestionFactory(image=wrist, state="pending")
    c = signed_in(personas["annotator"])

    def ids(query: str) -> list[int]:
        return [i.pk for i in c.get(f"/projects/{project.pk}/worklist/?{query}").context["page"].object_list]

    assert ids("body_part=hand") == [hand.pk, labelled.pk]
    assert ids("status=ingested") == [wrist.pk]
    assert ids("label=implant") == [labelled.pk]
    assert ids("suggestions=pending") == [wrist.pk]
    assert ids("suggestions=none") == [hand.pk, labelled.pk]
    # Labelled: any live label, a findings answer alone included; a deleted one does not count.
    answered = ImageFactory(project=project)
    AnnotationFactory(image=answered, kind="head", head="abnormal", value="no", label="")
    AnnotationFactory(image=hand, is_deleted=True)
    assert ids("labelled=yes") == [labelled.pk, answered.pk]
    assert ids("labelled=no") == [hand.pk, wrist.pk]
    assert ids("labelled=maybe") == ids("")  # not a filter value: no filter
    page = c.get(f"/projects/{project.pk}/worklist/?labelled=yes").content.decode()
    assert '<option value="yes" selected>yes</option>' in page and "1 answer</span>" in page


def test_viewer_page_carries_config_and_worklist_neighbours(project: Any, personas: Any) -> None:
    first = ImageFactory(
        project=project, al_priority=0.9, body_part="hand", pixel_spacing_row=0.1, pixel_spacing_col=0.1
    )
    second = ImageFactory(project=project, al_priority=0.5, body_part="hand")
    ImageFactory(project=project, al_priority=0.7, body_part="foot")
    r = signed_in(personas["annotator"]).get(f"/projects/{project.pk}/images/{first.pk}/?body_part=hand")
    assert r.status_code == 200
    cfg = viewer_config(r.content.decode())
    assert cfg["image"]["id"] == first.pk
    assert cfg["image"]["display_url"] == f"/api/images/{first.pk}/display/"
    assert cfg["image"]["pixel_spacing_row"] == 0.1
    assert cfg["user"] == {"id": personas["annotator"].pk, "name": "ana"}
    assert cfg["schema"]["box_labels"] == ["fracture", "lesion", "implant"]
    assert cfg["prev_url"] is None
    assert cfg["next_url"] == f"/projects/{project.pk}/images/{second.pk}/?body_part=hand"
    assert cfg["can_edit"] is True
    assert "/static/frontend/viewer/main.js" in r.content.decode()


def test_viewer_says_viewers_cannot_edit(project: Any, personas: Any) -> None:
    image = ImageFactory(project=project)
    cfg = viewer_config(
        signed_in(personas["viewer"]).get(f"/projects/{project.pk}/images/{image.pk}/").content.decode()
    )
    assert cfg["can_edit"] is False


# Static imports (`import … from "./x.js"`, `export … from`, `import "./x.js"`); not `import("…")`
# types in JSDoc comments.
IMPORT = re.compile(r'^\s*(?:import|export)\b[^;()=]*?["\'](\.{1,2}/[^"\']+)["\']', re.MULTILINE)
VIEWER = REPO_ROOT / "frontend" / "src" / "viewer"


def imported_modules(entry: Path) -> set[Path]:
    """Every module `entry` imports, directly or not (itself included), read from the sources."""
    seen: set[Path] = set()
    todo = [entry.resolve()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += [(path.parent / rel).resolve() for rel in IMPORT.findall(path.read_text())]
    return seen


def static_url(path: Path) -> str:
    return "/static/frontend/" + path.relative_to(VIEWER.parent).as_posix()


def asgi_get(app: Any, url: str) -> tuple[int, dict[str, str]]:
    path, _, query = url.partition("?")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "query_string": query.encode(), "headers": []}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], {k.decode(): v.decode() for k, v in sent[0]["headers"]}


def test_the_import_graph_reader_sees_imports_across_lines() -> None:
    graph = imported_modules(VIEWER / "main.js")
    assert VIEWER / "commands" / "addBox.js" in graph  # through actions.js
    assert VIEWER / "emitter.js" in graph  # through store.js
    assert VIEWER / "decode-worker.js" not in graph


def test_viewer_preloads_every_module_it_imports_at_versioned_urls(project: Any, personas: Any) -> None:
    image = ImageFactory(project=project)
    html = signed_in(personas["annotator"]).get(f"/projects/{project.pk}/images/{image.pk}/").content.decode()
    importmap = json.loads(re.search(r'<script type="importmap">(.*?)</script>', html, re.DOTALL)[1])["imports"]
    preloaded = re.findall(r'<link rel="modulepreload" href="([^"]+)"', html)
    main = re.search(r'<script type="module" src="([^"]+)"></script>', html)[1]
    assert importmap[static_url(VIEWER / "main.js")] == main
    # Every module main.js imports, however deep: preloaded (so the browser fetches them at once,
    # not import by import), at the URL its importers' relative imports are mapped to.
    for module in imported_modules(VIEWER / "main.js"):
        versioned = importmap.get(static_url(module))
        assert versioned and "?v=" in versioned, module
        assert versioned in preloaded, f"{module} is imported but not preloaded"
    # Those URLs are what the server caches for good (a warm visit asks for nothing).
    app = StaticFiles(lambda *a: None, "/static/", "no-cache")
    for url in preloaded:
        status, headers = asgi_get(app, url)
        assert (status, headers["cache-control"]) == (200, "public, max-age=31536000, immutable"), url
    # The image's worker starts before any module or the stylesheet is asked for, on the image's URL.
    head = html[: html.index("</head>")]
    worker = re.search(r'new Worker\("([^"]+)"', head)
    assert worker and worker.start() < head.index("modulepreload") and worker.start() < head.index('rel="stylesheet"')
    worker_url = json.loads(f'"{worker[1]}"')  # the template escapes it for a JS string
    assert worker_url.startswith("/static/frontend/viewer/decode-worker.js?v=")
    assert asgi_get(app, worker_url)[0] == 200
    assert f'w.postMessage({{ url: "/api/images/{image.pk}/display/" }})' in head
