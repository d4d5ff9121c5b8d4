"""Deleting a project from its page in a real browser: the button stays disabled until the lead has
typed the project's slug; sent, it lands on the project list, which says what went."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import LiveApp
from .test_viewer import signed_in_page

pytestmark = [pytest.mark.e2e]


def test_a_lead_types_the_slug_and_deletes_the_project(live_app: LiveApp, browser: Any) -> None:
    app = live_app
    errors: list[str] = []
    ctx, page = signed_in_page(browser, app, "rui", errors)
    # A project of rui's own, so the seeded one the other tests use stays.
    new = page.locator("[data-testid=new-project]")
    new.locator("input[name=name]").fill("Ankle pilot")
    new.locator("button[type=submit]").click()
    page.wait_for_url(f"{app.url}/projects/*/")

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
