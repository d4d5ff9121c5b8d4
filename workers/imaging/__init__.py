"""Pure imaging core: decode radiographs (DICOM, PNG, JPEG, TIFF), de-identify, refuse hostile input.

No Django, Celery or torch here (see DESIGN.md); ``skelex_web.studies.services`` builds ingest
on top. The contract other parts code against::

    decoded = load_image(path_or_bytes, name="safe-name.dcm")   # -> DecodedImage
    decoded.pixels        # uint16 [H, W], bone bright
    decoded.window        # default (center, width) in pixel units
    to_display_png(decoded), thumbnail_png(decoded), pixel_hash(decoded)

Every bad input raises :class:`ImagingError` with a message naming the file and the problem.
"""

from __future__ import annotations

from .decoded import DecodedImage
from .errors import ImagingError
from .load import load_frames, load_image, read_source
from .output import apply_window, encode_png8, encode_png16, pixel_hash, read_png16, thumbnail_png, to_display_png
from .safety import ZipMember, iter_zip, sniff

__all__ = [
    "DecodedImage",
    "ImagingError",
    "ZipMember",
    "apply_window",
    "encode_png8",
    "encode_png16",
    "iter_zip",
    "load_frames",
    "load_image",
    "pixel_hash",
    "read_png16",
    "read_source",
    "sniff",
    "thumbnail_png",
    "to_display_png",
]
