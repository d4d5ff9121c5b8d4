"""Every page passes axe-core's checks (WCAG 2 A/AA and best practices) in a real browser: form
controls have names a screen reader reads, headings and landmarks are in order. axe-core comes
from frontend/node_modules (a pinned dev dependency); nothing is fetched at run time."""

from __future__ import annotations

from typing import Any

import pytest

from tests.paths import REPO_ROOT

from .conftest import LiveApp
from .test_project_delete import own_project
from .test_viewer import READY, signed_in_page

pytestmark = [pytest.mark.e2e]

AXE = REPO_ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
RUN = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(
    (v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")})`)"""


def violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    return list(page.evaluate(RUN))


def test_the_pages_a_reader_and_a_lead_use_have_no_accessibility_violations(live_app: LiveApp, browser: Any) -> None:
    app, project = live_app, live_app.ids["project"]
    found: dict[str, list[str]] = {}
    errors: list[str] = []
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    page.goto(f"{app.url}/accounts/login/")
    found["sign in"] = violations(page)
    ctx.close()

    ctx, page = signed_in_page(browser, app, "ana", errors)
    found["projects"] = violations(page)
    for name, path in [
        ("project (annotator)", f"/projects/{project}/"),
        ("worklist", f"/projects/{project}/worklist/"),
        ("password change", "/accounts/password_change/"),
    ]:
        page.goto(app.url + path)
        found[name] = violations(page)
    page.goto(f"{app.url}/projects/{project}/images/{app.ids['big']}/")
    page.wait_for_function(READY, timeout=20000)
    found["viewer"] = violations(page)
    ctx.close()

    ctx, page = signed_in_page(browser, app, "rui", errors)
    own_project(page, app, "Accessible pilot")  # rui leads it: the members, export and delete forms
    found["project (lead)"] = violations(page)
    ctx.close()

    assert {name: v for name, v in found.items() if v} == {}
    assert errors == []
