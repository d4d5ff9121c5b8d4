"""Decode-once cache of radiographs as 16-bit arrays, so pretraining never waits on JPEG decoding.

Every source image is decoded a single time (EXIF orientation applied, converted to one channel),
downsized so its long side is at most ``long_side`` pixels, scaled per image to [0, 1] by its own
minimum and maximum (the intensity convention of inference, see ``preprocess.py``) and stored as
a ``uint16`` ``.npy`` file (0..65535 = [0, 1]). Later epochs memory-map these files: reading one
costs microseconds, against milliseconds for a JPEG and a second for a 2304x2880 one.

Files that fail to decode (the truncated JPEGs FracAtlas ships in ``images/corrupt/``) are
skipped with a message naming the file and the reason; the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .preprocess import to_unit

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
CACHE_VERSION = 1


@dataclass(frozen=True)
class CacheEntry:
    """One cached image: where it came from, where its array is, and its cached shape (H, W)."""

    source: str
    array: str
    height: int
    width: int


def list_images(data: str | Path | Sequence[str | Path]) -> list[Path]:
    """Image files from a folder (recursively), a text file of paths (one a line), or a list of paths.

    Args:
        data: a directory, a ``.txt`` list (relative lines resolve against the list's folder), or paths.

    Returns:
        Sorted, de-duplicated paths; order is stable so seeded runs see the same data.
    """
    if isinstance(data, (str, Path)):
        path = Path(data)
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
            return sorted(set(found))
        if path.is_file() and path.suffix.lower() in (".txt", ".lst", ".list"):
            lines = [ln.strip() for ln in path.read_text().splitlines()]
            items = [Path(ln) if Path(ln).is_absolute() else path.parent / ln for ln in lines if ln and ln[0] != "#"]
            return sorted(set(items))
        if path.is_file():
            return [path]
        raise FileNotFoundError(f"no image folder or list at {path}")
    return sorted({Path(p) for p in data})


def decode_gray(path: str | Path) -> np.ndarray:
    """Decodes an image file to one channel as float32, EXIF orientation applied (boxes refer to it).

    Raises:
        OSError: the file is truncated or not an image (Pillow's error, unchanged).
    """
    with Image.open(path) as im:
        im.load()  # truncated JPEGs raise here, not lazily later
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(im, dtype=np.float32)
        else:
            arr = np.asarray(im.convert("L"), dtype=np.float32)
    if arr.ndim != 2:
        arr = arr[..., 0]
    return arr


def minmax_unit(arr: np.ndarray) -> np.ndarray:
    """Per-image [0, 1] scaling by the image's own min and max: inference's ``preprocess.to_unit``, called as is."""
    return to_unit(arr)


def resize_long_side(arr: np.ndarray, long_side: int) -> np.ndarray:
    """Area-faithful (antialiased) downsizing so that max(H, W) <= long_side; never upsizes."""
    h, w = arr.shape
    scale = long_side / max(h, w)
    if scale >= 1.0:
        return arr
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.array(Image.fromarray(arr.astype(np.float32)).resize(size, Image.Resampling.LANCZOS))


def _key(path: Path, long_side: int) -> str:
    st = path.stat()
    raw = f"{CACHE_VERSION}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{long_side}"
    return hashlib.sha1(raw.encode()).hexdigest()[:20]


def _encode_one(job: tuple[str, str, int]) -> tuple[str, tuple[int, int] | None, str | None]:
    """Worker: decode, scale, downsize, store. Returns (source, shape or None, error or None)."""
    source, target, long_side = job
    try:
        arr = minmax_unit(decode_gray(source))
        arr = np.clip(resize_long_side(arr, long_side), 0.0, 1.0)
        q = np.round(arr * 65535.0).astype(np.uint16)
        tmp = target + ".tmp.npy"
        np.save(tmp, q)
        os.replace(tmp, target)  # atomic: a killed run never leaves a half-written array behind
        return source, (int(q.shape[0]), int(q.shape[1])), None
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow raises all three on bad files
        return source, None, f"{type(exc).__name__}: {exc}"


def build_cache(
    paths: Iterable[str | Path],
    cache_dir: str | Path,
    long_side: int = 336,
    workers: int = 1,
    log=None,
) -> list[CacheEntry]:
    """Decodes every image not yet cached (in ``workers`` processes) and returns the usable entries.

    Args:
        paths: source images.
        cache_dir: where ``<hash>.npy`` files and ``index.json`` live; reused across runs.
        long_side: cap on the cached long side (about 1.5x the model input keeps crops sharp).
        workers: decoding processes (1 = in this process).
        log: callable for messages (default: print to stderr).

    Returns:
        One entry per image that decoded; skipped files are reported through ``log``.
    """
    say = log or (lambda msg: print(msg, file=sys.stderr))
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    index_path = cache / "index.json"
    index: dict[str, dict] = json.loads(index_path.read_text()) if index_path.exists() else {}
    entries: list[CacheEntry] = []
    jobs: list[tuple[str, str, int]] = []
    for p in map(Path, paths):
        key = _key(p, long_side)
        target = cache / f"{key}.npy"
        known = index.get(key)
        if known and target.exists():
            entries.append(CacheEntry(str(p), str(target), known["height"], known["width"]))
        elif known and known.get("error"):
            say(f"skipping unreadable image {p}: {known['error']} (cached verdict)")
        else:
            jobs.append((str(p), str(target), long_side))
    if jobs:
        say(f"decoding {len(jobs)} images into the 16-bit cache {cache} (long side <= {long_side}) ...")
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(_encode_one, jobs, chunksize=8))
        else:
            results = [_encode_one(j) for j in jobs]
        for (source, array_path, _), (_, shape, error) in zip(jobs, results, strict=True):
            key = Path(array_path).stem
            if shape is None:
                say(f"skipping unreadable image {source}: {error}")
                index[key] = {"source": source, "error": error}
                continue
            index[key] = {"source": source, "height": shape[0], "width": shape[1]}
            entries.append(CacheEntry(source, array_path, shape[0], shape[1]))
        tmp = index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(index, indent=0, sort_keys=True))
        os.replace(tmp, index_path)
    entries.sort(key=lambda e: e.source)
    return entries


def load_cached(entry: CacheEntry) -> np.ndarray:
    """The cached image as float32 in [0, 1], shape [H, W] (memory-mapped read)."""
    return np.load(entry.array, mmap_mode="r").astype(np.float32) / 65535.0
