"""Benchmark: bare decoding vs the pure ingest work (decode + de-identify + display PNG + thumbnail
+ hashes) on the same files in the same run.

    python -m workers.imaging.bench [--limit 200] [--fracatlas PATH] [--repeat 1]

Files: an evenly spaced sample of FracAtlas (``--limit`` images, corrupt ones excluded) and the
pydicom-data radiographs (RG1/RG3, uncompressed and JPEG 2000). Prints files/s and MB/s (of
input bytes) per set and the ratio, of wall time and of this process's CPU time (all threads): on
a shared machine other jobs inflate wall time, much less CPU time. The full path with the database and storage is
``python -m skelex_web.studies.bench_ingest`` (it needs Django, so it lives there).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

from .load import load_frames
from .prepare import prepare_file

RADIOGRAPHS = ["RG1_UNCR.dcm", "RG1_J2KR.dcm", "RG1_J2KI.dcm", "RG3_UNCR.dcm", "RG3_J2KR.dcm", "RG3_J2KI.dcm"]
DEFAULT_FRACATLAS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fracatlas"


def fracatlas_sample(root: Path, limit: int) -> list[Path]:
    """``limit`` images spread evenly over the sorted FracAtlas list (small and large ones alike)."""
    files = sorted(p for p in (root / "images").rglob("*.jpg") if p.parent.name != "corrupt")
    if not files or limit <= 0:
        return []
    step = max(1, len(files) // limit)
    return files[::step][:limit]


def dicom_radiographs() -> list[Path]:
    from pydicom.data import get_testdata_file

    found = [get_testdata_file(name, download=False) for name in RADIOGRAPHS]
    return [Path(str(p)) for p in found if p is not None]


def bench_sets(limit: int, fracatlas: Path) -> dict[str, list[Path]]:
    return {"fracatlas": fracatlas_sample(fracatlas, limit), "dicom": dicom_radiographs()}


def timed(fn: Callable[[Path], object], files: list[Path], repeat: int = 1) -> tuple[float, float]:
    """Best-of-``repeat`` wall seconds and CPU seconds (process, all threads) to run ``fn`` over all files."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        for path in files:
            fn(path)
        best, best_cpu = min(best, time.perf_counter() - start), min(best_cpu, time.process_time() - cpu)
    return best, best_cpu


def bare_decode(path: Path) -> None:
    for _ in load_frames(path, name=path.name):
        pass


def pure_ingest(path: Path) -> None:
    prepare_file(path.read_bytes(), path.name, key=b"bench-key")


def print_row(
    label: str,
    files: list[Path],
    base: float,
    other: float,
    other_label: str,
    cpu: tuple[float, float] | None = None,
) -> None:
    """One result line: both paths' throughput and their wall ratio; ``cpu`` (base, other) adds the CPU ratio."""
    megabytes = sum(p.stat().st_size for p in files) / 1e6
    n = len(files)
    cpu_part = f" | cpu {cpu[0]:6.2f}s vs {cpu[1]:6.2f}s ratio {cpu[1] / cpu[0]:5.2f}x" if cpu else ""
    print(
        f"{label:10s} {n:5d} files {megabytes:8.1f} MB | decode {n / base:7.1f} files/s {megabytes / base:7.1f} MB/s"
        f" | {other_label} {n / other:7.1f} files/s {megabytes / other:7.1f} MB/s | ratio {other / base:5.2f}x"
        + cpu_part
    )


def print_load() -> None:
    """The machine's load averages (1, 5, 15 min): wall-time ratios mean little when it is busy."""
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cpus")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=200, help="FracAtlas images to use (default 200)")
    parser.add_argument("--fracatlas", type=Path, default=DEFAULT_FRACATLAS)
    parser.add_argument("--repeat", type=int, default=1, help="best of N passes")
    args = parser.parse_args(argv)
    sets = bench_sets(args.limit, args.fracatlas)
    all_files = [p for files in sets.values() for p in files]
    bare_decode(all_files[0])  # warm-up: imports the decoder plugins
    print_load()
    totals = [0.0, 0.0, 0.0, 0.0]
    for label, files in sets.items():
        if not files:
            print(f"{label:10s} no files found")
            continue
        base, base_cpu = timed(bare_decode, files, args.repeat)
        full, full_cpu = timed(pure_ingest, files, args.repeat)
        for i, value in enumerate((base, full, base_cpu, full_cpu)):
            totals[i] += value
        print_row(label, files, base, full, "prepare", (base_cpu, full_cpu))
    if all(totals):
        print_row("all", all_files, totals[0], totals[1], "prepare", (totals[2], totals[3]))
    print_load()


if __name__ == "__main__":
    main()
