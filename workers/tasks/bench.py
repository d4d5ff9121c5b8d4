"""``python -m workers.tasks.bench``: what the worker pipeline costs on top of the ML engine.

Same images, same model, same machine, one run:

* ``direct``: decode each stored display PNG and call the ML engine (``engine.analyse``: embedding,
  error map, boxes) batch by batch, in this process: the floor.
* ``worker``: enqueue the images by task name on Redis and time until a real
  ``celery -A skelex_web worker`` process has stored every result in PostgreSQL (heat-map PNG,
  ErrorMap, Embedding, Suggestion rows, status) and announced it (the ``image.analysed`` event a
  browser gets after the commit; this process listens for it rather than polling the database,
  which would take CPU from the worker). The worker is warmed up first (model loaded), as in
  production where it stays up.

Overhead = worker time / direct time for the same images (target <= 1.2), and the same ratio in
CPU seconds (worker process vs this process). The run is split into ``--rounds``: each round times
both sides on the same fresh images, one right after the other, direct first in even rounds and
worker first in odd ones, so load that other jobs put on a shared machine falls on both sides
alike; the median of the per-round ratios is the figure least moved by such load.
Needs the PostgreSQL and Redis of the development machine (``--postgres``, ``--redis``); creates
and recreates its own database.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m workers.tasks.bench", description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=48, help="images analysed by each side in each round")
    p.add_argument("--rounds", type=int, default=3, help="rounds, each timing both sides on fresh images")
    p.add_argument("--size", default="512x384", help="phantom size HxW")
    p.add_argument("--batch", type=int, default=8, help="images per task (ANALYSIS_BATCH_SIZE)")
    p.add_argument("--variant", default="mae_vit_tiny_patch16", help="model variant (random weights)")
    p.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    p.add_argument("--out", type=Path, help="write the report JSON here too")
    return p.parse_args(argv)


def _prepare_database(admin_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def _store_images(project: Any, media: Path, n: int, size: tuple[int, int], first: int = 0) -> list[int]:
    import hashlib

    from PIL import Image as PILImage

    from skelex_web.studies.models import Image, ImageStatus
    from workers.ml.phantoms import make_phantom

    ids = []
    (media / "display").mkdir(parents=True, exist_ok=True)
    for i in range(first, first + n):
        pixels, _ = make_phantom(1000 + i, size, ("lytic",))
        rel = f"display/bench-{i}.png"
        PILImage.fromarray(pixels).save(media / rel)
        digest = hashlib.sha256(pixels.tobytes()).hexdigest()
        image = Image.objects.create(
            project=project, file=rel, display=rel, name=f"bench-{i}.png", file_format="png", sha256=digest,
            pixel_sha256=digest, rows=size[0], cols=size[1], bits=16, status=ImageStatus.INGESTED,
        )  # fmt: skip
        ids.append(image.pk)
    return ids


def _proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _direct(ids: list[int], model_version: Any, batch: int) -> tuple[float, float]:
    from skelex_web.learning.services import checkpoint_path
    from skelex_web.studies.models import Image
    from workers.tasks import engine, modelcache
    from workers.tasks.analysis import load_pixels

    model = modelcache.get_model(model_version.pk, checkpoint_path(model_version), "cpu")
    params = engine.analysis_params()
    images = list(Image.objects.filter(pk__in=ids).order_by("pk"))
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(images), batch):
        decoded = [load_pixels(image) for image in images[i : i + batch]]
        engine.analyse(model, [p for p, _ in decoded], [w for _, w in decoded], params)
    return time.perf_counter() - start, time.process_time() - cpu


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [
        str(Path(sys.executable).with_name("celery")), "-A", "skelex_web", "worker", "-Q", "gpu", "-P", "solo",
        "-c", "1", "--without-heartbeat", "--without-mingle", "--without-gossip", "-n", "bench@localhost",
        "--loglevel", "INFO", "--logfile", str(log),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not (log.exists() and " ready." in log.read_text()):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"the worker did not start; see {log}")
        time.sleep(0.2)
    return proc


def _through_worker(ids: list[int], pid: int, project_id: int, timeout: float = 1800) -> tuple[float, float]:
    """Enqueues ``ids`` and waits until the worker has announced every one of them analysed.

    The wait listens on the project's channel group for the ``image.analysed`` events a browser
    gets (sent once the rows are committed) instead of querying the database in a loop: on two
    cores a poller takes CPU from the very worker it times (about 5% of its engine time at one
    query per 50 ms). The database is then checked once; should an event go missing, a check after
    5 s without events ends the wait (late, never early).
    """
    import asyncio

    from asgiref.sync import async_to_sync, sync_to_async
    from channels.layers import get_channel_layer

    from skelex_web import events
    from skelex_web.learning.services import queue_images
    from skelex_web.studies.models import Image, ImageStatus

    def finished() -> bool:
        done = [ImageStatus.ANALYSED, ImageStatus.FAILED]
        return Image.objects.filter(pk__in=ids, status__in=done).count() == len(ids)

    async def run() -> tuple[float, float]:
        layer: Any = get_channel_layer()
        group, channel = events.group_name(project_id), await layer.new_channel()
        await layer.group_add(group, channel)
        try:
            start, cpu = time.perf_counter(), _proc_cpu_s(pid)
            # Outside a transaction: sent at once, in batches of ANALYSIS_BATCH_SIZE.
            await sync_to_async(queue_images)(ids)
            pending = set(ids)
            while pending or not await sync_to_async(finished)():
                if time.perf_counter() - start > timeout:
                    raise RuntimeError("the worker did not finish in time")
                try:
                    message = await asyncio.wait_for(layer.receive(channel), 5.0)
                except TimeoutError:
                    if await sync_to_async(finished)():
                        break
                    continue
                event = message.get("event") or {}
                if event.get("type") == "image.analysed":
                    pending.discard(event.get("image"))
            return time.perf_counter() - start, _proc_cpu_s(pid) - cpu
        finally:
            await layer.group_discard(group, channel)

    return async_to_sync(run)()


def _report(
    args: argparse.Namespace, h: int, w: int, measured: list[tuple[tuple[float, float], tuple[float, float]]]
) -> dict[str, Any]:
    import torch

    n = args.images * len(measured)
    sides = {}
    for i, side in enumerate(("direct", "worker")):
        seconds = sum(m[i][0] for m in measured)
        cpu = sum(m[i][1] for m in measured)
        sides[side] = {
            "seconds": round(seconds, 3),
            "images_per_s": round(n / seconds, 3),
            "cpu_seconds": round(cpu, 3),
        }
    return {
        "images": n,
        "rounds": len(measured),
        "size": [h, w],
        "batch": args.batch,
        "variant": args.variant,
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        **sides,
        "overhead": round(sides["worker"]["seconds"] / sides["direct"]["seconds"], 3),
        "overhead_median": round(statistics.median(t[0] / d[0] for d, t in measured), 3),
        "overhead_by_round": [round(t[0] / d[0], 3) for d, t in measured],
        "cpu_overhead": round(sides["worker"]["cpu_seconds"] / sides["direct"]["cpu_seconds"], 3),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "target_overhead": 1.2,
    }


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    h, w = (int(v) for v in args.size.lower().split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="skelex-bench-"))
    env = {
        **os.environ,
        "DATABASE_URL": _prepare_database(args.postgres, "skelex_bench_pipeline"),
        "REDIS_URL": args.redis,
        "MEDIA_ROOT": str(tmp / "media"),
        "ANALYSIS_BATCH_SIZE": str(args.batch),
        "ML_DEVICE": "cpu",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "skelex_web.settings",
    }
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO_ROOT, env=env, check=True)
    import django

    django.setup()
    import redis
    import torch

    from skelex_web.learning.services import register_backbone
    from skelex_web.projects.models import Project
    from workers.ml.checkpoint import save_checkpoint
    from workers.ml.model import create_model

    redis.Redis.from_url(args.redis).flushdb()
    torch.manual_seed(0)
    ckpt = save_checkpoint(create_model(args.variant), tmp / "bench.safetensors")
    backbone = register_backbone(name=f"{args.variant} (random)", checkpoint=ckpt, default=True)
    project = Project.objects.create(name="Bench", slug="bench", active_backbone=backbone)
    warmup = _store_images(project, tmp / "media", 1, (h, w))
    rounds = [
        _store_images(project, tmp / "media", args.images, (h, w), first=1 + r * args.images)
        for r in range(args.rounds)
    ]

    _direct(warmup, backbone, args.batch)  # warm-up (allocator, kernels), as the worker's below
    worker = _worker(env, tmp / "worker.log")
    measured = []
    try:
        _through_worker(warmup, worker.pid, project.pk)  # loads the model in the worker
        for r, ids in enumerate(rounds):
            if r % 2 == 0:
                direct = _direct(ids, backbone, args.batch)
                through = _through_worker(ids, worker.pid, project.pk)
            else:
                through = _through_worker(ids, worker.pid, project.pk)
                direct = _direct(ids, backbone, args.batch)
            measured.append((direct, through))
            print(
                f"round {r}: direct {direct[0]:.2f} s ({direct[1]:.2f} cpu s), "
                f"worker {through[0]:.2f} s ({through[1]:.2f} cpu s)"
            )
    finally:
        worker.kill()
        worker.wait(10)
    report = _report(args, h, w, measured)
    print(f"{'path':<8} {'images/s':>9} {'seconds':>8} {'cpu s':>8}")
    for side in ("direct", "worker"):
        r = report[side]
        print(f"{side:<8} {r['images_per_s']:>9.2f} {r['seconds']:>8.2f} {r['cpu_seconds']:>8.2f}")
    print(
        f"overhead (worker time / direct time): {report['overhead']:.2f}x over all rounds, "
        f"median of rounds {report['overhead_median']:.2f}x (target <= 1.2x)"
    )
    print(f"CPU overhead (worker process / direct): {report['cpu_overhead']:.2f}x")
    print(f"load average at the end: {report['load_average']}")
    print(json.dumps(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
