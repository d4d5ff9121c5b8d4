"""A reproducible, streamed zip: same entries in -> same bytes out, memory bounded by one chunk.

Every entry gets a fixed timestamp and permissions, so re-exporting a version yields an identical
archive. Entries are written through ``ZipFile.open(..., "w")``: nothing is buffered whole.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
CHUNK = 1 << 20


class ZipSink:
    """Writes entries to a zip file on disk, one at a time.

    Args:
        path: the zip to create (its folder must exist).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._zip = zipfile.ZipFile(self.path, "w", allowZip64=True)
        self.names: list[str] = []

    def __enter__(self) -> ZipSink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def _info(self, name: str, compress: bool) -> zipfile.ZipInfo:
        if name in self.names:
            raise ValueError(f"duplicate archive entry {name}")
        self.names.append(name)
        info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        return info

    def write_chunks(self, name: str, chunks: Iterable[str | bytes], compress: bool = True) -> None:
        """One entry from text (UTF-8) or byte chunks, streamed."""
        with self._zip.open(self._info(name, compress), "w", force_zip64=True) as out:
            for chunk in chunks:
                out.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)

    def write_file(self, name: str, source: Path, compress: bool = False) -> None:
        """Copies a file into the archive in 1 MiB chunks (images are already compressed: stored)."""
        with open(source, "rb") as src, self._zip.open(self._info(name, compress), "w", force_zip64=True) as out:
            shutil.copyfileobj(src, out, CHUNK)
