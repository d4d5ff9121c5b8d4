"""``manage.py demo`` end to end in embedded mode: a fresh var/ folder, the embedded worker thread,
the real pydicom-data radiographs and a phantom analysed with suggestions, then a clean exit."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT

pytestmark = pytest.mark.slow


def _demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``manage.py demo --no-serve`` with one phantom: set up, wait for the analyses, exit."""
    return subprocess.run(
        [sys.executable, "manage.py", "demo", "--no-serve", "--phantoms", "1", "--timeout", "240"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_demo_sets_up_and_analyses_real_radiographs(tiny_ckpt: Path, tmp_path: Path) -> None:
    pytest.importorskip("data_store", reason="pydicom-data (dev extra) provides the demo radiographs")
    drop = {"DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "CELERY_EMBEDDED_WORKER"}  # the demo sets its own
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({"SKELEX_VAR_DIR": str(tmp_path / "var"), "SKELEX_DEMO_CHECKPOINT": str(tiny_ckpt)})
    # `make demo`'s order: migrate first, into a var/ folder that does not exist yet.
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    proc = _demo(env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "real radiographs (RG3_UNCR.dcm, RG1_UNCR.dcm)" in proc.stdout

    db = sqlite3.connect(tmp_path / "var" / "skelex.sqlite3")
    statuses = dict(db.execute("SELECT name, status FROM studies_image").fetchall())
    assert len(statuses) == 3 and set(statuses.values()) == {"analysed"}, statuses
    # The demo project keeps raster file names (synthetic phantoms); DICOM names are pseudonyms.
    assert "phantom_7_0000.png" in statuses and not any(name.startswith("RG") for name in statuses), statuses
    with_suggestions = db.execute(
        "SELECT COUNT(DISTINCT image_id) FROM labeling_suggestion WHERE source = 'errormap'"
    ).fetchone()[0]
    assert with_suggestions >= 1
    assert db.execute("SELECT COUNT(*) FROM auth_user WHERE username = 'demo'").fetchone()[0] == 1

    # Kept and started again after an upgrade changed the analysis settings: brought up to date.
    db.execute("UPDATE learning_errormap SET params_hash = 'earlier'")
    db.execute("UPDATE learning_embedding SET readout = 'earlier'")
    db.commit()
    again = _demo(env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "3 images analysed with earlier settings are being analysed again" in again.stdout
    assert set(dict(db.execute("SELECT name, status FROM studies_image").fetchall()).values()) == {"analysed"}
    readouts = {r for (r,) in db.execute("SELECT readout FROM learning_embedding")}
    assert len(readouts) == 1 and "earlier" not in readouts
