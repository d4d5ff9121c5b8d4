"""A demo stopped in the middle of large uploads: on the next start the app with its embedded worker
(``manage.py runembedded``, as ``make demo`` serves it) finishes the upload whose staged files
remain and says why the other one failed, instead of showing both as in progress forever."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import LiveApp, serve
from .test_viewer import rows, signed_in_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def restarted_app(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[LiveApp]:
    with serve(tmp_path_factory.mktemp("e2e-restart"), worker=True, seeds=("seed_interrupted.py",)) as app:
        yield app


def test_the_next_start_finishes_or_fails_uploads_left_in_progress(restarted_app: LiveApp, browser: Any) -> None:
    app = restarted_app
    job, gone = app.ids["interrupted"], app.ids["gone"]
    state = "select state from studies_uploadjob where id=?"
    deadline = time.monotonic() + 60
    while rows(app.db, state, job)[0][0] != "done" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert rows(app.db, state, job)[0][0] == "done"

    errors: list[str] = []
    context, page = signed_in_page(browser, app, "ana", errors)
    page.goto(f"{app.url}/projects/{app.ids['project']}/")
    table = page.locator("[data-testid=uploads]")
    done = table.locator("tr", has=page.locator(f"td:text-is('{job}')")).locator("td").all_inner_texts()
    assert done[4] == "Done (restarted after an interruption)" and done[5:8] == ["2", "0", "0"]
    failed = table.locator("tr", has=page.locator(f"td:text-is('{gone}')")).locator("td").all_inner_texts()
    assert failed[4] == "Failed"
    assert failed[8].startswith("The import was interrupted and its staged files are gone")
    context.close()
    assert errors == []
