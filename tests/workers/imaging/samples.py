"""Test inputs: real DICOM files from pydicom-data / pydicom, transcodes of them, synthetic rasters."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
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
