"""``workers.pretrain.run``: self-supervised MAE pretraining on a project's own images (gpu queue).

The SKELEX recipe adapted to a site: no labels, the project's stored display images, optionally
continuing from an existing backbone. The result is registered as a new backbone (and activated
on the project when asked, which re-analyses its images).

Unlike analysis, this task is acknowledged on receipt (``acks_late=False``): a run lasts hours,
far beyond the broker's visibility timeout, and a second worker must not start the same run
while the first is still training. A run killed half way is resumed by sending the task again
with the same ``name`` (same run folder, ``resume``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils.text import slugify

from skelex_web import events
from skelex_web.learning.models import ModelVersion
from skelex_web.learning.services import activate_backbone, checkpoint_path, register_backbone
from skelex_web.projects.models import Project
from skelex_web.studies.models import Image, ImageStatus

logger = logging.getLogger(__name__)


def image_list(project: Project, folder: Path) -> Path:
    """Writes the project's stored display images (failed ones excluded) to ``folder/images.txt``."""
    rows = Image.objects.filter(project=project).exclude(status=ImageStatus.FAILED).order_by("pk")
    paths = [str(Path(settings.MEDIA_ROOT) / (i.display.name or i.file.name)) for i in rows]
    if not paths:
        raise ValueError(f"project {project.pk} has no images to pretrain on")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "images.txt"
    target.write_text("\n".join(paths) + "\n")
    return target


@shared_task(name="workers.pretrain.run", acks_late=False)
def run(
    project_id: int,
    name: str,
    variant: str = "mae_vit_tiny_patch16",
    epochs: int = 10,
    init_model_version_id: int | None = None,
    activate: bool = False,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Pretrains on the project's images, registers the checkpoint, optionally activates it.

    Args:
        project_id: whose images to learn from.
        name: the new backbone's name; also names the run folder under ``MEDIA_ROOT/runs``.
        variant: architecture when starting from scratch.
        epochs: passes over the images.
        init_model_version_id: continue pretraining this backbone instead of starting from scratch.
        activate: make the result the project's backbone (re-analyses its images).
        options: further ``PretrainConfig`` fields (batch_size, img_size, time_budget_min, ...).

    Returns:
        ``{"model_version": id, "final_loss": float, "epochs": int, "images": int}``.
    """
    import torch

    from workers.ml.pretrain import PretrainConfig, pretrain

    project = Project.objects.get(pk=project_id)
    run_dir = Path(settings.MEDIA_ROOT) / "runs" / f"{project.pk}-{slugify(name) or 'run'}"
    data = image_list(project, run_dir)
    init = None
    if init_model_version_id is not None:
        init = str(checkpoint_path(ModelVersion.objects.get(pk=init_model_version_id)))
    job = f"pretrain:{slugify(name)}"
    events.send_now(project.pk, "job.progress", {"job": job, "done": 0, "total": epochs})
    config = PretrainConfig(
        data=str(data),
        out=str(run_dir),
        variant=variant,
        epochs=epochs,
        init=init,
        device=settings.ML_DEVICE or None,
        progress=False,
        resume=(run_dir / "last.pt").exists(),
        **(options or {}),
    )
    threads = torch.get_num_threads()
    try:
        result = pretrain(config, log=lambda message: logger.info("%s: %s", job, message))
    finally:
        # options["threads"] sets torch's thread count for the whole process: give the worker its
        # own back, or every later analysis in this process would run on the pretraining's count.
        torch.set_num_threads(threads)
    model_version = register_backbone(
        name=name,
        checkpoint=result.checkpoint,
        metrics={
            "pretrain": {
                "final_loss": result.final_loss,
                "epochs": result.epochs_done,
                "images": result.n_images,
                "samples_per_s": result.samples_per_s,
                "variant": variant,
                "init": init_model_version_id,
            }
        },
    )
    events.send_now(project.pk, "job.progress", {"job": job, "done": result.epochs_done, "total": epochs})
    if activate:
        activate_backbone(project, model_version)
    return {
        "model_version": model_version.pk,
        "final_loss": result.final_loss,
        "epochs": result.epochs_done,
        "images": result.n_images,
    }
