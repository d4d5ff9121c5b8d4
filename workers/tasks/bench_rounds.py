"""Benchmark: the platform's active-learning round at project scale, next to ranking newly analysed
images with the latest heads (the rank-only round a drained analysis queue asks for), in one run.

    python -m workers.tasks.bench_rounds [--images 10000] [--dim 384] [--labelled 200] [--new 100]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

A throw-away SQLite database (or, with ``--postgres URL``, a throw-away PostgreSQL database on that
server, dropped at the end) gets a project of ``--images`` analysed images with float16 embeddings
(two noisy clusters, so the "abnormal" head has something to learn) and ``--labelled`` answers.
Times, in this process: a full round (``workers.learning.retrain``: read embeddings, 5-fold CV +
calibration + final fit, pre-filled answers for every unlabelled image, the whole queue reordered),
then ``--new`` more images analysed and the rank-only round that scores and pre-fills only those,
and the check a drained analysis queue runs (``loop.on_images_analysed``). Prints seconds, rows
written, and the ratio of the two rounds.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from typing import Any

import numpy as np


def _project(n: int, dim: int, labelled: int, seed: int = 0) -> tuple[Any, Any, np.random.Generator]:
    from django.contrib.auth import get_user_model

    from skelex_web.labeling.models import Annotation
    from skelex_web.learning.models import ModelVersion
    from skelex_web.projects.models import Project
    from skelex_web.projects.schema import default_schema

    rng = np.random.default_rng(seed)
    user = get_user_model().objects.create_user(username=f"bench{seed}")
    backbone = ModelVersion.objects.create(kind="backbone", name=f"bench-{seed}")
    project = Project.objects.create(name="bench", slug=f"bench-{seed}", label_schema=default_schema())
    project.active_backbone = backbone
    project.save()
    images = _add_images(project, backbone, n, dim, rng, start=0)
    answers = [
        Annotation(project=project, image=image, kind="head", head="abnormal", value="yes" if k % 2 else "no",
                   author=user)
        for k, image in enumerate(images[:labelled])
    ]  # fmt: skip
    Annotation.objects.bulk_create(answers, batch_size=1000)
    return project, backbone, rng


def _add_images(project: Any, backbone: Any, n: int, dim: int, rng: np.random.Generator, start: int) -> list[Any]:
    from skelex_web.learning.models import Embedding
    from skelex_web.studies.models import Image

    centres = np.random.default_rng(99).normal(size=(2, dim))
    rows = [
        Image(project=project, name=f"img-{start + k}", file=f"bench/{start + k}.png", file_format="png",
              sha256=f"{project.pk:08x}{start + k:056x}", pixel_sha256=f"{start + k:064x}", rows=512, cols=512,
              bits=16, status="analysed", body_part=("HAND", "LEG")[k % 2])
        for k in range(n)
    ]  # fmt: skip
    images = Image.objects.bulk_create(rows, batch_size=1000)
    vectors = centres[np.arange(n) % 2] + rng.normal(size=(n, dim)) * 2.0
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embeddings = [
        Embedding(image=image, model_version=backbone, dim=dim, vector=v.astype("<f2").tobytes())
        for image, v in zip(images, vectors, strict=True)
    ]
    Embedding.objects.bulk_create(embeddings, batch_size=1000)
    return images


def _timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _run(args: argparse.Namespace) -> None:
    from django.core.cache import cache

    from skelex_web.labeling.models import Suggestion
    from skelex_web.learning import loop
    from workers.tasks.learning import retrain

    engine = os.environ["DATABASE_URL"].split("://")[0]
    print(f"{args.images:,} images x {args.dim}-d embeddings, {args.labelled} labelled, {engine}; setting up ...")
    (project, backbone, rng), setup_s = _timed(lambda: _project(args.images, args.dim, args.labelled))
    print(f"  set up in {setup_s:.1f} s")

    full, full_s = _timed(lambda: retrain(project.pk, reason="bench"))
    full_suggestions = Suggestion.objects.filter(project=project, kind="head").count()
    _add_images(project, backbone, args.new, args.dim, rng, start=args.images)
    cache.clear()
    requested, check_s = _timed(lambda: loop.on_images_analysed(project.pk))
    ranked, rank_s = _timed(lambda: retrain(project.pk, reason="new images analysed", rank_only=True))
    assert requested and ranked.get("reused") == full["model_version"], ranked

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    reordered = full["n_images"] - full["n_labelled"]
    rows = [
        ("full round (train 5-fold + final, pre-fill, reorder all)", f"{full_s:8.2f}",
         f"{full_suggestions:,} answers pre-filled, {reordered:,} images reordered"),
        (f"rank-only round ({args.new} new images, heads reused)", f"{rank_s:8.2f}",
         f"{ranked['ranked_new']:,} images scored and pre-filled"),
        ("drained-queue check (on_images_analysed)", f"{check_s:8.3f}", ""),
    ]  # fmt: skip
    print(f"{'step':<58} {'seconds':>8}   rows written")
    for step, seconds, written in rows:
        print(f"{step:<58} {seconds}   {written}")
    print(f"\nrank-only / full: {rank_s / full_s:.2f}x the time   (peak RSS of this process {peak_mb:,.0f} MB)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def main(argv: list[str] | None = None) -> None:
    from skelex_web.studies.bench_ingest import throwaway_database

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--labelled", type=int, default=200)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--postgres", default="", help="server URL: benchmark on a temporary database there")
    args = parser.parse_args(argv)
    os.environ.setdefault("CELERY_EMBEDDED_WORKER", "0")
    with throwaway_database(args.postgres, prefix="skelex-bench-rounds"):
        _run(args)


if __name__ == "__main__":
    sys.exit(main())
