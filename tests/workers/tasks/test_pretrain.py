"""``workers.pretrain.run`` on a project's images: a tiny run registers (and activates) a new backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from skelex_web.learning.services import checkpoint_path
from tests.workers.tasks.helpers import TINY, stored_image
from workers.tasks.pretrain import run

pytestmark = pytest.mark.django_db


def test_pretraining_registers_a_new_backbone_and_activates_it(
    analysis_project: Any, media_root: Path, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from skelex_web.celery import app

    monkeypatch.setattr(app, "send_task", lambda *a, **k: None)  # re-analysis goes to the broker
    for seed in range(4):
        stored_image(analysis_project, media_root, seed)
    overrides = {k: v for k, v in TINY.items() if k != "img_size"}
    worker_threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the worker's own count, which a 1-thread pretraining must not leave changed
    try:
        with django_capture_on_commit_callbacks(execute=True):
            out = run.apply(
                args=[analysis_project.pk, "site tiny"],
                kwargs={
                    "epochs": 1,
                    "activate": True,
                    "options": {"img_size": 32, "batch_size": 4, "model_overrides": overrides, "threads": 1},
                },
            ).get()
        assert torch.get_num_threads() == 2  # later analyses in this worker keep its thread count
    finally:
        torch.set_num_threads(worker_threads)

    analysis_project.refresh_from_db()
    backbone = analysis_project.active_backbone
    assert backbone is not None and backbone.pk == out["model_version"] and backbone.name == "site tiny"
    assert out["images"] == 4 and out["epochs"] == 1 and out["final_loss"] > 0
    assert checkpoint_path(backbone).is_file() and backbone.metrics["pretrain"]["epochs"] == 1
