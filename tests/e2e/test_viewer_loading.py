"""How the viewer page loads, in a real browser: the 16-bit image decoded by the worker (and by the
main thread, the fallback) is exactly the stored PNG's pixels; the page's modules all come from its
preloads at versioned URLs, and a second visit takes them from the cache without asking.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

from .conftest import LiveApp
from .test_viewer import MILESTONES, READY, rows, sign_in, signed_in_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Two sums over the decoded samples, exact in doubles (< 2^53) and sensitive to order.
CHECKSUM = """(() => {
    const d = skelexViewer.store.state.image.data;
    let sum = 0, weighted = 0;
    for (let i = 0; i < d.length; i++) { sum += d[i]; weighted += d[i] * (i % 1009); }
    return {width: skelexViewer.store.state.image.width, sum, weighted};
})()"""


def stored_checksum(app: LiveApp, image_id: int) -> dict[str, int]:
    name = rows(app.db, "select display from studies_image where id=?", image_id)[0][0]
    pixels = np.asarray(PILImage.open(app.db.parent / "media" / name)).astype(np.int64).ravel()
    weights = np.arange(pixels.size, dtype=np.int64) % 1009
    return {"width": 2880, "sum": int(pixels.sum()), "weighted": int((pixels * weights).sum())}


def _late(route: Any) -> None:
    time.sleep(2.0)
    route.continue_()


@pytest.mark.parametrize(("suffix", "where"), [("", "worker"), ("?decode=main", "main")])
def test_the_image_shown_is_the_stored_16_bit_image(live_app: LiveApp, browser: Any, suffix: str, where: str) -> None:
    big = live_app.ids["big"]
    errors: list[str] = []
    context, page = signed_in_page(browser, live_app, "ana", errors)
    if where == "worker":
        # The viewer's entry module arrives 2 s late: the image download must not wait for it.
        # (Without the delay the order of the two is a race on a busy machine, not a property.)
        page.route("**/static/frontend/viewer/main.js*", _late)
    page.goto(f"{live_app.url}/projects/{live_app.ids['project']}/images/{big}/{suffix}")
    page.wait_for_function(READY, timeout=30000)
    assert page.evaluate("skelexViewer.decodedIn") == where
    assert page.evaluate(CHECKSUM) == stored_checksum(live_app, big)
    marks = page.evaluate(MILESTONES)
    assert marks["decoded"] <= marks["pixels"] <= marks["first"]
    if where == "worker":  # the worker reports its download; it began before the modules ran
        assert marks["request"] <= marks["firstByte"] <= marks["lastByte"] <= marks["decoded"]
        assert marks["request"] < marks["modules"] - 1000
    context.close()
    assert errors == []


def test_modules_come_from_the_preloads_and_a_second_visit_asks_for_none(live_app: LiveApp, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    sign_in(page, live_app, "ana")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/static/frontend/viewer/" in r.url else None)
    url = f"{live_app.url}/projects/{live_app.ids['project']}/images/{live_app.ids['small']}/"
    page.goto(url)
    page.wait_for_function(READY, timeout=30000)
    preloaded = set(page.evaluate("[...document.querySelectorAll('link[rel=modulepreload]')].map((l) => l.href)"))
    page_modules = {u for u in asked if "?v=" in u and "/decode-worker.js" not in u}
    # Every module the page ran came from its preloads (none found import by import, none missing
    # from the import map: that one would be asked for without a version).
    assert page_modules == preloaded
    unversioned = sorted(Path(u.split("?")[0]).name for u in asked if "?v=" not in u)
    assert unversioned == ["api.js", "png16.js"], "only the worker's own imports (import maps stop at workers)"

    page.goto(url)
    page.wait_for_function(READY, timeout=30000)
    fetched = page.evaluate(
        "performance.getEntriesByType('resource').filter((e) => e.name.includes('/static/frontend/viewer/')"
        " && e.name.includes('?v=') && e.transferSize > 0).map((e) => e.name)"
    )
    assert fetched == [], "versioned modules are cached for good"
    context.close()
