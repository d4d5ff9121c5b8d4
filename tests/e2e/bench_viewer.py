"""Benchmark: time to the first frame of the 2880×2304 16-bit image, and the window/level redraw
rate, with the page's boot script (image fetched first thing, decoded in a worker; the default)
versus fetching and decoding on the main thread once the modules have loaded (``?decode=main``),
measured side by side in alternation on one server.

Run: ``.venv/bin/python -m tests.e2e.bench_viewer [rounds]`` (needs /usr/bin/chromium).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, serve

READY = "document.body.dataset.ready === '1' && skelexViewer.firstFrameMs !== null"
WL_FPS = """async () => {
    const v = skelexViewer, wl = v.store.state.wl, n = 60;
    const frame = () => new Promise((r) => requestAnimationFrame(r));
    await frame();
    const t0 = performance.now();
    v.store.state.interacting = true;
            for (let i = 0; i < n; i++) { wl.center += 97; wl.width += 53; v.store.emit('wl'); await frame(); }
    const fps = n * 1000 / (performance.now() - t0);
    v.store.state.interacting = false;
    return fps;
}"""


def main(rounds: int) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp)) as app, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = context.new_page()
        page.goto(f"{app.url}/accounts/login/")
        page.fill("input[name=username]", "ana")
        page.fill("input[name=password]", app.password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{app.url}/")
        url = f"{app.url}/projects/{app.ids['project']}/images/{app.ids['big']}/"
        first: dict[str, list[float]] = {"worker": [], "main": []}
        fps: list[float] = []
        page.goto(url)  # warm the server's and the browser's caches of the modules once
        page.wait_for_function(READY, timeout=30000)
        for _ in range(rounds):
            for variant, suffix in (("worker", ""), ("main", "?decode=main")):
                page.goto(url + suffix)
                page.wait_for_function(READY, timeout=30000)
                first[variant].append(page.evaluate("skelexViewer.firstFrameMs"))
            fps.append(page.evaluate(WL_FPS))
        browser.close()
    load = os.getloadavg()[0]
    w, m = statistics.median(first["worker"]), statistics.median(first["main"])
    print(f"host load average {load:.1f} on {os.cpu_count()} CPUs; image 2880x2304 16-bit; {rounds} rounds")
    print(
        f"first frame after navigation, median: boot script (early fetch + worker decode) {w:.0f} ms"
        f" | after the modules load (main-thread fetch + decode) {m:.0f} ms"
        f" | ratio {w / m:.2f}"
    )
    print(f"window/level at fit zoom, median: {statistics.median(fps):.1f} fps (target >= 30)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
