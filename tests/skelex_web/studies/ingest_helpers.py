"""Helpers for the ingest tests: captured analysis enqueues, media listing, hostile inputs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


class SentTasks:
    """Records ``app.send_task`` calls (the broker is the edge of our process)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Any], str]] = []

    def __call__(self, name: str, args: list[Any] | None = None, queue: str = "", **_: Any) -> None:
        self.calls.append((name, list(args or []), queue))

    @property
    def image_ids(self) -> list[int]:
        return [i for _, args, _ in self.calls for i in args[0]]


def media_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def png(seed: int, shape: tuple[int, int] = (40, 30)) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, size=shape, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
