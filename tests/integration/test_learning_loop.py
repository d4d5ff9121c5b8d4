"""The active-learning loop on the real stack: analysed images get their cold-start order, then
labels posted to the real server (daphne) trigger a retrain on the ``train`` queue after N labels,
both run by a real ``celery worker`` process; labels stored before their images were analysed (a
labelled dataset's import) are learned once the analysis queue drains."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_pipeline import ALIAS, all_analysed, make_images, stack, wait_until, world  # noqa: F401
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.integration


def post_json(port: int, path: str, token: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


@contextmanager
def train_worker(services: Any) -> Iterator[None]:
    """A real ``celery worker`` on the ``train`` queue, ready, for the duration of the block."""
    log = services.tmp / f"train-worker-{time.monotonic_ns()}.log"
    cmd = [
        str(Path(sys.executable).with_name("celery")), "-A", "skelex_web", "worker", "-Q", "train", "-P", "solo",
        "--without-heartbeat", "--without-mingle", "--without-gossip", "-n", "train@localhost", "--loglevel", "INFO",
        "--logfile", str(log),
    ]  # fmt: skip
    worker = subprocess.Popen(cmd, cwd=REPO_ROOT, env=services.env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: log.exists() and " ready." in log.read_text(), 60, "train worker ready")
        yield
    finally:
        worker.kill()
        worker.wait(10)


def test_retrain_runs_on_a_real_worker_after_n_labels(stack: Any, world: dict[str, Any]) -> None:  # noqa: F811
    from rest_framework.authtoken.models import Token

    from skelex_web.learning.models import ModelVersion
    from skelex_web.projects.models import Project
    from skelex_web.studies.models import Image

    project = world["project"]
    images = make_images(world, range(300, 310))
    ids = [i.pk for i in images]
    stack.enqueue(ids)
    wait_until(lambda: all_analysed(ids), 120, "10 images analysed")
    Project.objects.using(ALIAS).filter(pk=project.pk).update(settings={"deidentify": True, "retrain_every": 4})
    token = Token.objects.using(ALIAS).create(user=world["user"]).key

    with train_worker(stack):
        # The analysis worker, having analysed every image of the project, asked for a first
        # ranking: the cold-start order (typical images first), before anyone labelled anything.
        fresh = Image.objects.using(ALIAS).filter(pk__in=ids)
        cold = ("typical: ", "covers the data: ")
        wait_until(lambda: all(i.al_reason.startswith(cold) for i in fresh.all()), 60, "cold-start order")
        heads = ModelVersion.objects.using(ALIAS).filter(project=project, kind="heads")
        assert not heads.exists()
        for n, image_id in enumerate(ids[:4], start=1):
            value = "yes" if n % 2 else "no"
            body = {"image": image_id, "kind": "head", "head": "abnormal", "value": value}
            assert post_json(stack.port, "/api/annotations/", token, body) == 201
            if n < 4:
                time.sleep(0.5)
                assert not heads.exists(), f"retrained after only {n} labels"
        wait_until(heads.exists, 120, "a heads model version after 4 labels")
        mv = heads.get()
        assert mv.metrics["n_labelled"] == 4
        # The round reordered the queue: unlabelled images now carry a priority and a reason.
        queued = Image.objects.using(ALIAS).filter(pk__in=ids[4:])
        wait_until(lambda: all(i.al_reason and i.al_priority is not None for i in queued.all()), 60, "queue reordered")


def test_a_labelled_import_is_learned_by_a_real_worker_once_its_images_are_analysed(
    stack: Any,  # noqa: F811
    world: dict[str, Any],  # noqa: F811
) -> None:
    from skelex_web.labeling.models import Annotation
    from skelex_web.learning.models import ModelVersion
    from skelex_web.projects.models import Membership, Project
    from tests.workers.tasks.helpers import stored_image

    # What manage.py import_dataset leaves: images queued for analysis, their answers already stored
    # (origin "imported"), and no label made in the app afterwards to start a round.
    backbone = Project.objects.using(ALIAS).get(pk=world["project"].pk).active_backbone_id
    project = Project.objects.using(ALIAS).create(
        name="Imported", slug="imported", settings={"retrain_every": 4}, active_backbone_id=backbone
    )
    Membership.objects.using(ALIAS).create(user=world["user"], project=project, role="lead")
    images = [stored_image(project, world["media"], s, using=ALIAS) for s in range(400, 406)]
    for n, image in enumerate(images):
        Annotation.objects.using(ALIAS).create(
            project=project, image=image, author=world["user"], kind="head", head="abnormal",
            value="yes" if n % 2 else "no", origin="imported",
        )  # fmt: skip
    ids = [i.pk for i in images]
    heads = ModelVersion.objects.using(ALIAS).filter(project=project, kind="heads")
    with train_worker(stack):
        stack.enqueue(ids)
        wait_until(lambda: all_analysed(ids), 120, "6 imported images analysed")
        wait_until(heads.exists, 120, "a heads model version learned from the imported labels")
    mv = heads.get()
    assert mv.metrics["n_labelled"] == 6
    assert mv.config["reason"] == "auto: 6 labels not learned yet"
