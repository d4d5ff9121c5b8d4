"""Benchmark: time from navigation to the first frame of the 2880×2304 16-bit image (the page's
``skelex:first-image-frame`` performance mark) on cold and warm visits, and the window/level rate.

- cold: a fresh browser context (empty HTTP cache, no compiled-code cache), signed in by cookie;
- warm: the same page opened again in that context (modules cached; the 11 MB image is fetched
  again: Playwright contexts keep their HTTP cache in memory, and Chromium's in-memory cache does
  not keep an entry that large, so this is the worst warm case).

Each fresh context first shows about:blank for a moment: headless Chromium builds its omnibox
pop-up WebUI for every new window, 1–2 s of CPU on this 2-core machine, which a real browser has
done long before the user opens an image (the cold visit would otherwise measure that).

Measured side by side, alternating on their own servers: this checkout (worker decode, the default),
this checkout with ``?decode=main`` (the main-thread fallback) and, with ``--baseline REF``, the
checkout at a git ref (``git archive`` into a temporary folder; the working tree is not touched).
The very first visit after the server starts is reported on its own: it also pays the server's
first-request costs.

Run: ``.venv/bin/python -m tests.e2e.bench_viewer [rounds] [--baseline REF]`` (needs /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, LiveApp, serve
from tests.paths import REPO_ROOT

READY = "document.body.dataset.ready === '1' && skelexViewer.firstFrameMs !== null"
SETTLE_MS = 2500
# Milestones in ms since navigation start: the page's marks, or (an older checkout, the main-thread
# path) the image's resource timing and the viewer's debug fields.
TIMINGS = """(displayUrl) => {
    const mark = (name) => performance.getEntriesByName(name)[0]?.startTime ?? null;
    const img = performance.getEntriesByName(new URL(displayUrl, location.href).href)[0];
    const v = skelexViewer;
    return {
        first: mark('skelex:first-image-frame') ?? v.firstFrameMs,
        html: performance.getEntriesByType('navigation')[0].responseEnd,
        request: mark('skelex:image-request') ?? img?.startTime ?? null,
        firstByte: mark('skelex:image-first-byte') ?? img?.responseStart ?? null,
        lastByte: mark('skelex:image-last-byte') ?? img?.responseEnd ?? null,
        modules: mark('skelex:modules-running') ?? v.loadStartMs,
        pixels: mark('skelex:image-pixels') ?? v.pixelsMs,
    };
}"""
PHASES = [
    ("html", "HTML"),
    ("request", "image asked"),
    ("firstByte", "first byte"),
    ("lastByte", "last byte"),
    ("modules", "modules running"),
    ("pixels", "pixels on main thread"),
    ("first", "frame"),
]
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


def checkout(ref: str, into: Path) -> Path:
    """The tree at ``ref`` (git archive), without touching the working tree or the index."""
    tar = subprocess.run(["git", "archive", ref], cwd=REPO_ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(into, filter="data")
    return into


def sign_in(browser: Any, app: LiveApp) -> Any:
    """Session cookies for ``ana`` (each fresh context starts from them, with an empty cache)."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{app.url}/accounts/login/")
    page.fill("input[name=username]", "ana")
    page.fill("input[name=password]", app.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{app.url}/")
    state = context.storage_state()
    context.close()
    return state


def fresh_page(browser: Any, session: Any) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, storage_state=session)
    page = context.new_page()
    page.goto("about:blank")
    page.wait_for_timeout(SETTLE_MS)
    return context, page


def visit(page: Any, app: LiveApp, suffix: str = "") -> dict[str, float]:
    page.goto(f"{app.url}/projects/{app.ids['project']}/images/{app.ids['big']}/{suffix}")
    page.wait_for_function(READY, timeout=30000)
    return page.evaluate(TIMINGS, f"/api/images/{app.ids['big']}/display/")


def median_of(runs: list[dict[str, float]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):5.0f} [{min(values):.0f}–{max(values):.0f}]"


def phases(runs: list[dict[str, float]]) -> str:
    parts = []
    for key, label in PHASES:
        m = median_of(runs, key)
        if m is not None:
            parts.append(f"{label} {m:.0f}")
    return ", ".join(parts)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        one, five, fifteen = os.getloadavg()
        return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f}"


def main(rounds: int, baseline: str | None) -> None:
    from playwright.sync_api import sync_playwright

    load_before = uptime()
    with contextlib.ExitStack() as stack, sync_playwright() as pw:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for folder in ("this", "baseline", "baseline-tree"):
            (tmp / folder).mkdir()
        apps = {"this": stack.enter_context(serve(tmp / "this"))}
        if baseline:
            root = checkout(baseline, tmp / "baseline-tree")
            apps["baseline"] = stack.enter_context(serve(tmp / "baseline", root=root))
        png_mb = sum(p.stat().st_size for p in (tmp / "this" / "media" / "display").glob("*large*")) / 1e6
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        sessions = {name: sign_in(browser, app) for name, app in apps.items()}

        context, page = fresh_page(browser, sessions["this"])
        first_visit = visit(page, apps["this"])
        context.close()
        for name in apps:  # the other servers' first-request costs are not measured either
            if name != "this":
                context, page = fresh_page(browser, sessions[name])
                visit(page, apps[name])
                context.close()

        targets = [("this", "", "this checkout, worker decode (default)")]
        targets.append(("this", "?decode=main", "this checkout, ?decode=main (main thread)"))
        if baseline:
            targets.append(("baseline", "", f"baseline {baseline} (its default)"))
        cold: dict[str, list[dict[str, float]]] = {label: [] for _, _, label in targets}
        warm: dict[str, list[dict[str, float]]] = {label: [] for _, _, label in targets}
        fps: list[float] = []
        for i in range(rounds):
            for name, suffix, label in targets if i % 2 == 0 else reversed(targets):
                context, page = fresh_page(browser, sessions[name])
                cold[label].append(visit(page, apps[name], suffix))
                warm[label].append(visit(page, apps[name], suffix))
                if name == "this" and not suffix:
                    fps.append(page.evaluate(WL_FPS))
                context.close()
        browser.close()

    def firsts(runs: list[dict[str, float]]) -> list[float]:
        return [r["first"] for r in runs]

    print(f"before: {load_before}")
    print(f"after:  {uptime()}")
    print(
        f"{os.cpu_count()} CPUs; image 2880x2304 16-bit, {png_mb:.1f} MB PNG; {rounds} rounds, alternating; "
        "first image frame (mark skelex:first-image-frame) in ms since navigation start, median [min–max]"
    )
    print(f"first visit after the server started: {first_visit['first']:.0f} ms ({phases([first_visit])})")
    width = max(len(label) for _, _, label in targets)
    print(f"{'':{width}}  {'cold':>18}  {'warm':>18}")
    for _, _, label in targets:
        print(f"{label:{width}}  {summary(firsts(cold[label])):>18}  {summary(firsts(warm[label])):>18}")
    for _, _, label in targets:
        print(f"  {label}, cold phases: {phases(cold[label])}")
        print(f"  {label}, warm phases: {phases(warm[label])}")
    base = targets[0][2]
    for _, _, label in targets[1:]:
        for kind, runs in (("cold", cold), ("warm", warm)):
            ratio = statistics.median(firsts(runs[base])) / statistics.median(firsts(runs[label]))
            print(f"ratio default / {label}, {kind}: {ratio:.2f}")
    within = sum(t <= 1000 for t in firsts(cold[base]))
    print(f"cold visits with the image on screen within 1 s (default): {within} of {rounds}")
    print(f"window/level at fit zoom, median: {statistics.median(fps):.1f} fps (target >= 30)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rounds", nargs="?", type=int, default=5)
    parser.add_argument("--baseline", help="a git ref measured side by side (e.g. HEAD, main)")
    args = parser.parse_args()
    main(args.rounds, args.baseline)
