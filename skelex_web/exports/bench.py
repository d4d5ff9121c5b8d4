"""Memory benchmark of a large export: ``python -m skelex_web.exports.bench [--images 10000]``.

Builds a throwaway SQLite project with synthetic 16-bit images (``--size`` square, several per
patient, a head answer on each, a box on a third) in a temporary folder, then snapshots a dataset
version and renders it to a zip in a fresh process, and reports that process's peak resident memory
(``ru_maxrss``) next to its resident memory right after Django started, plus the timings.

Each phase runs in its own process so the set-up's memory never counts against the export.
Nothing outside the temporary folder is touched (``--keep`` keeps it for inspection).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

N_TEMPLATES = 32


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _setup_django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skelex_web.settings")
    django.setup()


def _templates(size: int) -> list[bytes]:
    """Distinct 16-bit PNGs with some texture, so files are radiograph-like in size, not trivially small."""
    import io

    import numpy as np
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size]
    out = []
    for k in range(N_TEMPLATES):
        base = 20000 + 15000 * np.sin((x + 7 * k) / (size / 6.0)) * np.cos(y / (size / 5.0))
        disc = ((x - size / 2) ** 2 + (y - size / 2 - k) ** 2) < (size / 5) ** 2
        pixels = base + disc * 12000 + rng.normal(0, 400, (size, size))
        buffer = io.BytesIO()
        PILImage.fromarray(np.clip(pixels, 0, 65535).astype("<u2")).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def phase_setup(n_images: int, size: int) -> dict[str, Any]:
    _setup_django()
    import hashlib

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from skelex_web.labeling.models import Annotation
    from skelex_web.projects.models import Project
    from skelex_web.studies.models import Image, Study

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create(username="bench-lead")
    project = Project.objects.create(name="Export benchmark", slug="bench")
    folder = Path(settings.MEDIA_ROOT, "display", "bench")
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for k, data in enumerate(_templates(size)):
        (folder / f"t{k:02d}.png").write_bytes(data)
        names.append((f"display/bench/t{k:02d}.png", hashlib.sha256(data).hexdigest()))
    studies = Study.objects.bulk_create(
        [
            Study(project=project, patient_pseudo_id=f"P{p:06d}", study_instance_uid=f"2.25.{p + 1}")
            for p in range(max(1, n_images // 3))
        ]  # fmt: skip
    )
    batch = []
    for i in range(n_images):
        name, sha = names[i % N_TEMPLATES]
        batch.append(
            Image(
                project=project, study=studies[(i * 7) % len(studies)], file=name, display=name,
                name=f"synthetic-{i:05d}.png", file_format="png", sha256=sha,
                pixel_sha256=hashlib.sha256(f"px{i}".encode()).hexdigest(), rows=size, cols=size, bits=16,
                window_center=20000.0, window_width=40000.0, status="analysed",
                body_part=("hand", "leg", "hip")[i % 3],
            )
        )  # fmt: skip
    images = Image.objects.bulk_create(batch, batch_size=1000)
    anns = []
    for i, image in enumerate(images):
        anns.append(Annotation(project=project, image=image, kind="head", head="abnormal",
                               value="yes" if i % 3 == 0 else "no", author=user))  # fmt: skip
        if i % 3 == 0:
            s = size / 8
            anns.append(Annotation(project=project, image=image, kind="box", label="fracture", x0=s, y0=s + i % 50,
                                   x1=3 * s, y1=4 * s, author=user, reviewed=True))  # fmt: skip
    Annotation.objects.bulk_create(anns, batch_size=2000)
    return {"setup_s": round(time.perf_counter() - started, 1), "annotations": len(anns)}


def phase_export(fmt: str, images_mode: str) -> dict[str, Any]:
    _setup_django()
    from skelex_web.exports import services
    from skelex_web.projects.models import Project

    baseline = _rss_mb()
    project = Project.objects.get(slug="bench")
    started = time.perf_counter()
    version = services.create_version(project=project, split_seed=1)
    snapshot_s = time.perf_counter() - started
    rss_after_snapshot = _rss_mb()
    started = time.perf_counter()
    job = services.export_now(version=version, fmt=fmt, images=images_mode)
    export_s = time.perf_counter() - started
    return {
        "images": version.image_count,
        "splits": version.summary["splits"],
        "rss_after_django_mb": round(baseline, 1),
        "peak_rss_after_snapshot_mb": round(rss_after_snapshot, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
        "snapshot_s": round(snapshot_s, 1),
        "export_s": round(export_s, 1),
        "zip_mb": round(job.size / 2**20, 1),
    }


def _child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    run = subprocess.run([sys.executable, "-m", "skelex_web.exports.bench", *args], env=env, capture_output=True,
                         text=True)  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"phase {args} failed:\n{run.stderr[-4000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=512, help="synthetic image side in pixels")
    parser.add_argument("--format", default="coco", choices=["coco", "yolo", "voc", "csv"])
    parser.add_argument("--image-mode", default="png16", choices=["png16", "png8", "original", "none"])
    parser.add_argument("--workdir", default=None, help="reuse/keep this folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--phase", choices=["setup", "export"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase == "setup":
        print(json.dumps(phase_setup(args.images, args.size)))
        return
    if args.phase == "export":
        print(json.dumps(phase_export(args.format, args.image_mode)))
        return

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="skelex-export-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "MEDIA_ROOT": str(workdir / "media"),
        "SKELEX_VAR_DIR": str(workdir),
        "LOG_LEVEL": "WARNING",
    }
    try:
        if not (workdir / "bench.sqlite3").exists():
            setup = _child(["--phase", "setup", "--images", str(args.images), "--size", str(args.size)], env)
        else:
            setup = {"setup_s": 0.0, "note": "reused"}
        result = _child(["--phase", "export", "--format", args.format, "--image-mode", args.image_mode], env)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    report = {"resolution": f"{args.size}x{args.size} 16-bit", "format": args.format, "image_mode": args.image_mode,
              **setup, **result}  # fmt: skip
    print(json.dumps(report, indent=2))
    print(f"peak RSS {result['peak_rss_mb']} MB for {result['images']} images (Django alone: "
          f"{result['rss_after_django_mb']} MB); budget 300 MB")  # fmt: skip


if __name__ == "__main__":
    main()
