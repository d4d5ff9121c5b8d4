"""The decoded-image record shared by every loader.

``pixels`` is always ``np.uint16 [H, W]`` with bone BRIGHT: the modality LUT has been applied,
MONOCHROME1 inverted, and the result mapped affinely into ``[0, 2**bits - 1]``. The mapping is
kept (``units_offset``, ``units_scale``) so a pixel value ``p`` means the modality value
``units_offset + units_scale * p`` (Hounsfield units for CT, raw detector values for most CR/DX)
and, for MONOCHROME1, ``p`` counts down from the brightest value. The VOI transform is never
burned in: ``window`` is the default (center, width) in pixel units, ready for the viewer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class DecodedImage:
    """One decoded grayscale frame plus the metadata downstream needs.

    Attributes:
        pixels: ``uint16 [H, W]``, bone bright, values in ``[0, 2**bits - 1]``.
        window: default (center, width) in pixel units (from the file, else from the histogram).
        bits: significant bits of ``pixels``.
        photometric: photometric interpretation of the source (``MONOCHROME1``, ``RGB``, ...).
        file_format: ``dicom``, ``png``, ``jpeg`` or ``tiff``.
        pixel_spacing: (row, col) spacing in mm, or None when unknown.
        pixel_spacing_source: the DICOM keyword it came from (``PixelSpacing``, ``ImagerPixelSpacing``, ...).
        patient_id: the raw patient id, only for pseudonymisation; never log it.
        notes: human-readable remarks on conversions made (``"RGB converted to grayscale"``).
        window_source: where ``window`` came from: ``file``, ``voi_lut``, ``histogram`` or ``full_range``.
        frame_index: frame of a multi-frame source (0 otherwise); ``n_frames`` their count.
        exif_orientation: the EXIF orientation tag of a PNG/JPEG/TIFF source (1 = upright or none),
            already applied to ``pixels``.
    """

    pixels: np.ndarray
    window: tuple[float, float]
    bits: int
    photometric: str
    file_format: str
    pixel_spacing: tuple[float, float] | None = None
    pixel_spacing_source: str = ""
    body_part: str = ""
    view: str = ""
    laterality: str = ""
    modality: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    sop_instance_uid: str = ""
    patient_id: str = field(default="", repr=False)
    study_date: str = ""
    transfer_syntax: str = ""
    burned_in_annotation: bool = False
    notes: list[str] = field(default_factory=list)
    window_source: str = ""
    units_offset: float = 0.0
    units_scale: float = 1.0
    frame_index: int = 0
    n_frames: int = 1
    exif_orientation: int = 1

    @property
    def rows(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def cols(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def max_value(self) -> int:
        return (1 << self.bits) - 1


def bits_for(max_value: int) -> int:
    """Smallest bit depth (at least 1, at most 16) whose range holds ``max_value``."""
    return max(1, min(16, int(max_value).bit_length()))


def histogram_window(pixels: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> tuple[float, float]:
    """A default window spanning the central percentiles of the pixel values.

    Subsamples large images (every k-th pixel) since percentiles of a million samples are as good
    as of twenty million and cost a tenth.
    """
    flat = pixels.reshape(-1)
    step = max(1, flat.size // 1_000_000)
    lo, hi = np.percentile(flat[::step], [low_pct, high_pct])
    if hi <= lo:
        lo, hi = float(flat.min()), float(flat.max())
    width = max(float(hi - lo), 1.0)
    return (float(lo) + width / 2.0, width)
