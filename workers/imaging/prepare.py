"""One file in, everything ingest stores out: de-identified original, decoded frames, display PNG,
thumbnail and hashes. Pure (no Django), so the ingest service, the Celery task and the benchmark
share exactly the same work.

DICOM is parsed once: the data set is de-identified in place (when asked), re-serialised as the
stored original (pixel data untouched, same transfer syntax), and its frames decoded from the
de-identified data set, so no original UID, date or name reaches the returned metadata except
``DecodedImage.patient_id`` when de-identification is off. PNG, JPEG and TIFF originals lose their
metadata when de-identifying (``scrub.py``: EXIF, XMP, comments, text chunks; the pixel data and
the EXIF orientation stay).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from .decoded import DecodedImage
from .deid import DeidResult
from .deid import deidentify as deidentify_dataset
from .dicom import iter_dicom_frames, read_dataset
from .errors import fail
from .output import pixel_hash, thumbnail_png, to_display_png
from .raster import load_raster
from .safety import DEFAULT_MAX_PIXELS, sniff
from .scrub import scrub_raster


@dataclass
class PreparedFrame:
    """One decoded frame with its stored renditions."""

    decoded: DecodedImage
    display_png: bytes
    thumbnail_png: bytes
    pixel_sha256: str


@dataclass
class PreparedFile:
    """A file ready to store: ``original`` is what to keep (de-identified DICOM, the raster file
    without its metadata, or the bytes as received when not de-identifying)."""

    file_format: str
    original: bytes
    sha256: str
    frames: list[PreparedFrame]
    deid: DeidResult | None = None


def prepare_file(
    data: bytes,
    name: str | None,
    *,
    key: str | bytes,
    deidentify: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    thumb_size: int = 256,
) -> PreparedFile:
    """Decodes, de-identifies (``deidentify``: DICOM attributes, raster metadata) and renders one file.

    Raises:
        ImagingError: the file is unreadable, unsupported or too large.
    """
    kind = sniff(data[:132])
    if kind == "zip":
        raise fail(name, "is a zip archive inside an archive or upload list; not opened")
    deid: DeidResult | None = None
    if kind in ("png", "jpeg", "tiff"):
        decoded = load_raster(data, name, max_pixels=max_pixels)
        decoded_frames = [decoded]
        original = data
        if deidentify:
            original, removed = scrub_raster(data, decoded.file_format, decoded.exif_orientation, name)
            if removed:
                decoded.notes.append("removed from the stored original: " + ", ".join(removed))
    else:
        ds = read_dataset(data, name, max_pixels=max_pixels, sniffed=kind == "dicom")
        if deidentify:
            buf = io.BytesIO()
            try:
                deid = deidentify_dataset(ds, key)
                ds.save_as(buf, enforce_file_format=kind == "dicom")
            except Exception as exc:  # pydicom refuses some malformed sets on write
                raise fail(name, f"DICOM could not be de-identified and written ({type(exc).__name__})") from None
            original = buf.getvalue()
        else:
            original = data
        decoded_frames = list(iter_dicom_frames(ds, name))
        if deid is not None:
            for decoded in decoded_frames:
                decoded.patient_id = deid.patient_pseudo_id
                decoded.burned_in_annotation = deid.burned_in_annotation
    frames = [
        PreparedFrame(
            decoded=decoded,
            display_png=to_display_png(decoded),
            thumbnail_png=thumbnail_png(decoded, thumb_size),
            pixel_sha256=pixel_hash(decoded),
        )
        for decoded in decoded_frames
    ]
    return PreparedFile(
        file_format=frames[0].decoded.file_format,
        original=original,
        sha256=hashlib.sha256(original).hexdigest(),
        frames=frames,
        deid=deid,
    )
