"""Benchmark: the full ingest path (decode, de-identify, store original + display PNG + thumbnail,
database rows, analysis enqueued) next to bare decoding of the same files, in the same run.

    python -m skelex_web.studies.bench_ingest [--limit 200] [--repeat 1] [--keep]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Runs against a throw-away SQLite database and media folder in a temporary directory, or with
``--postgres URL`` a throw-away PostgreSQL database created (and dropped) on that server, with
the in-memory Celery broker, so it never touches ``var/`` or real data. Each
repeat ingests into a fresh project so nothing is a duplicate. Prints files/s and MB/s of input
bytes for both paths and their ratio (target: full ≤ 1.5x bare decoding), and the CPU seconds of
this process (all threads) on each side with their ratio, which a busy machine distorts less
(PostgreSQL's own CPU is in the server, not counted). The bare decode is ``load_frames`` on each
path in turn, single-threaded: read the file, decode every frame to ``uint16`` pixels, nothing
else. The full path is ``ingest_many`` (what ``import_images``, ``import_dataset`` and the ingest
task run), with its default decode threads unless ``--threads`` says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def _setup_django(workdir: Path, database_url: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skelex_web.settings")
    os.environ["DATABASE_URL"] = database_url
    os.environ["MEDIA_ROOT"] = str(workdir / "media")
    os.environ.setdefault("CELERY_BROKER_URL", "memory://localhost//")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=200, help="FracAtlas images to use (default 200)")
    parser.add_argument("--repeat", type=int, default=1, help="best of N passes")
    parser.add_argument("--fracatlas", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary database and media")
    parser.add_argument("--threads", type=int, default=2, help="ingest_many decode threads (default 2)")
    parser.add_argument("--postgres", default="", help="server URL: benchmark on a temporary database there")
    args = parser.parse_args(argv)
    with throwaway_database(args.postgres, keep=args.keep):
        _run(args)


@contextlib.contextmanager
def throwaway_database(postgres: str = "", *, keep: bool = False, prefix: str = "skelex-bench") -> Iterator[Path]:
    """Django set up on a new SQLite file in a temporary folder (media there too), or on a new
    database on the PostgreSQL server at ``postgres``; migrated; removed afterwards unless ``keep``.
    Yields the temporary folder. Benchmarks use it so they never touch ``var/`` or real data."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    db_name = f"{prefix.replace('-', '_')}_{os.getpid()}"
    if postgres:
        _create_pg(postgres, db_name)
        database_url = postgres.rsplit("/", 1)[0] + "/" + db_name
    else:
        database_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    try:
        _setup_django(workdir, database_url)
        yield workdir
    finally:
        if not keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
            if postgres:
                from django.db import connections

                connections.close_all()
                _drop_pg(postgres, db_name)
        else:
            print(f"kept {workdir}" + (f" and database {db_name}" if postgres else ""))


def _create_pg(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop_pg(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _run(args: argparse.Namespace) -> None:
    engine = os.environ["DATABASE_URL"].split("://")[0]
    print(f"database: {engine}, ingest threads: {args.threads}, cpus: {os.cpu_count()}")

    from skelex_web.projects.models import Project
    from skelex_web.studies.services import ingest_many
    from workers.imaging.bench import DEFAULT_FRACATLAS, bare_decode, bench_sets, print_load, print_row

    sets = bench_sets(args.limit, args.fracatlas or DEFAULT_FRACATLAS)
    all_files = [p for files in sets.values() for p in files]
    if not all_files:
        sys.exit("no benchmark files found")
    bare_decode(all_files[0])  # warm-up: decoder plugins imported before timing
    print_load()
    totals = [0.0, 0.0, 0.0, 0.0]
    counter = iter(range(1_000_000))
    for label, files in sets.items():
        if not files:
            print(f"{label:10s} no files found")
            continue
        base = full = base_cpu = full_cpu = float("inf")
        for _ in range(args.repeat):
            start, cpu = time.perf_counter(), time.process_time()
            for path in files:
                bare_decode(path)
            base, base_cpu = min(base, time.perf_counter() - start), min(base_cpu, time.process_time() - cpu)
            project = Project.objects.create(name="bench", slug=f"bench-{next(counter)}")
            start, cpu = time.perf_counter(), time.process_time()
            results = ingest_many(project, [(path.name, path) for path in files], threads=args.threads)
            full, full_cpu = min(full, time.perf_counter() - start), min(full_cpu, time.process_time() - cpu)
            for result in results:
                if result.status != "ingested":
                    print(f"  {result.status}: {result.reason}")
        for i, value in enumerate((base, full, base_cpu, full_cpu)):
            totals[i] += value
        print_row(label, files, base, full, "ingest ", (base_cpu, full_cpu))
    print_row("all", all_files, totals[0], totals[1], "ingest ", (totals[2], totals[3]))
    print_load()


if __name__ == "__main__":
    main()
