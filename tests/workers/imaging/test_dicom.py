"""DICOM decoding on real files: every transfer syntax, lossless = identical, grayscale done right."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEGLosslessSV1, JPEGLSLossless, RLELossless

from workers.imaging import ImagingError, load_frames, load_image

from .samples import dicom_bytes, dicom_path, transcode, with_changes


@pytest.fixture(scope="module")
def rg3() -> np.ndarray:
    return load_image(dicom_path("RG3_UNCR.dcm")).pixels


@pytest.mark.parametrize("name", ["RG3_J2KR.dcm"])
def test_rg3_lossless_variants_decode_pixel_identical(rg3: np.ndarray, name: str) -> None:
    assert np.array_equal(load_image(dicom_path(name)).pixels, rg3)


@pytest.mark.parametrize(
    "syntax", [RLELossless, JPEGLSLossless, JPEGLosslessSV1], ids=["rle", "jpeg-ls", "jpeg-ll-sv1"]
)
def test_rg3_transcoded_losslessly_decodes_identical(rg3: np.ndarray, syntax: pydicom.uid.UID) -> None:
    data = transcode("RG3_UNCR.dcm", syntax)
    decoded = load_image(data, name="rg3.dcm")
    assert decoded.transfer_syntax == syntax
    assert np.array_equal(decoded.pixels, rg3)


def test_rg1_j2k_lossless_identical_and_lossy_close() -> None:
    ref = load_image(dicom_path("RG1_UNCR.dcm")).pixels
    assert np.array_equal(load_image(dicom_path("RG1_J2KR.dcm")).pixels, ref)
    lossy = load_image(dicom_path("RG1_J2KI.dcm")).pixels.astype(np.int64)
    assert not np.array_equal(lossy, ref)
    assert np.abs(lossy - ref).mean() < 0.01 * (ref.max() - ref.min())


def test_rg3_j2k_lossy_close_to_original(rg3: np.ndarray) -> None:
    lossy = load_image(dicom_path("RG3_J2KI.dcm")).pixels.astype(np.int64)
    assert np.abs(lossy - rg3).mean() < 10  # of 1023 levels


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_expb.dcm",
    ],
)
def test_pydicom_syntax_variants_identical_to_explicit_le(name: str) -> None:
    ref = load_image(dicom_path("MR_small.dcm")).pixels
    assert np.array_equal(load_image(dicom_path(name)).pixels, ref)


@pytest.mark.parametrize("name", ["emri_small_RLE.dcm", "emri_small_jpeg_ls_lossless.dcm", "emri_small_big_endian.dcm"])
def test_multiframe_lossless_variants_identical_per_frame(name: str) -> None:
    ref = [f.pixels for f in load_frames(dicom_path("emri_small.dcm"))]
    got = [f.pixels for f in load_frames(dicom_path(name))]
    assert len(got) == len(ref) == 10
    assert all(np.array_equal(a, b) for a, b in zip(got, ref))


def test_multiframe_load_image_refuses_without_frame_and_gives_one_frame_with_it() -> None:
    path = dicom_path("emri_small.dcm")
    with pytest.raises(ImagingError, match="multi-frame DICOM \\(10 frames\\)"):
        load_image(path, name="emri.dcm")
    third = load_image(path, frame=2)
    assert third.frame_index == 2 and third.n_frames == 10
    assert np.array_equal(third.pixels, list(load_frames(path))[2].pixels)


def test_jpeg_lossless_sv1_real_file_decodes() -> None:
    decoded = load_image(dicom_path("JPGLosslessP14SV1_1s_1f_8b.dcm"))
    assert decoded.pixels.shape == (768, 1024) and decoded.bits == 8
    assert decoded.pixels.std() > 5
    assert decoded.window == (127.0, 254.0)


def test_ct_rescale_keeps_hounsfield_units_recoverable() -> None:
    path = dicom_path("693_UNCR.dcm")
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    decoded = load_image(path)
    recovered = decoded.units_offset + decoded.units_scale * decoded.pixels.astype(np.float64)
    assert np.array_equal(recovered, hu)
    # The J2K version declares 16 stored bits instead of 14: other offset, same Hounsfield units.
    other = load_image(dicom_path("693_J2KR.dcm"))
    assert np.array_equal(other.units_offset + other.units_scale * other.pixels.astype(np.float64), hu)
    # Window 40/100 HU in pixel units.
    assert decoded.window == (40 - decoded.units_offset, 100.0)


def test_float_rescale_slope_keeps_stored_values_exact() -> None:
    decoded = load_image(dicom_path("MR2_UNCR.dcm"))  # slope 3.774114
    stored = pydicom.dcmread(dicom_path("MR2_UNCR.dcm")).pixel_array
    assert np.array_equal(decoded.pixels, stored.astype(np.uint16))
    assert decoded.units_scale == pytest.approx(3.774114)


def test_signed_pixels_map_into_uint16_in_order() -> None:
    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    stored = ds.pixel_array.astype(np.int64)
    pixels = load_image(dicom_path("CT_small.dcm")).pixels.astype(np.int64)
    assert np.array_equal(pixels - stored, np.full_like(stored, 32768))


@pytest.mark.parametrize("name", ["RG3_UNCR.dcm", "RG1_UNCR.dcm"])
def test_monochrome1_inverted_bone_brighter_than_background(name: str) -> None:
    decoded = load_image(dicom_path(name))
    p = decoded.pixels
    h, w = p.shape
    if name.startswith("RG3"):  # tibia shaft vs the air beside the leg
        bone = np.median(p[int(h * 0.3) : int(h * 0.35), int(w * 0.55) : int(w * 0.6)])
        air = np.median(p[int(h * 0.3) : int(h * 0.35), int(w * 0.66) : int(w * 0.7)])
    else:  # spine vs lung field
        bone = np.median(p[int(h * 0.3) : int(h * 0.35), int(w * 0.47) : int(w * 0.52)])
        air = np.median(p[int(h * 0.3) : int(h * 0.35), int(w * 0.25) : int(w * 0.3)])
    assert bone > air + 0.1 * (p.max() - p.min())
    assert "MONOCHROME1 inverted (bone bright)" in decoded.notes
    assert decoded.photometric == "MONOCHROME1"


def test_monochrome1_window_is_mirrored_into_pixel_units() -> None:
    decoded = load_image(dicom_path("RG3_UNCR.dcm"))  # file: center 550, width 1024, 10 bits
    assert decoded.window == (1023 - 550, 1024.0)
    assert decoded.bits == 10 and decoded.window_source == "file"


def test_metadata_kept() -> None:
    decoded = load_image(dicom_path("RG3_UNCR.dcm"))
    assert (decoded.modality, decoded.body_part, decoded.view, decoded.laterality) == ("CR", "EXTREMITY", "AP", "R")
    assert decoded.sop_instance_uid and decoded.study_instance_uid and decoded.series_instance_uid
    assert decoded.patient_id == "11RG3" and decoded.file_format == "dicom"
    ct = load_image(dicom_path("CT_small.dcm"))
    assert ct.pixel_spacing == pytest.approx((0.661468, 0.661468)) and ct.pixel_spacing_source == "PixelSpacing"
    assert load_image(dicom_path("RG1_UNCR.dcm")).pixel_spacing is None  # declared 0.000: unknown, not zero


def test_multi_valued_window_takes_first_with_note() -> None:
    data = with_changes("MR_small.dcm", WindowCenter=[600, 100], WindowWidth=[1600, 50])
    decoded = load_image(data)
    assert decoded.window[1] == 1600.0
    assert any("2 windows" in n for n in decoded.notes)


def test_voi_lut_sequence_becomes_a_window() -> None:
    decoded = load_image(dicom_path("vlut_04.dcm"))
    assert decoded.window_source == "voi_lut" and decoded.window[1] > 0


def test_modality_lut_sequence_applied() -> None:
    ds = pydicom.dcmread(dicom_path("mlut_18.dcm"))
    decoded = load_image(dicom_path("mlut_18.dcm"))
    lut = pydicom.pixels.apply_modality_lut(ds.pixel_array, ds)
    assert np.array_equal(decoded.pixels, lut.astype(np.uint16))
    assert "modality LUT sequence applied" in decoded.notes


@pytest.mark.parametrize("name", ["SC_rgb.dcm", "US1_J2KR.dcm", "SC_ybr_full_uncompressed.dcm", "OBXXXX1A_rle.dcm"])
def test_colour_converted_to_grayscale_with_note(name: str) -> None:
    decoded = load_image(dicom_path(name))
    assert decoded.pixels.ndim == 2 and decoded.pixels.dtype == np.uint16
    assert any("converted to grayscale" in n for n in decoded.notes)


def test_rgb_and_ybr_give_the_same_gray() -> None:
    rgb = load_image(dicom_path("SC_rgb.dcm")).pixels.astype(int)
    ybr = load_image(dicom_path("SC_ybr_full_uncompressed.dcm")).pixels.astype(int)
    assert np.abs(rgb - ybr).max() <= 2


def test_burned_in_annotation_flag() -> None:
    assert load_image(with_changes("MR_small.dcm", BurnedInAnnotation="YES")).burned_in_annotation
    assert not load_image(dicom_path("MR_small.dcm")).burned_in_annotation


def test_deflated_syntax_decodes() -> None:
    decoded = load_image(dicom_path("image_dfl.dcm"))
    assert decoded.pixels.shape == (512, 512) and decoded.pixels.max() > 0


# --- refusals ---------------------------------------------------------------------------------


def test_non_dicom_bytes_named_dcm() -> None:
    with pytest.raises(ImagingError, match=r"^scan\.dcm: not a recognised image file"):
        load_image(b"this is not a DICOM file at all, just text" * 20, name="scan.dcm")


def test_dicom_without_pixel_data() -> None:
    with pytest.raises(ImagingError, match=r"rtplan\.dcm: DICOM file has no pixel data"):
        load_image(dicom_bytes("rtplan.dcm"), name="rtplan.dcm")


def test_unsupported_transfer_syntax_named() -> None:
    data = with_changes("MR_small.dcm", TransferSyntaxUID="1.2.840.10008.1.2.4.100")  # MPEG2
    with pytest.raises(ImagingError, match=r"x\.dcm: unsupported transfer syntax 1\.2\.840\.10008\.1\.2\.4\.100"):
        load_image(data, name="x.dcm")


def test_twelve_bit_jpeg_extended_refused_clearly() -> None:
    # Only the GPL pylibjpeg-libjpeg decodes 12-bit JPEG; we do not ship it.
    with pytest.raises(ImagingError, match=r"j\.dcm: pixel data could not be decoded .*12-bit"):
        load_image(dicom_bytes("JPEG-lossy.dcm"), name="j.dcm")


def test_truncated_pixel_data_refused() -> None:
    with pytest.raises(ImagingError, match="pixel data could not be decoded"):
        load_image(dicom_bytes("MR_truncated.dcm"), name="t.dcm")


def test_decompression_bomb_refused_before_decoding() -> None:
    data = with_changes("MR_small.dcm", Rows=40000, Columns=40000)
    with pytest.raises(ImagingError, match=r"b\.dcm: image too large: 40000x40000"):
        load_image(data, name="b.dcm", max_pixels=64_000_000)


def test_frames_count_towards_pixel_cap() -> None:
    with pytest.raises(ImagingError, match="x10 frames"):
        load_image(dicom_bytes("emri_small.dcm"), name="m.dcm", max_pixels=64 * 64 * 5)


def test_error_messages_carry_no_phi() -> None:
    data = with_changes("MR_small.dcm", TransferSyntaxUID="1.2.3.4", PatientName="Doe^Jane", PatientID="SECRET42")
    with pytest.raises(ImagingError) as err:
        load_image(data, name="upload-1.dcm")
    assert "Doe" not in str(err.value) and "SECRET42" not in str(err.value)


def test_jpeg_baseline_dicom_decodes_to_gray() -> None:
    decoded = load_image(dicom_path("SC_rgb_jpeg.dcm"))
    assert decoded.transfer_syntax == pydicom.uid.JPEGBaseline8Bit
    assert decoded.pixels.shape == (256, 256) and decoded.bits == 8
    assert "RGB converted to grayscale" in decoded.notes


def test_jpeg_lossless_16bit_real_file_decodes() -> None:
    decoded = load_image(dicom_path("JPEG-LL.dcm"))
    assert decoded.transfer_syntax == pydicom.uid.JPEGLosslessSV1
    assert decoded.pixels.shape == (1024, 256) and decoded.pixels.std() > 1
