"""Labelling from the queue in a real browser: two annotators press "Label next" and get different
images; Next in the viewer asks the queue, never hands out an image open in the other's viewer,
and comes back to the images passed over once the queue runs dry. On a server of its own, so the
claims made here do not reach the shared server's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import LiveApp, serve
from .test_viewer import rows, signed_in_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUEUE_EMPTY = "The labelling queue is empty: every image is labelled or open in someone else's viewer."
READY = "document.body.dataset.ready === '1' && skelexViewer.firstFrameMs !== null"


@pytest.fixture(scope="module")
def own_app(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[LiveApp]:
    with serve(tmp_path_factory.mktemp("e2e-queue")) as app:
        yield app


def _label_next(page: Any, app: LiveApp) -> None:
    page.goto(f"{app.url}/projects/{app.ids['project']}/")
    page.click("[data-testid=label-next] button")
    page.wait_for_url("**/images/*/?queue=1")
    page.wait_for_function(READY, timeout=20000)


def _next(page: Any) -> None:
    """Presses N and waits until the viewer moved or said something."""
    shown = page.evaluate("skelexViewer.notices.length")
    url = page.url
    page.keyboard.press("n")
    page.wait_for_function(
        "([n, url]) => location.href !== url || skelexViewer.notices.length > n", arg=[shown, url], timeout=15000
    )
    if page.url != url:
        page.wait_for_function(READY, timeout=20000)


def _image_of(app: LiveApp, url: str) -> int:
    return int(url.split("/images/")[1].split("/")[0])


def test_two_annotators_work_the_queue_without_meeting(own_app: LiveApp, browser: Any) -> None:
    big, small = own_app.ids["big"], own_app.ids["small"]
    errors: list[str] = []
    ana_ctx, ana = signed_in_page(browser, own_app, "ana", errors, (1400, 900))
    rui_ctx, rui = signed_in_page(browser, own_app, "rui", errors, (1400, 900))

    _label_next(ana, own_app)
    assert _image_of(own_app, ana.url) == big  # the queue's top image
    assert ana.locator("[data-testid=queue-reason]").inner_text() == "Queue: uncertain: abnormal"
    _label_next(rui, own_app)
    assert _image_of(own_app, rui.url) == small  # not ana's
    assert rui.locator("[data-testid=open-elsewhere]").count() == 0

    # The worklist shows rui whose viewer the top image is open in.
    rui.goto(f"{own_app.url}/projects/{own_app.ids['project']}/worklist/")
    assert rui.locator(f"[data-image='{big}'] .open-elsewhere").inner_text() == "open: ana"

    # Ana's Next: the only other image is open in rui's viewer, so she stays where she is.
    _next(ana)
    assert _image_of(own_app, ana.url) == big
    assert ana.evaluate("skelexViewer.notices.at(-1)") == QUEUE_EMPTY

    # Rui opens ana's image by hand: the viewer says whose it is, and ana keeps it.
    rui.goto(f"{own_app.url}/projects/{own_app.ids['project']}/images/{big}/")
    assert "Open in ana's viewer" in rui.locator("[data-testid=open-elsewhere]").inner_text()
    assert (
        rows(own_app.db, "select claimed_by_id from studies_image where id=?", big)[0][0] == own_app.ids["users"]["ana"]
    )

    # Rui's claim on the small image ends (as after ten idle minutes): ana's Next hands it to her.
    with_rui = "update studies_image set claimed_by_id=null, claimed_at=null where id=?"
    rows(own_app.db, with_rui, small)
    _next(ana)
    assert _image_of(own_app, ana.url) == small
    # Nothing left but the image she passed over: she is told, and the next Next goes back to it.
    _next(ana)
    assert _image_of(own_app, ana.url) == small
    assert ana.evaluate("skelexViewer.notices.at(-1)").endswith("Press Next again to go back to those.")
    _next(ana)
    assert _image_of(own_app, ana.url) == big

    # Rui's tab is still on the big image, warning that ana has it. Ana's claim lapses (as after
    # ten minutes away): rui's next renewal (here: the tab coming back into view) takes the image
    # over and the warning goes.
    stale = "update studies_image set claimed_at='2000-01-01 00:00:00' where id=?"
    rows(own_app.db, stale, big)
    assert rui.locator("[data-testid=open-elsewhere]").count() == 1
    rui.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    rui.locator("[data-testid=open-elsewhere]").wait_for(state="detached", timeout=10000)
    assert (
        rows(own_app.db, "select claimed_by_id from studies_image where id=?", big)[0][0] == own_app.ids["users"]["rui"]
    )

    ana_ctx.close()
    rui_ctx.close()
    assert errors == []
