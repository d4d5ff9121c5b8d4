"""Where tests find the repository and the shared development data (beside the clone, also in CI)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
FRACATLAS = SHARED_DATA / "fracatlas"
