"""Benchmark: the pages and API calls a radiologist and a lead make every minute, on a big project.

    python -m skelex_web.pages.bench_pages [--images 10000] [--labelled 3000] [--repeat 5]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres] [--keep]

A throw-away SQLite database (or, with ``--postgres URL``, a throw-away PostgreSQL database on that
server, dropped at the end) gets one project of ``--images`` analysed images, each with an
embedding, an error map row and 3-5 suggestions (box suggestions and a pre-filled head answer);
``--labelled`` of them labelled by 5 annotators (two findings answers and 1-5 boxes each, about
15,000 annotations for 3,000 images), a few dozen training rounds and some other projects the lead
belongs to. No image files: the measured views never open them.

Each request goes through Django's test client (middleware, session, templates, DRF), signed in
as the lead or an annotator; it runs once to warm up, then ``--repeat`` times. Prints, per call,
the SQL queries of one request (``CaptureQueriesContext``) and the median wall time in ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

N_ANNOTATORS = 5
N_ROUNDS = 36
HEADS = ("abnormal", "implant")


def _seed(n_images: int, n_labelled: int, seed: int = 0) -> dict[str, Any]:
    """The project, its people and rows, bulk-inserted. Returns what the measurements need."""
    import random

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from skelex_web.exports.models import DatasetVersion
    from skelex_web.labeling.models import Annotation, Suggestion
    from skelex_web.learning.models import Embedding, ErrorMap, ModelVersion
    from skelex_web.learning.pipeline import analysis_params, embedding_hash, params_hash
    from skelex_web.projects.models import Membership, Project
    from skelex_web.projects.schema import default_schema
    from skelex_web.studies.models import Image, Study

    rng = random.Random(seed)
    User = get_user_model()
    lead = User.objects.create_user(username="bench-lead", password="x")
    annotators = [User.objects.create_user(username=f"bench-annotator{k}", password="x") for k in range(N_ANNOTATORS)]
    backbone = ModelVersion.objects.create(kind="backbone", name="bench-backbone")
    project = Project.objects.create(name="Bench", slug="bench", label_schema=default_schema(), created_by=lead)
    project.active_backbone = backbone
    project.save()
    Membership.objects.create(user=lead, project=project, role="lead")
    Membership.objects.bulk_create(Membership(user=u, project=project, role="annotator") for u in annotators)
    # Other projects the lead is in: the project list shows each with its image count.
    for k in range(5):
        other = Project.objects.create(name=f"Other {k}", slug=f"other-{k}", created_by=lead)
        Membership.objects.create(user=lead, project=other, role="lead")

    studies = Study.objects.bulk_create(
        Study(project=project, patient_pseudo_id=f"P{p:06d}", study_instance_uid=f"2.25.{p + 1}")
        for p in range(max(1, n_images // 3))
    )
    parts = ("HAND", "WRIST", "KNEE", "HIP", "FOOT", "SHOULDER")
    images = Image.objects.bulk_create(
        (
            Image(
                project=project, study=studies[i % len(studies)], name=f"img-{i:05d}.png",
                file=f"originals/bench/{i}.png", display=f"display/bench/{i}.png", file_format="png",
                sha256=f"{i:064x}", pixel_sha256=f"{i:064x}", rows=2048, cols=1536, bits=16,
                window_center=30000.0, window_width=40000.0, status="analysed", body_part=parts[i % len(parts)],
                al_priority=rng.random(), al_reason="uncertain: abnormal",
            )
            for i in range(n_images)
        ),
        batch_size=2000,
    )  # fmt: skip
    readout = embedding_hash(analysis_params())
    Embedding.objects.bulk_create(
        (Embedding(image=im, model_version=backbone, dim=384, vector=bytes(768), readout=readout) for im in images),
        batch_size=2000,
    )
    ph = params_hash(analysis_params())
    ErrorMap.objects.bulk_create(
        (ErrorMap(image=im, model_version=backbone, params_hash=ph, file=f"errormaps/{im.pk}.png") for im in images),
        batch_size=2000,
    )
    rounds = []
    for r in range(N_ROUNDS):
        metrics = {"n_labelled": (r + 1) * n_labelled // N_ROUNDS, "sampling": "hybrid", "readout": readout,
                   "heads": {h: {"auroc": 0.6 + r / 200, "n": r * 10} for h in HEADS}}  # fmt: skip
        rounds.append(ModelVersion(kind="heads", name=f"heads-{r}", project=project, metrics=metrics,
                                   config={"backbone": backbone.pk, "reason": "auto: 20 new labels"}))  # fmt: skip
    heads = ModelVersion.objects.bulk_create(rounds)[-1]

    labelled = set(rng.sample(range(n_images), min(n_labelled, n_images)))
    suggestions = []
    for i, im in enumerate(images):
        for rank in range(rng.randint(2, 4)):
            suggestions.append(
                Suggestion(
                    project=project, image=im, kind="box", label="fracture", x0=100.0 + rank, y0=100.0,
                    x1=300.0, y1=400.0, score=0.9 - rank / 10, model_version=backbone, params_hash=ph,
                    rank=rank, state="accepted" if i in labelled and rank == 0 else "pending",
                )
            )  # fmt: skip
        suggestions.append(
            Suggestion(project=project, image=im, kind="head", head="abnormal", source="heads", model_version=heads,
                       value={"answer": "yes", "probabilities": {"yes": 0.7, "no": 0.3}}, score=0.7)
        )  # fmt: skip
    Suggestion.objects.bulk_create(suggestions, batch_size=5000)

    annotations = []
    for i in sorted(labelled):
        im, author = images[i], annotators[i % N_ANNOTATORS]
        for h in HEADS:
            answer = rng.choice(["yes", "no"])
            annotations.append(Annotation(project=project, image=im, kind="head", head=h, value=answer,
                                          author=author, time_spent_ms=4000))  # fmt: skip
        for b in range(rng.randint(1, 5)):
            annotations.append(
                Annotation(project=project, image=im, kind="box", label=rng.choice(["fracture", "lesion"]),
                           x0=10.0 * b, y0=10.0, x1=10.0 * b + 50, y1=80.0, author=author, time_spent_ms=9000)
            )  # fmt: skip
    Annotation.objects.bulk_create(annotations, batch_size=5000)
    DatasetVersion.objects.bulk_create(
        DatasetVersion(project=project, number=k + 1, image_count=n_labelled) for k in range(3)
    )
    # A few images open in other annotators' viewers right now.
    unlabelled = [images[i].pk for i in range(n_images) if i not in labelled]
    Image.objects.filter(pk__in=unlabelled[:3]).update(claimed_by=annotators[1], claimed_at=timezone.now())
    return {
        "project": project,
        "lead": lead,
        "annotator": annotators[0],
        "labelled_image": images[min(labelled)],
        "annotations": len(annotations),
        "suggestions": len(suggestions),
    }


def _measure(call: Callable[[], Any], repeat: int) -> tuple[int, float, int]:
    """(queries of the last request, median ms, status) over ``repeat`` runs after one warm-up."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    status = call().status_code
    times, queries = [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            response = call()
            times.append((time.perf_counter() - t0) * 1000)
        queries, status = len(captured.captured_queries), response.status_code
    return queries, statistics.median(times), status


def _run(args: argparse.Namespace) -> None:
    from django.test import Client

    engine = os.environ["DATABASE_URL"].split("://")[0]
    print(f"{args.images:,} images, {args.labelled:,} labelled, {engine}; seeding ...", flush=True)
    t0 = time.perf_counter()
    seeded = _seed(args.images, args.labelled)
    print(f"  {seeded['annotations']:,} annotations, {seeded['suggestions']:,} suggestions "
          f"in {time.perf_counter() - t0:.0f} s")  # fmt: skip
    if engine.startswith("postgres"):
        from django.db import connection

        with connection.cursor() as cursor:  # what autovacuum does to a live database's tables
            cursor.execute("VACUUM ANALYZE")

    p, image = seeded["project"].pk, seeded["labelled_image"].pk
    lead, annotator = Client(), Client()
    lead.force_login(seeded["lead"])
    annotator.force_login(seeded["annotator"])
    box = {"image": image, "kind": "box", "label": "fracture", "x0": 10, "y0": 10, "x1": 60, "y1": 90}
    calls: list[tuple[str, str, Callable[[], Any]]] = [
        ("GET /", "lead", lambda: lead.get("/")),
        (f"GET /projects/{p}/", "lead", lambda: lead.get(f"/projects/{p}/")),
        (f"GET /projects/{p}/", "annotator", lambda: annotator.get(f"/projects/{p}/")),
        ("GET worklist", "annotator", lambda: annotator.get(f"/projects/{p}/worklist/")),
        ("GET worklist?labelled=no", "annotator", lambda: annotator.get(f"/projects/{p}/worklist/?labelled=no")),
        ("GET worklist?labelled=no&page=20", "annotator",
         lambda: annotator.get(f"/projects/{p}/worklist/?labelled=no&page=20")),
        ("GET viewer page", "annotator", lambda: annotator.get(f"/projects/{p}/images/{image}/")),
        ("GET viewer page ?queue=1", "annotator", lambda: annotator.get(f"/projects/{p}/images/{image}/?queue=1")),
        ("POST /projects/<id>/next/", "annotator", lambda: annotator.post(f"/projects/{p}/next/")),
        ("POST /api/projects/<id>/queue/next/", "annotator",
         lambda: annotator.post(f"/api/projects/{p}/queue/next/", {"skip": []}, content_type="application/json")),
        ("GET /api/images/?project=", "annotator", lambda: annotator.get(f"/api/images/?project={p}")),
        ("GET /api/images/?project=&ordering=-al_priority", "annotator",
         lambda: annotator.get(f"/api/images/?project={p}&ordering=-al_priority")),
        ("GET /api/annotations/?image=", "annotator", lambda: annotator.get(f"/api/annotations/?image={image}")),
        ("POST /api/annotations/ (box)", "annotator",
         lambda: annotator.post("/api/annotations/", box, content_type="application/json")),
    ]  # fmt: skip
    print(f"\n{'call':<48} {'as':<10} {'status':>6} {'queries':>8} {'median ms':>10}")
    for name, who, call in calls:
        queries, ms, status = _measure(call, args.repeat)
        print(f"{name:<48} {who:<10} {status:>6} {queries:>8} {ms:>10.1f}", flush=True)
    print(f"\nmedian of {args.repeat}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def main(argv: list[str] | None = None) -> None:
    from skelex_web.studies.bench_ingest import throwaway_database

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--labelled", type=int, default=3_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", default="", help="server URL: benchmark on a temporary database there")
    parser.add_argument("--keep", action="store_true", help="keep the temporary database")
    args = parser.parse_args(argv)
    os.environ.setdefault("CELERY_EMBEDDED_WORKER", "0")
    with throwaway_database(args.postgres, keep=args.keep, prefix="skelex-bench-pages"):
        _run(args)


if __name__ == "__main__":
    sys.exit(main())
