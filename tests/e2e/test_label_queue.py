"""Labelling from the queue in a real browser: two annotators press "Label next" and get different
images; Next in the viewer asks the queue, never hands out an image open in the other's viewer,
and comes back to the images passed over once the queue runs dry. On a server of its own, so the
claims made here do not reach the shared server's tests."""

from __future__ import annotations

import time
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


# What a Next in queue mode says when it does not move (frontend/src/viewer/queue.js): any other
# notice (a live update, a claim renewal) may come meanwhile and is not the answer.
QUEUE_ANSWERS = ("The labelling queue is empty", "No other image in the queue", "Could not ask the queue")


def _next(page: Any) -> None:
    """Presses N and waits until the viewer moved or the queue answered that it stays."""
    shown = page.evaluate("skelexViewer.notices.length")
    url = page.url
    page.keyboard.press("n")
    page.wait_for_function(
        "([n, url, answers]) => location.href !== url"
        " || skelexViewer.notices.slice(n).some((t) => answers.some((a) => t.startsWith(a)))",
        arg=[shown, url, list(QUEUE_ANSWERS)],
        timeout=15000,
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

    # The worklist (in another tab: leaving the viewer would hand the small image back) shows rui
    # whose viewer the top image is open in.
    rui_list = rui_ctx.new_page()
    rui_list.goto(f"{own_app.url}/projects/{own_app.ids['project']}/worklist/")
    assert rui_list.locator(f"[data-image='{big}'] .open-elsewhere").inner_text() == "open: ana"
    rui_list.close()

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

    # Rui left the small image for ana's, which handed it back to the queue: ana's Next gets it.
    _wait_released(own_app, small)
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


def _holder(app: LiveApp, image: int) -> int | None:
    return rows(app.db, "select claimed_by_id from studies_image where id=?", image)[0][0]  # type: ignore[no-any-return]


def _wait_released(app: LiveApp, image: int) -> None:
    """Waits for a closed viewer's release (sent as the page goes, answered by nobody)."""
    deadline = time.monotonic() + 10
    while _holder(app, image) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _holder(app, image) is None


def test_closing_the_viewer_hands_the_image_back_to_the_queue_at_once(own_app: LiveApp, browser: Any) -> None:
    big = own_app.ids["big"]
    rows(own_app.db, "update studies_image set claimed_by_id=null, claimed_at=null")
    errors: list[str] = []
    ana_ctx, ana = signed_in_page(browser, own_app, "ana", errors, (1400, 900))
    rui_ctx, rui = signed_in_page(browser, own_app, "rui", errors, (1400, 900))
    _label_next(ana, own_app)
    assert _image_of(own_app, ana.url) == big

    # A reload: the old page's release must not end the claim the new page has just made.
    ana.reload()
    ana.wait_for_function(READY, timeout=20000)
    ana.wait_for_timeout(1000)  # time for the old page's release to land
    assert _holder(own_app, big) == own_app.ids["users"]["ana"]

    # Ana closes the tab: the image is back in the queue now, not ten minutes later.
    ana.close(run_before_unload=True)
    _wait_released(own_app, big)
    _label_next(rui, own_app)
    assert _image_of(own_app, rui.url) == big

    ana_ctx.close()
    rui_ctx.close()
    assert errors == []


def test_a_window_still_on_the_image_keeps_it_when_another_of_the_same_user_closes(
    own_app: LiveApp, browser: Any
) -> None:
    big = own_app.ids["big"]
    rows(own_app.db, "update studies_image set claimed_by_id=null, claimed_at=null")
    errors: list[str] = []
    ana_ctx, ana = signed_in_page(browser, own_app, "ana", errors, (1400, 900))
    _label_next(ana, own_app)
    assert _image_of(own_app, ana.url) == big
    # The same annotator opens the image in a second window, side by side (both visible).
    second = ana_ctx.new_page()
    second.set_viewport_size({"width": 1400, "height": 900})
    second.goto(ana.url)
    second.wait_for_function(READY, timeout=20000)

    # The second window, which made the latest claim, closes and hands it back; the first, still on
    # the image, claims it again at once instead of at its next renewal minutes later, so the queue
    # cannot hand the image to someone else meanwhile.
    second.close(run_before_unload=True)
    ana.wait_for_timeout(2000)
    assert _holder(own_app, big) == own_app.ids["users"]["ana"]

    ana_ctx.close()
    assert errors == []
