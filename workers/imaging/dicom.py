"""DICOM decoding through pydicom 3: any supported transfer syntax → bone-bright uint16 frames.

Decoders (all permissively licensed; pylibjpeg-libjpeg, GPL, is deliberately absent):

==========================================  =======================================
transfer syntax                             decoded by (pydicom picks the first)
==========================================  =======================================
implicit/explicit VR LE, explicit VR BE     pydicom (native)
deflated explicit VR LE                     pydicom (inflated here first, capped)
RLE lossless                                pydicom / pylibjpeg-rle
JPEG baseline / extended                    gdcm, pillow
JPEG lossless (process 14, incl. SV1)       gdcm
JPEG-LS lossless / near-lossless            gdcm, pyjpegls
JPEG 2000 lossless / lossy                  gdcm, pillow, pylibjpeg-openjpeg
HTJ2K                                       pylibjpeg-openjpeg
==========================================  =======================================

Grayscale pipeline: modality LUT (rescale slope/intercept or LUT sequence) → affine map into
uint16 (exact for ≤16-bit data: pixel = stored value − lowest stored value) → MONOCHROME1
inverted. The VOI transform (window center/width, first of several; VOI LUT sequences
approximated by the linear window spanning their input range) is only carried as ``window``.
Colour images (RGB, YBR_*, PALETTE COLOR) become luma with a note.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, convert_color_space, get_decoder
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ImplicitVRLittleEndian

from .decoded import DecodedImage, bits_for, histogram_window
from .errors import ImagingError, fail
from .safety import check_pixels

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_DEFLATE_SLACK = 64 * 1024 * 1024
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


class _RedactValues(logging.Filter):
    """pydicom logs invalid element values verbatim ("Invalid value for VR DA: '19450317'"),
    which may be PHI: quoted values are blanked before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _QUOTED.sub("'<redacted>'", record.getMessage())
        record.args = None
        return True


logging.getLogger("pydicom").addFilter(_RedactValues())


def hide_pydicom_warnings() -> None:
    """pydicom also repeats element values as UserWarnings (printed to worker logs): ignore them.

    A process-wide filter rather than ``catch_warnings()``, which is not thread-safe (ingest
    decodes in threads). Installed when this module is imported.
    """
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")


hide_pydicom_warnings()


def read_dataset(data: bytes, name: str | None, *, max_pixels: int, sniffed: bool) -> Dataset:
    """Parses a DICOM file (pixels left encoded) and validates it before any pixel decoding.

    Args:
        data: the file bytes.
        name: label for error messages.
        max_pixels: the cap on rows × columns × frames.
        sniffed: True when the ``DICM`` preamble was found; otherwise a preamble-less file is
            accepted only if it parses into a dataset with pixel data.
    """
    if not sniffed and not _looks_like_bare_dataset(data):
        raise fail(name, "not a recognised image file (not DICOM, PNG, JPEG or TIFF)")
    _check_deflate(data, name, max_pixels)
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=not sniffed)
    except Exception as exc:  # pydicom raises many types on garbage; all mean "unreadable"
        raise fail(name, f"not a valid DICOM file ({type(exc).__name__})") from None
    if not any(kw in ds for kw in _PIXEL_KEYWORDS):
        if not sniffed:
            raise fail(name, "not a recognised image file (not DICOM, PNG, JPEG or TIFF)")
        raise fail(name, "DICOM file has no pixel data (e.g. a report or presentation state)")
    if "PixelData" not in ds:
        raise fail(name, "float pixel data (parametric maps) is not supported")
    check_header(ds, name, max_pixels)
    return ds


def _looks_like_bare_dataset(data: bytes) -> bool:
    """A preamble-less DICOM data set starts with a group 0x0002 or 0x0008 element."""
    if len(data) < 8:
        return False
    group_le = int.from_bytes(data[0:2], "little")
    group_be = int.from_bytes(data[0:2], "big")
    return group_le in (0x0002, 0x0008) or group_be in (0x0002, 0x0008)


def _check_deflate(data: bytes, name: str | None, max_pixels: int) -> None:
    """Deflated data sets are inflated whole by pydicom: refuse ones that would expand too far."""
    if DeflatedExplicitVRLittleEndian.encode() not in data[:2048]:
        return
    cap = max_pixels * 8 + _DEFLATE_SLACK
    # The meta group (explicit VR LE, uncompressed) ends where its group length says.
    try:
        meta_len = int.from_bytes(data[140:144], "little")
        start = 144 + meta_len
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        out = inflater.decompress(data[start:], cap)
    except (zlib.error, ValueError):
        raise fail(name, "deflated DICOM data set is corrupt") from None
    if len(out) >= cap and inflater.unconsumed_tail:
        raise fail(name, f"deflated DICOM data set expands beyond {cap:,} bytes (decompression bomb?)")


def check_header(ds: Dataset, name: str | None, max_pixels: int) -> None:
    """Validates image attributes and the transfer syntax's decoder, before decoding."""
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames") or 1)
        samples = int(ds.get("SamplesPerPixel") or 1)
        bits_alloc = int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        raise fail(name, "DICOM image attributes (Rows, Columns, BitsAllocated) missing or invalid") from None
    check_pixels(rows, cols, frames, max_pixels, name)
    if samples not in (1, 3) or bits_alloc not in (1, 8, 16, 32):
        raise fail(name, f"unsupported pixel layout ({samples} samples of {bits_alloc} bits)")
    tsyntax = transfer_syntax(ds)
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        raise fail(name, f"unsupported transfer syntax {tsyntax} ({_ts_name(tsyntax)})") from None
    if not decoder.is_available:
        raise fail(name, f"no decoder installed for transfer syntax {tsyntax} ({_ts_name(tsyntax)})")


def transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    return UID(ts) if ts else ImplicitVRLittleEndian


def _ts_name(uid: UID) -> str:
    return uid.name if uid.is_transfer_syntax else "unknown"


def iter_dicom_frames(ds: Dataset, name: str | None, frames: list[int] | None = None) -> Iterator[DecodedImage]:
    """Decodes the requested frames (all by default) into :class:`DecodedImage` records."""
    n_frames = int(ds.get("NumberOfFrames") or 1)
    indices = list(range(n_frames)) if frames is None else frames
    decoder = get_decoder(transfer_syntax(ds))
    meta = _metadata(ds)
    for index in indices:
        if not 0 <= index < n_frames:
            raise fail(name, f"frame {index} does not exist ({n_frames} frames)")
        try:
            arr, info = decoder.as_array(ds, index=index if n_frames > 1 else None)
        except Exception as exc:  # decoder plugins raise assorted types on corrupt streams
            raise fail(name, f"pixel data could not be decoded ({type(exc).__name__}: {_short(exc)})") from None
        image = _to_gray(ds, arr, str(info.get("photometric_interpretation", "")), name)
        image.frame_index, image.n_frames = index, n_frames
        for key, value in meta.items():
            setattr(image, key, value)
        if n_frames > 1:
            image.notes.append(f"frame {index + 1} of {n_frames}")
        yield image


def _short(exc: Exception) -> str:
    """The decoder's message on one line, capped (pixel decoders never echo data element values)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return "; ".join(lines)[:300]


def _to_gray(ds: Dataset, arr: np.ndarray, photometric: str, name: str | None) -> DecodedImage:
    source_pi = str(ds.get("PhotometricInterpretation", "")).strip()
    notes: list[str] = []
    if source_pi == "PALETTE COLOR":
        try:
            arr = apply_color_lut(arr, ds)
        except Exception as exc:  # a broken palette is a broken file
            raise fail(name, f"palette colour lookup failed ({type(exc).__name__})") from None
        photometric = "RGB"
        notes.append("PALETTE COLOR converted to grayscale")
    if arr.ndim == 3:
        if photometric.startswith("YBR") and photometric not in ("YBR_ICT", "YBR_RCT"):
            arr = convert_color_space(arr, photometric, "RGB")
        if not notes:
            notes.append(f"{source_pi or 'RGB'} converted to grayscale")
        return _from_color(arr, source_pi, notes)
    return _from_monochrome(ds, arr, source_pi, notes, name)


def _from_color(rgb: np.ndarray, source_pi: str, notes: list[str]) -> DecodedImage:
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    top = int(rgb.max()) if rgb.size else 255
    if top > 65535:  # 32-bit colour: scale into 16 bits
        luma = luma * (65535.0 / top)
        top = 65535
    pixels = np.clip(np.rint(luma), 0, 65535).astype(np.uint16)
    bits = 8 if top <= 255 else bits_for(top)
    max_value = (1 << bits) - 1
    return DecodedImage(
        pixels=pixels,
        window=(max_value / 2.0 + 0.5, float(max_value + 1)),
        bits=bits,
        photometric=source_pi,
        file_format="dicom",
        notes=notes,
        window_source="full_range",
    )


def _stored_range(ds: Dataset, arr: np.ndarray) -> tuple[int, int]:
    bits_stored = int(ds.get("BitsStored") or ds.BitsAllocated)
    if int(ds.get("PixelRepresentation") or 0) == 1:
        lo, hi = -(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1
    else:
        lo, hi = 0, (1 << bits_stored) - 1
    if arr.size:
        lo, hi = min(lo, int(arr.min())), max(hi, int(arr.max()))
    return lo, hi


def _from_monochrome(ds: Dataset, arr: np.ndarray, source_pi: str, notes: list[str], name: str | None) -> DecodedImage:
    lo_s, hi_s = _stored_range(ds, arr)
    if "ModalityLUTSequence" in ds:
        try:
            values = apply_modality_lut(arr, ds).astype(np.float64)
        except Exception as exc:
            raise fail(name, f"modality LUT could not be applied ({type(exc).__name__})") from None
        lut_bits = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
        m_lo = min(0.0, float(values.min()))
        m_hi = max(float((1 << lut_bits) - 1), float(values.max()))
        scale = max(1.0, (m_hi - m_lo) / 65535.0)
        notes.append("modality LUT sequence applied")
    else:
        slope = float(ds.get("RescaleSlope") or 1.0) or 1.0
        intercept = float(ds.get("RescaleIntercept") or 0.0)
        values = arr.astype(np.float64) * slope + intercept if (slope != 1.0 or intercept != 0.0) else arr
        ends = (lo_s * slope + intercept, hi_s * slope + intercept)
        m_lo, m_hi = min(ends), max(ends)
        # Keep stored integers exact (scale = |slope|) unless the range needs more than 16 bits.
        scale = max(abs(slope), (m_hi - m_lo) / 65535.0)
    max_value = int(round((m_hi - m_lo) / scale))
    if values is arr and scale == 1.0:
        # Integer fast path: [lo_s, hi_s] covers the data, so no clipping is needed.
        pixels = arr.astype(np.uint16) if m_lo == 0 else (arr.astype(np.int32) - int(m_lo)).astype(np.uint16)
    else:
        mapped = np.rint((np.asarray(values, dtype=np.float64) - m_lo) / scale)
        pixels = np.clip(mapped, 0, max_value).astype(np.uint16)
    window, window_source = _file_window(ds, notes)
    if window is not None:
        center, width = (window[0] - m_lo) / scale, window[1] / scale
    if source_pi == "MONOCHROME1":
        pixels = (max_value - pixels).astype(np.uint16)
        notes.append("MONOCHROME1 inverted (bone bright)")
        if window is not None:
            center = max_value - center
    if window is None or width <= 0:
        window, window_source = histogram_window(pixels), "histogram"
    else:
        window = (float(center), float(width))
    return DecodedImage(
        pixels=pixels,
        window=window,
        bits=bits_for(max_value),
        photometric=source_pi,
        file_format="dicom",
        notes=notes,
        window_source=window_source,
        units_offset=float(m_lo) if source_pi != "MONOCHROME1" else float(m_lo + scale * max_value),
        units_scale=float(scale) if source_pi != "MONOCHROME1" else -float(scale),
    )


def _file_window(ds: Dataset, notes: list[str]) -> tuple[tuple[float, float] | None, str]:
    """(center, width) in modality units from the file's VOI module, or None."""
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:
        centers = list(center) if isinstance(center, pydicom.multival.MultiValue) else [center]
        widths = list(width) if isinstance(width, pydicom.multival.MultiValue) else [width]
        if centers and widths:
            if len(centers) > 1:
                notes.append(f"{len(centers)} windows in file; the first is the default")
            if str(ds.get("VOILUTFunction", "LINEAR")).upper() != "LINEAR":
                notes.append(f"VOI LUT function {ds.VOILUTFunction} approximated by a linear window")
            try:
                return (float(centers[0]), float(widths[0])), "file"
            except (TypeError, ValueError):
                pass
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence):
        try:
            n_entries, first_mapped = _lut_span(ds.VOILUTSequence[0])
        except (AttributeError, IndexError, TypeError, ValueError):
            return None, ""
        notes.append("VOI LUT sequence approximated by a linear window over its input range")
        return (first_mapped + n_entries / 2.0, float(n_entries)), "voi_lut"
    return None, ""


def _lut_span(item: Dataset) -> tuple[int, int]:
    desc = item.LUTDescriptor
    n_entries = int(desc[0]) or 65536
    return n_entries, int(desc[1])


def _metadata(ds: Dataset) -> dict[str, Any]:
    """Per-file attributes copied onto every frame."""
    spacing, source = None, ""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        value = ds.get(keyword)
        try:
            pair = (float(value[0]), float(value[1])) if value is not None and len(value) == 2 else None
        except (TypeError, ValueError):
            pair = None
        if pair and pair[0] > 0 and pair[1] > 0:
            spacing, source = pair, keyword
            break
    laterality = str(ds.get("ImageLaterality") or ds.get("Laterality") or "")
    return {
        "pixel_spacing": spacing,
        "pixel_spacing_source": source,
        "body_part": str(ds.get("BodyPartExamined") or "").strip(),
        "view": str(ds.get("ViewPosition") or "").strip(),
        "laterality": laterality.strip(),
        "modality": str(ds.get("Modality") or "").strip(),
        "study_instance_uid": str(ds.get("StudyInstanceUID") or ""),
        "series_instance_uid": str(ds.get("SeriesInstanceUID") or ""),
        "sop_instance_uid": str(ds.get("SOPInstanceUID") or ""),
        "patient_id": str(ds.get("PatientID") or ""),
        "study_date": str(ds.get("StudyDate") or ""),
        "transfer_syntax": str(transfer_syntax(ds)),
        "burned_in_annotation": str(ds.get("BurnedInAnnotation") or "").strip().upper() == "YES",
    }


def frame_count(ds: Dataset) -> int:
    return int(ds.get("NumberOfFrames") or 1)


__all__ = ["ImagingError", "check_header", "frame_count", "iter_dicom_frames", "read_dataset", "transfer_syntax"]
