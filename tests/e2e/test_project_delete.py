"""Deleting in a real browser: a project from its page (the button stays disabled until the lead has
typed the project's slug; sent, it lands on the project list, which says what went), and an image
from the viewer (it lands on the worklist, which no longer lists it)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from .conftest import LiveApp
from .test_viewer import READY, drag, rows, signed_in_page

pytestmark = [pytest.mark.e2e]


def own_project(page: Any, app: LiveApp, name: str) -> int:
    """Starts a project of the signed-in user's own (the seeded one the other tests use stays) and
    returns its id, with its page open."""
    new = page.locator("[data-testid=new-project]")
    new.locator("input[name=name]").fill(name)
    new.locator("button[type=submit]").click()
    page.wait_for_url(f"{app.url}/projects/*/")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def test_a_lead_types_the_slug_and_deletes_the_project(live_app: LiveApp, browser: Any) -> None:
    app = live_app
    errors: list[str] = []
    ctx, page = signed_in_page(browser, app, "rui", errors)
    own_project(page, app, "Ankle pilot")

    form = page.locator("[data-testid=delete-project-form]")
    button = form.locator("button:has-text('Delete project')")
    expect(form).to_contain_text("Type the project's slug, ankle-pilot, to confirm")
    expect(button).to_be_disabled()
    form.locator("input[name=confirm]").fill("Ankle pilot")  # the name, not the slug
    expect(button).to_be_disabled()
    form.locator("input[name=confirm]").fill("ankle-pilot")
    expect(button).to_be_enabled()
    button.click()

    page.wait_for_url(f"{app.url}/")
    expect(page.locator(".messages")).to_have_text("Deleted project 'Ankle pilot' (0 images).")
    expect(page.get_by_role("link", name="Ankle pilot")).to_have_count(0)
    ctx.close()
    assert errors == []


def test_a_lead_deletes_the_image_on_screen_from_the_viewer(live_app: LiveApp, browser: Any, tmp_path: Path) -> None:
    app = live_app
    errors: list[str] = []
    ctx, page = signed_in_page(browser, app, "rui", errors)
    project = own_project(page, app, "Wrist pilot")  # with one uploaded film
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 48), dtype=np.uint8)).save(buf, format="PNG")
    (tmp_path / "wrong-patient.png").write_bytes(buf.getvalue())
    page.set_input_files("section[data-testid=upload] input[name=files]", tmp_path / "wrong-patient.png")
    page.click("section[data-testid=upload] button[type=submit]")
    page.wait_for_url(f"{app.url}/projects/{project}/")
    [(image, name)] = rows(app.db, "select id, name from studies_image where project_id=?", project)
    add = page.locator("[data-testid=add-member]")
    add.locator("input[name=username]").fill("ana")
    add.locator("button[type=submit]").click()
    page.wait_for_url(f"{app.url}/projects/{project}/*")
    # Ana has the image open while rui deletes it.
    ana_errors: list[str] = []
    ana_ctx, ana = signed_in_page(browser, app, "ana", ana_errors)
    ana.goto(f"{app.url}/projects/{project}/images/{image}/")
    ana.wait_for_function(READY + " && document.getElementById('live').classList.contains('on')", timeout=20000)

    page.goto(f"{app.url}/projects/{project}/images/{image}/")
    page.wait_for_function(READY, timeout=20000)
    danger = page.locator("[data-testid=delete-image]")
    expect(danger.locator("button")).to_be_hidden()  # folded away until asked for
    danger.locator("summary").click()
    expect(danger).to_contain_text("cannot be undone")
    danger.locator("button:has-text('Delete for good')").click()

    page.wait_for_url(f"{app.url}/projects/{project}/worklist/")
    expect(page.locator(".messages")).to_have_text(f"Deleted image {name} and its 0 labels.")
    expect(page.locator("body")).to_contain_text("0 images")
    assert rows(app.db, "select count(*) from studies_image where project_id=?", project) == [(0,)]
    # Ana's viewer says so at once, with the way back, and takes no more edits.
    gone = ana.locator("[data-testid=image-deleted]")
    expect(gone).to_contain_text("Deleted by rui: this image is no longer in the project")
    expect(gone.get_by_role("link", name="Back to the worklist")).to_be_visible()
    drag(ana, (5, 5), (30, 40))  # a new box: refused here, not sent
    ana.wait_for_function("skelexViewer.notices.some((n) => n.startsWith('This image was deleted'))")
    assert ana.evaluate("skelexViewer.store.state.annotations.length") == 0
    ctx.close()
    ana_ctx.close()
    assert errors == [] and not [e for e in ana_errors if e.startswith("pageerror")]
