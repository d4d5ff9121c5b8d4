"""Zip handling: traversal, absolute paths, symlinks, bombs and too many entries are refused."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest

from workers.imaging import ImagingError, iter_zip


def _zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def test_good_entries_read_and_unsafe_ones_refused_individually() -> None:
    link = zipfile.ZipInfo("link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = _zip(
        [
            ("ok/a.png", b"aaa"),
            ("../evil.png", b"x"),
            ("/etc/passwd", b"x"),
            ("C:/win.png", b"x"),
            ("a/../../up.png", b"x"),
            (link, b"/etc/passwd"),
            ("__MACOSX/._a.png", b"junk"),
            ("dir/", b""),
            ("b.png", b"bbb"),
        ]
    )
    members = list(iter_zip(data, archive_name="up.zip"))
    good = {m.name: m.data for m in members if m.error is None}
    bad = {m.name: str(m.error) for m in members if m.error is not None}
    assert good == {"ok/a.png": b"aaa", "b.png": b"bbb"}
    assert set(bad) == {"../evil.png", "/etc/passwd", "C:/win.png", "a/../../up.png", "link.png"}
    assert "up.zip/../evil.png: unsafe path in zip" in bad["../evil.png"]
    assert "symbolic link" in bad["link.png"]


def test_zip_bomb_entry_refused_by_ratio() -> None:
    data = _zip([("bomb.dcm", b"\x00" * 20_000_000), ("fine.png", b"fine")])
    members = {m.name: m for m in iter_zip(data, archive_name="z.zip")}
    assert members["bomb.dcm"].error is not None and "zip bomb" in str(members["bomb.dcm"].error)
    assert members["fine.png"].data == b"fine"


def test_total_expansion_capped() -> None:
    entries = [(f"f{i}.bin", bytes(range(256)) * 400) for i in range(5)]
    members = list(iter_zip(_zip(entries, zipfile.ZIP_STORED), max_total_bytes=250_000))
    assert sum(m.error is None for m in members) == 2
    assert all("in total" in str(m.error) for m in members if m.error is not None)


def test_lying_header_caught_while_reading() -> None:
    data = bytearray(_zip([("x.bin", b"\x01" * 100_000)]))
    # Falsify the declared uncompressed size (local header offset 22, central directory too).
    small = (10).to_bytes(4, "little")
    data[22:26] = small
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = small
    members = list(iter_zip(bytes(data)))
    assert members[0].error is not None


def test_too_many_entries_refuses_archive() -> None:
    data = _zip([(f"{i}.png", b"x") for i in range(20)])
    with pytest.raises(ImagingError, match="many.zip: zip has 20 entries"):
        list(iter_zip(data, archive_name="many.zip", max_entries=10))


def test_not_a_zip() -> None:
    with pytest.raises(ImagingError, match="not a readable zip archive"):
        list(iter_zip(b"PK\x03\x04garbage", archive_name="x.zip"))


def test_nested_zip_skipped() -> None:
    inner = _zip([("a.png", b"a")])
    members = list(iter_zip(_zip([("inner.zip", inner)])))
    assert "nested zip" in str(members[0].error)
