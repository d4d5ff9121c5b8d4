"""Adding images from the project page in a real browser: the multipart form, the per-file messages,
and the rows it makes. On a server of its own, so the shared one's project keeps its images."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from .conftest import LiveApp, serve
from .test_viewer import rows, signed_in_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def own_app(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[LiveApp]:
    with serve(tmp_path_factory.mktemp("e2e-upload")) as app:
        yield app


def test_annotator_adds_images_from_the_project_page(own_app: LiveApp, browser: Any, tmp_path: Path) -> None:
    project = own_app.ids["project"]
    count = "select count(*) from studies_image where project_id=?"
    start = rows(own_app.db, count, project)[0][0]
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 48), dtype=np.uint8)).save(buf, format="PNG")
    (tmp_path / "elbow.png").write_bytes(buf.getvalue())
    (tmp_path / "report.txt").write_text("not an image")

    errors: list[str] = []
    context, page = signed_in_page(browser, own_app, "ana", errors, (1400, 900))
    page.goto(f"{own_app.url}/projects/{project}/")
    page.set_input_files(
        "section[data-testid=upload] input[name=files]", [tmp_path / "elbow.png", tmp_path / "report.txt"]
    )
    page.click("section[data-testid=upload] button[type=submit]")
    page.wait_for_url(f"{own_app.url}/projects/{project}/")
    notes = page.locator(".messages li").all_inner_texts()
    assert notes[0] == "2 files: 1 added, 0 already in the project, 1 refused."
    assert notes[1].startswith("report.txt: ")
    assert rows(own_app.db, count, project)[0][0] == start + 1
    # The new image is on the page's counts at once (ingested, waiting for analysis).
    assert page.locator("[data-stat=labelled] .big").inner_text().endswith(f"/ {start + 1}")
    context.close()
    assert errors == []
