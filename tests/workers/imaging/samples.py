"""Test inputs: real DICOM files from pydicom-data / pydicom, transcodes of them, synthetic rasters."""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, PngImagePlugin
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate


def dicom_path(name: str) -> Path:
    """A DICOM file shipped with pydicom or pydicom-data (installed, never downloaded)."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} not installed (pydicom-data missing)")
    return Path(str(path))


def dicom_bytes(name: str) -> bytes:
    return dicom_path(name).read_bytes()


def transcode(name: str, syntax: pydicom.uid.UID) -> bytes:
    """``name`` re-encoded with pydicom's encoders (RLE, JPEG-LS) or gdcm (JPEG lossless)."""
    if syntax == pydicom.uid.JPEGLosslessSV1:
        import gdcm

        reader = gdcm.ImageReader()
        reader.SetFileName(str(dicom_path(name)))
        assert reader.Read()
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
        change.SetInput(reader.GetImage())
        assert change.Change()
        writer = gdcm.ImageWriter()
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.dcm"
            writer.SetFileName(str(out))
            assert writer.Write()
            return out.read_bytes()
    ds = pydicom.dcmread(dicom_path(name))
    ds.compress(syntax)
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def png_bytes(arr: np.ndarray, **save: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", **save)
    return buf.getvalue()


def with_changes(name: str, **attrs: object) -> bytes:
    """``name`` with data elements set (by keyword) or, for value None, deleted."""
    ds = pydicom.dcmread(dicom_path(name))
    for keyword, value in attrs.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        elif keyword == "TransferSyntaxUID":
            # Pretend the stored pixels were compressed with ``value``: wrap them as one fragment.
            ds.PixelData = encapsulate([ds.PixelData])
            ds["PixelData"].VR = "OB"
            ds.file_meta.TransferSyntaxUID = value
        else:
            setattr(ds, keyword, value)
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


# --- PNG/JPEG with identifying metadata (raster de-identification) ---

PATIENT = "DOE^JANE"
PHI_STRINGS = [PATIENT.encode(), b"Dr Quincy", b"2019:03:04 05:06:07", b"MRN-0042", b"Ward 7"]


def film(shape: tuple[int, int] = (48, 64), seed: int = 0) -> np.ndarray:
    """A smooth 8-bit radiograph-like ramp with noise; asymmetric so a wrong orientation shows."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.clip(x * 3 + y + rng.integers(0, 20, size=shape), 0, 255).astype(np.uint8)


def exif_with_phi(orientation: int = 1) -> Image.Exif:
    """EXIF naming a patient and a physician, with a capture date, GPS and optionally an orientation."""
    exif = Image.Exif()
    exif[0x013B] = "Dr Quincy"  # Artist
    exif[0x010E] = f"Patient {PATIENT}, MRN-0042"  # ImageDescription
    if orientation != 1:
        exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = "2019:03:04 05:06:07"  # DateTimeOriginal
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (51.0, 30.0, 12.5)  # GPSLatitudeRef, GPSLatitude
    return exif


def with_segments(jpeg: bytes, *segments: tuple[int, bytes]) -> bytes:
    """``jpeg`` with extra marker segments (marker, payload) right after SOI."""
    extra = b"".join(bytes([0xFF, m]) + struct.pack(">H", len(p) + 2) + p for m, p in segments)
    return jpeg[:2] + extra + jpeg[2:]


def jpeg_with_metadata(arr: np.ndarray, orientation: int = 1, **save: object) -> bytes:
    """A JPEG of ``arr`` carrying :func:`exif_with_phi`, an XMP packet and a comment with the patient's name."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90, exif=exif_with_phi(orientation).tobytes(), **save)
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><dc:creator>Dr Quincy</dc:creator></x:xmpmeta>"
    return with_segments(buf.getvalue(), (0xE1, xmp), (0xFE, b"Ward 7 " + PATIENT.encode()))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_text(arr: np.ndarray, orientation: int = 1) -> bytes:
    """A PNG of ``arr`` with tEXt, iTXt and zTXt chunks naming the patient, :func:`exif_with_phi` as
    eXIf, a private chunk and data after IEND."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Patient", PATIENT)
    info.add_itxt("Description", f"Ward 7, MRN-0042, {PATIENT}", lang="en", tkey="Beschreibung")
    info.add_text("Comment", "Dr Quincy", zip=True)  # zTXt
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", pnginfo=info, exif=exif_with_phi(orientation).tobytes())
    data = buf.getvalue()
    private = png_chunk(b"prVt", b"2019:03:04 05:06:07")
    return data[:-12] + private + data[-12:] + b"Ward 7 trailing"
