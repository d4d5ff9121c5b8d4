"""Fixtures for task tests: a registered tiny backbone and a project using it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.factories import ProjectFactory
from tests.workers.tasks.helpers import tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture
def backbone(db: Any, tiny_ckpt: Path) -> Any:
    from skelex_web.learning.services import register_backbone

    return register_backbone(name="tiny random", checkpoint=tiny_ckpt, default=True)


@pytest.fixture
def analysis_project(db: Any, backbone: Any) -> Any:
    return ProjectFactory(name="Phantoms", slug="phantoms", active_backbone=backbone)


@pytest.fixture
def media_root(settings: Any) -> Path:
    return Path(settings.MEDIA_ROOT)
