"""De-identification of PNG, JPEG and TIFF originals: the metadata goes, the pixels stay.

Ingest stores the original next to the display PNG. For DICOM the data set is de-identified
(``deid.py``); for the raster formats the identifying part is metadata: EXIF (artist, free-text
description, dates, GPS, camera serial numbers), XMP, IPTC, comments and PNG text chunks. What
:func:`scrub_raster` keeps:

- **JPEG**: the segments a decoder needs (frame and scan headers, Huffman and quantisation
  tables, restart interval, the entropy-coded data byte for byte, so no re-encoding and no loss),
  the JFIF ``APP0`` and Adobe ``APP14`` segments (the latter decides the colour transform). Every
  other ``APPn`` (EXIF, XMP, ICC, MPF, IPTC, vendor blocks), every comment and anything after
  the end-of-image marker (an MPO's further pictures, appended data) is dropped.
- **PNG**: the chunks that carry pixels or how to read them (``IHDR``, ``PLTE``, ``IDAT``,
  ``IEND``, ``tRNS``, ``gAMA``, ``cHRM``, ``sRGB``, ``sBIT``, ``pHYs``, ``bKGD``, ``hIST`` and the
  APNG frame chunks), copied byte for byte; text (``tEXt``, ``zTXt``, ``iTXt``), ``eXIf``,
  ``tIME``, ``iCCP`` (a free-text profile name), private chunks and trailing data are dropped.
- **TIFF**: tags are interleaved with the pixel layout, so the first page is rewritten (lossless
  deflate, same sample values and mode, upright: Pillow applies the orientation while loading)
  with no tag beyond those the image structure needs. Later pages are not kept (ingest uses the
  first page only).

The EXIF orientation is not metadata to lose: ingest applies it (the display PNG and any boxes
are in the rotated frame), so a scrubbed JPEG or PNG gets it back as a one-tag EXIF block (JPEG
``APP1``, PNG ``eXIf``) and a TIFF page is stored upright. Decoding the stored original therefore gives the same
oriented pixels as decoding the upload.
"""

from __future__ import annotations

import io
import re
import struct

from PIL import Image

from .errors import fail
from .output import PNG_SIGNATURE, png_chunk

_ORIENTATION = 0x0112

# JPEG markers kept as they are (besides SOS and the entropy-coded data that follows it):
# SOF0-15, DHT, DAC (0xC0-0xCF), DNL, DQT, DRI, DHP, EXP (0xDB-0xDF), JPG0-13 (JPEG-LS among them).
_JPEG_KEEP = frozenset(range(0xC0, 0xD0)) | frozenset(range(0xDB, 0xE0)) | frozenset(range(0xF0, 0xFE))
_JPEG_NAMES = {0xE1: "EXIF/XMP", 0xE2: "ICC/MPF", 0xED: "IPTC", 0xFE: "comment"}
# The next real marker inside entropy-coded data: 0xFF not followed by a stuffed zero or a restart marker.
_JPEG_NEXT_MARKER = re.compile(rb"\xff(?![\x00\xd0-\xd7])")

_PNG_KEEP = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"pHYs", b"bKGD", b"hIST"}
    | {b"acTL", b"fcTL", b"fdAT"}
)


def scrub_raster(
    data: bytes, file_format: str, orientation: int = 1, name: str | None = None
) -> tuple[bytes, list[str]]:
    """``data`` without its metadata, and what was removed (``["EXIF/XMP", "comment"]``).

    Args:
        data: a PNG, JPEG or TIFF file that decoded cleanly.
        file_format: ``png``, ``jpeg`` or ``tiff`` (as :class:`DecodedImage` names it).
        orientation: the EXIF orientation the decoder applied (1 = none); written back alone.
        name: the file's safe name, for errors.

    Raises:
        ImagingError: the structure could not be followed (the caller must not store the file).
    """
    try:
        if file_format == "jpeg":
            return _scrub_jpeg(data, orientation)
        if file_format == "png":
            return _scrub_png(data, orientation)
        if file_format == "tiff":
            return _scrub_tiff(data)
    except (ValueError, OSError, struct.error, IndexError) as exc:
        raise fail(name, f"metadata could not be removed ({type(exc).__name__})") from None
    raise fail(name, f"no metadata scrubber for format {file_format!r}")


def _orientation_tiff(orientation: int) -> bytes:
    """A big-endian TIFF header and IFD holding the orientation tag alone (the EXIF payload)."""
    entry = struct.pack(">HHIHH", _ORIENTATION, 3, 1, orientation, 0)  # SHORT, count 1, padded value
    return b"MM\x00\x2a" + struct.pack(">IH", 8, 1) + entry + struct.pack(">I", 0)


def _scrub_jpeg(data: bytes, orientation: int) -> tuple[bytes, list[str]]:
    if data[:2] != b"\xff\xd8":
        raise ValueError("no JPEG start-of-image marker")
    out = [b"\xff\xd8"]
    removed: list[str] = []
    orientation_block = b""
    if orientation != 1:
        payload = b"Exif\x00\x00" + _orientation_tiff(orientation)
        orientation_block = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    pos, end = 2, len(data)
    while True:
        if pos + 2 > end:
            raise ValueError("JPEG ends before its end-of-image marker")
        if data[pos] != 0xFF:
            raise ValueError("JPEG marker expected")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if orientation_block and marker != 0xE0:
            out.append(orientation_block)  # after SOI and a JFIF APP0, before everything else
            orientation_block = b""
        if marker == 0xD9:  # EOI: whatever follows (MPO pictures, appended data) is not kept
            out.append(b"\xff\xd9")
            if pos + 2 < end:
                removed.append("trailing data")
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers: no length
            out.append(data[pos : pos + 2])
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        segment_end = pos + 2 + length
        if length < 2 or segment_end > end:
            raise ValueError("JPEG segment runs past the end")
        segment = data[pos:segment_end]
        if marker == 0xDA:  # SOS: its header, then entropy-coded data up to the next real marker
            found = _JPEG_NEXT_MARKER.search(data, segment_end)
            if found is None:
                raise ValueError("JPEG scan without an end")
            out.append(data[pos : found.start()])
            pos = found.start()
            continue
        if _keep_jpeg_segment(marker, segment):
            out.append(segment)
        else:
            label = _JPEG_NAMES.get(marker, f"APP{marker - 0xE0}" if 0xE0 <= marker <= 0xEF else f"marker {marker:#x}")
            if label not in removed:
                removed.append(label)
        pos = segment_end
    return b"".join(out), removed


def _keep_jpeg_segment(marker: int, segment: bytes) -> bool:
    if marker in _JPEG_KEEP:
        return True
    if marker == 0xE0:  # JFIF (density only); JFXX and others may carry thumbnails
        return segment[4:9] == b"JFIF\x00"
    if marker == 0xEE:  # Adobe: version, flags and the colour transform the decoder needs
        return segment[4:9] == b"Adobe"
    return False


def _scrub_png(data: bytes, orientation: int) -> tuple[bytes, list[str]]:
    if data[:8] != PNG_SIGNATURE:
        raise ValueError("no PNG signature")
    out = [PNG_SIGNATURE]
    removed: list[str] = []
    pos, end = 8, len(data)
    while True:
        if pos + 12 > end:
            raise ValueError("PNG ends before IEND")
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        chunk_end = pos + 12 + length
        if chunk_end > end:
            raise ValueError("PNG chunk runs past the end")
        if kind in _PNG_KEEP:
            out.append(data[pos:chunk_end])
            if kind == b"IHDR" and orientation != 1:
                out.append(png_chunk(b"eXIf", _orientation_tiff(orientation)))
        elif kind.decode("latin-1") not in removed:
            removed.append(kind.decode("latin-1"))
        pos = chunk_end
        if kind == b"IEND":
            if pos < end:
                removed.append("trailing data")
            break
    return b"".join(out), removed


def _scrub_tiff(data: bytes) -> tuple[bytes, list[str]]:
    with Image.open(io.BytesIO(data)) as im:
        im.load()  # the first page
        # Pillow applies a TIFF's orientation while loading and drops the tag; whatever is still
        # pending (none with Pillow 11) is written back, so a decoder sees the same upright pixels.
        pending = int(im.getexif().get(_ORIENTATION, 1) or 1)
        clean = im.copy()  # a plain image: no TIFF tags or info travel with it
    clean.info = {}
    buf = io.BytesIO()
    tiffinfo = {_ORIENTATION: pending} if pending != 1 else {}
    clean.save(buf, format="TIFF", compression="tiff_adobe_deflate", tiffinfo=tiffinfo)
    return buf.getvalue(), ["TIFF tags (page rewritten losslessly)"]
