"""The project page, live, in a real browser against the app with its embedded Celery worker (as
``make demo`` serves it): a lead watches a training round run (a progress bar, then the new round
in the table and the curve) and an annotator's label reach the counts, with no reload; a worklist
open meanwhile says its order changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import LiveApp, serve
from .test_viewer import drag, open_viewer, signed_in_page, wait_saved

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def learning_app(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[LiveApp]:
    with serve(tmp_path_factory.mktemp("e2e-live"), worker=True, seeds=("seed_learning.py",)) as app:
        yield app


def _labelled(page: Any) -> str:
    return str(page.locator("[data-stat=labelled] .big").inner_text())


def test_the_project_page_follows_a_training_round_and_new_labels(learning_app: LiveApp, browser: Any) -> None:
    app = learning_app
    url = f"{app.url}/projects/{app.ids['project']}/"
    errors: list[str] = []
    lead_ctx, watch = signed_in_page(browser, app, "lea", errors)
    watch.goto(url)
    watch.wait_for_function("window.skelexProject && skelexProject.connected", timeout=15000)
    watch.evaluate("window.notReloaded = true")
    assert watch.locator("[data-testid=rounds]").count() == 0
    assert _labelled(watch) == "12 / 32"
    ana_row = watch.locator("[data-testid=by-user] tbody tr", has_text="ana").locator("td").all_inner_texts()
    assert ana_row[:3] == ["ana", "12", "0"]

    # A worklist open in another tab, read before the round.
    worklist = lead_ctx.new_page()
    worklist.goto(f"{url}worklist/")
    worklist.wait_for_function("window.skelexWorklist && skelexWorklist.connected", timeout=15000)
    assert worklist.locator("[data-testid=worklist-stale]").is_hidden()

    # Another tab of the lead starts a round; the embedded worker runs it on the train queue.
    other = lead_ctx.new_page()
    other.goto(url)
    other.click("button:has-text('Retrain now')")
    other.wait_for_url(f"{url}#learning")  # back at the button's section, its message shown there
    assert "Training round queued" in other.locator("[data-testid=messages-learning]").inner_text()
    expect(other.locator("[data-testid=messages-learning]")).to_be_in_viewport()
    other.close()

    # The watching tab shows the round's progress, then its row in the table, without a reload.
    watch.wait_for_selector("[data-job=retrain].finished", timeout=90000)
    assert watch.locator("[data-job=retrain] .title").inner_text() == "Training round"
    assert watch.locator("[data-job=retrain] .text").inner_text() == "done (3 / 3 steps)"
    bar = watch.get_by_role("progressbar", name="Training round")  # what a screen reader finds
    assert bar.get_attribute("aria-valuenow") == "3" and bar.get_attribute("aria-valuemax") == "3"
    watch.wait_for_selector("[data-testid=rounds] tbody tr", timeout=15000)
    cells = watch.locator("[data-testid=rounds] tbody tr").first.locator("td").all_inner_texts()
    assert cells[0] == "1" and cells[2] == "12" and cells[3] == "on demand by lea"
    assert cells[4] == "hybrid"  # the project's ranking, the default
    assert float(cells[5]) > 0.9  # AUROC of "abnormal": the two groups are well apart
    assert watch.locator("[data-live=learning] svg circle").count() >= 1  # the curve's point
    # The worklist does not reorder under its reader, but says that the order changed.
    stale = worklist.locator("[data-testid=worklist-stale]")
    stale.wait_for(state="visible", timeout=15000)
    assert stale.inner_text().startswith("The labelling order changed")
    worklist.click("[data-testid=worklist-stale] a")
    worklist.wait_for_load_state()
    assert worklist.locator("[data-testid=worklist-stale]").is_hidden()
    worklist.close()
    # The finished bar leaves after a few seconds.
    watch.wait_for_selector("[data-job=retrain]", state="detached", timeout=15000)

    # An annotator labels an image: the watching page's counts follow.
    ana_ctx, ana = signed_in_page(browser, app, "ana", errors)
    open_viewer(ana, app, app.ids["small"])
    drag(ana, (100, 100), (300, 250))
    wait_saved(ana)
    watch.wait_for_function(
        "document.querySelector('[data-stat=labelled] .big').textContent.trim().startsWith('13 /')", timeout=15000
    )
    row = watch.locator("[data-testid=by-user] tbody tr", has_text="ana").locator("td").all_inner_texts()
    assert row[:3] == ["ana", "13", "1"]  # images, boxes: her new box is counted
    assert watch.evaluate("window.notReloaded === true")

    ana_ctx.close()
    lead_ctx.close()
    assert errors == []


def test_removing_a_member_asks_first_and_a_no_keeps_them(learning_app: LiveApp, browser: Any) -> None:
    """Last in this module: it removes ana from the project the other tests use."""
    app = learning_app
    url = f"{app.url}/projects/{app.ids['project']}/"
    errors: list[str] = []
    ctx, page = signed_in_page(browser, app, "lea", errors)
    page.goto(url)
    remove = page.locator("[data-member=ana] button:has-text('Remove')")
    asked: list[str] = []

    def answer(dialog: Any, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda d: answer(d, False))
    remove.click()
    page.wait_for_timeout(500)  # a sent form would have navigated by now
    assert asked == ["Remove ana from Long-bone fractures? Their labels stay in the project."]
    page.reload()
    assert page.locator("[data-member=ana]").count() == 1  # still a member

    page.once("dialog", lambda d: answer(d, True))
    page.locator("[data-member=ana] button:has-text('Remove')").click()
    page.wait_for_load_state()
    expect(page.locator("[data-testid=messages-members]")).to_contain_text("ana removed from the project.")
    assert page.locator("[data-member=ana]").count() == 0 and len(asked) == 2
    ctx.close()
    assert errors == []
