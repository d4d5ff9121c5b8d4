"""Fixtures for the imaging core tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import FRACATLAS


@pytest.fixture
def fracatlas() -> Path:
    if not FRACATLAS.is_dir():
        pytest.skip(f"FracAtlas data not found at {FRACATLAS}")
    return FRACATLAS
