"""Input hardening: size and pixel caps checked before decoding, and safe zip iteration.

Why here and not in each loader: every ingest path (upload, folder, zip, dataset import) goes
through the same checks, so a decompression bomb or a ``../`` entry is refused the same way
everywhere, with an :class:`~workers.imaging.errors.ImagingError` naming the file.

Zip rules: entries whose names are absolute, contain ``..``, carry drive letters or are symlinks
are refused one by one (the rest of the archive is still read); so are encrypted entries, nested
archives and entries whose compression ratio exceeds ``max_ratio``. The whole archive is refused
when it has more than ``max_entries`` entries. Reading stops once ``max_total_bytes`` have been
expanded; declared sizes are never trusted, every read is capped.
"""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import ImagingError, fail

DEFAULT_MAX_PIXELS = 64_000_000
DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
ZIP_MAX_ENTRIES = 10_000
ZIP_MAX_TOTAL_BYTES = 4 * 1024 * 1024 * 1024
ZIP_MAX_RATIO = 200.0  # radiographs compress ~2-10x; even blank DICOM padding stays far below this
_CHUNK = 1 << 20


def check_pixels(rows: int, cols: int, frames: int, max_pixels: int, name: str | None) -> None:
    """Refuses images whose pixel count (all frames) exceeds ``max_pixels``, before any decoding."""
    if rows <= 0 or cols <= 0:
        raise fail(name, f"invalid image size {cols}x{rows}")
    total = int(rows) * int(cols) * max(1, int(frames))
    if total > max_pixels:
        raise fail(
            name,
            f"image too large: {cols}x{rows}"
            + (f"x{frames} frames" if frames > 1 else "")
            + f" = {total:,} pixels exceeds the limit of {max_pixels:,} (possible decompression bomb)",
        )


def check_size(size: int, max_bytes: int, name: str | None) -> None:
    """Refuses inputs larger than ``max_bytes``."""
    if size > max_bytes:
        raise fail(name, f"file too large: {size:,} bytes exceeds the limit of {max_bytes:,}")


def sniff(head: bytes) -> str:
    """The container format from magic bytes: dicom, png, jpeg, tiff, zip or "" when unknown.

    DICOM without the 128-byte preamble + ``DICM`` (old ACR-NEMA style) is not sniffed here.
    """
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    return ""


def safe_member_name(raw: str) -> str | None:
    """The entry name normalised to POSIX, or None if it could escape the extraction folder."""
    name = raw.replace("\\", "/")
    if not name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = PurePosixPath(name).parts
    if any(p == ".." for p in parts) or "\x00" in name:
        return None
    return "/".join(p for p in parts if p not in ("", "."))


@dataclass
class ZipMember:
    """One entry of an archive: ``data`` when readable, else ``error`` (an ImagingError)."""

    name: str
    data: bytes | None = None
    error: ImagingError | None = None


def iter_zip(
    source: str | Path | bytes | io.IOBase,
    *,
    archive_name: str = "archive.zip",
    max_entries: int = ZIP_MAX_ENTRIES,
    max_total_bytes: int = ZIP_MAX_TOTAL_BYTES,
    max_entry_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_ratio: float = ZIP_MAX_RATIO,
) -> Iterator[ZipMember]:
    """Yields the regular files of a zip archive, refusing unsafe entries one by one.

    Directories and macOS resource forks (``__MACOSX/``) are skipped silently.

    Raises:
        ImagingError: the archive itself is unreadable or has too many entries.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise fail(archive_name, f"not a readable zip archive ({type(exc).__name__})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_entries:
            raise fail(archive_name, f"zip has {len(infos):,} entries, more than the limit of {max_entries:,}")
        expanded = 0
        for info in infos:
            label = f"{archive_name}/{info.filename}"
            if info.is_dir():
                continue
            safe = safe_member_name(info.filename)
            if safe is None:
                yield ZipMember(info.filename, error=fail(label, "unsafe path in zip (absolute or '..'); skipped"))
                continue
            if safe.startswith("__MACOSX/") or PurePosixPath(safe).name.startswith("._"):
                continue
            member_label = f"{archive_name}/{safe}"
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                yield ZipMember(safe, error=fail(member_label, "symbolic link in zip; skipped"))
                continue
            if info.flag_bits & 0x1:
                yield ZipMember(safe, error=fail(member_label, "encrypted zip entry; skipped"))
                continue
            declared_ratio = info.file_size / max(info.compress_size, 1)
            if declared_ratio > max_ratio:
                yield ZipMember(
                    safe,
                    error=fail(
                        member_label,
                        f"compression ratio {declared_ratio:,.0f}:1 exceeds {max_ratio:,.0f}:1 (zip bomb?)",
                    ),
                )
                continue
            limit = min(max_entry_bytes, max_total_bytes - expanded, int(max_ratio * max(info.compress_size, 1)))
            if info.file_size > limit:
                problem = (
                    f"entry of {info.file_size:,} bytes exceeds the per-entry limit"
                    if info.file_size > max_entry_bytes
                    else f"archive expands beyond {max_total_bytes:,} bytes in total (zip bomb?)"
                )
                yield ZipMember(safe, error=fail(member_label, problem))
                continue
            try:
                data = _read_capped(zf, info, limit)
            except ImagingError as exc:
                yield ZipMember(safe, error=fail(member_label, exc.problem))
                continue
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
                yield ZipMember(safe, error=fail(member_label, f"corrupt zip entry ({type(exc).__name__})"))
                continue
            expanded += len(data)
            if sniff(data[:8]) == "zip":
                yield ZipMember(safe, error=fail(member_label, "nested zip archives are not opened; skipped"))
                continue
            yield ZipMember(safe, data=data)


def _read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """Reads one entry, failing as soon as more than ``limit`` bytes come out (lying headers)."""
    out = bytearray()
    with zf.open(info) as fh:
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            out += chunk
            if len(out) > limit:
                raise ImagingError("expands beyond its declared size or the size limits (zip bomb?)")
    return bytes(out)
