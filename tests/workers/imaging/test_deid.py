"""De-identification: no PHI value of the profile survives, pseudonyms and UIDs stay consistent."""

from __future__ import annotations

import io
import re

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from workers.imaging.deid import PSEUDONYMISED, REMOVE, deidentify, pseudonym, remap_uid, shift_date
from workers.imaging.prepare import prepare_file

from .samples import dicom_path

KEY = "project-key-1"
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def _phi_dataset() -> tuple[Dataset, dict[str, str]]:
    """RG3 with a distinctive fake value in every attribute the profile removes or replaces."""
    ds = pydicom.dcmread(dicom_path("RG3_UNCR.dcm"))
    planted: dict[str, str] = {}
    for i, keyword in enumerate(REMOVE + PSEUDONYMISED):
        tag = pydicom.datadict.tag_for_keyword(keyword)
        vr = pydicom.datadict.dictionary_VR(tag)
        if vr == "SQ":
            item = Dataset()
            item.CodeValue = f"PHIC{i:03d}"
            item.CodeMeaning = f"PHISEQ{i:03d}"
            setattr(ds, keyword, Sequence([item]))
            planted[keyword] = f"PHISEQ{i:03d}"
        elif vr == "DA":
            setattr(ds, keyword, "19450317")
            planted[keyword] = "19450317"
        elif vr == "TM":
            setattr(ds, keyword, "101010")
        elif vr == "UI":
            setattr(ds, keyword, f"1.2.826.0.1.9999.{i}")
            planted[keyword] = f"1.2.826.0.1.9999.{i}"
        else:
            setattr(ds, keyword, f"PHI{i:03d}X")
            planted[keyword] = f"PHI{i:03d}X"
    ds.add_new(0x00091010, "LO", "PRIVATEPHI")
    ds.add_new(0x60004000, "LT", "OVERLAYPHI")
    ds.ReferencedImageSequence = Sequence([Dataset()])
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = ds.SOPInstanceUID
    ds.ReferencedImageSequence[0].ReferencedSOPClassUID = ds.SOPClassUID
    ds.ReferencedImageSequence[0].add_new(0x00081070, "PN", "Nurse^Nested")
    planted["nested PN"] = "Nurse^Nested"
    planted["private"] = "PRIVATEPHI"
    planted["overlay"] = "OVERLAYPHI"
    return ds, planted


def test_no_profile_value_survives_in_written_file() -> None:
    ds, planted = _phi_dataset()
    original_uids = [ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID]
    original_dates = [ds.StudyDate, ds.ContentDate] if "ContentDate" in ds else [ds.StudyDate]
    deidentify(ds, KEY)
    buf = io.BytesIO()
    ds.save_as(buf)
    written = buf.getvalue()
    for keyword, value in planted.items():
        assert value.encode() not in written, f"{keyword} value survived"
    for uid in original_uids:
        assert uid.encode() not in written
    for date in original_dates:
        assert f"(0008,0020) {date}" and date.encode() not in written
    back = pydicom.dcmread(io.BytesIO(written))
    assert back.PatientIdentityRemoved == "YES"
    assert back.DeidentificationMethod and len(back.DeidentificationMethod) <= 64
    assert [c.CodeValue for c in back.DeidentificationMethodCodeSequence] == ["113100", "113107", "113108"]
    assert back.PatientID == pseudonym(KEY, f"PHI{len(REMOVE):03d}X")
    assert back.PatientName == back.PatientID
    assert back.ReferencedImageSequence[0].ReferencedSOPInstanceUID == back.SOPInstanceUID
    assert back.ReferencedImageSequence[0].ReferencedSOPClassUID == ds.SOPClassUID  # a DICOM UID, kept
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
    assert back.PatientSex == "F" and back.BodyPartExamined == "EXTREMITY"  # retained characteristics


def test_uids_valid_keyed_and_consistent() -> None:
    a = remap_uid(KEY, "1.2.3.4")
    assert a == remap_uid(KEY, "1.2.3.4") and a != remap_uid("other-key", "1.2.3.4")
    assert a.startswith("2.25.") and len(a) <= 64 and _UID.match(a)
    ds1 = pydicom.dcmread(dicom_path("RG3_UNCR.dcm"), stop_before_pixels=True)
    ds2 = pydicom.dcmread(dicom_path("RG3_J2KR.dcm"), stop_before_pixels=True)
    same_study = ds1.StudyInstanceUID == ds2.StudyInstanceUID
    deidentify(ds1, KEY)
    deidentify(ds2, KEY)
    assert (ds1.StudyInstanceUID == ds2.StudyInstanceUID) == same_study


def test_pseudonym_stable_per_key_and_dates_shift_consistently() -> None:
    assert pseudonym(KEY, "123") == pseudonym(KEY, "123") != pseudonym("k2", "123")
    ds1 = pydicom.dcmread(dicom_path("RG3_UNCR.dcm"), stop_before_pixels=True)
    ds2 = pydicom.dcmread(dicom_path("RG3_UNCR.dcm"), stop_before_pixels=True)
    ds2.StudyDate = "20040901"  # same patient, 6 days later
    r1, r2 = deidentify(ds1, KEY), deidentify(ds2, KEY)
    assert r1.patient_pseudo_id == r2.patient_pseudo_id and r1.date_offset_days == r2.date_offset_days
    assert 1 <= r1.date_offset_days <= 3650
    assert ds1.StudyDate != "20040826"
    assert ds1.StudyDate == shift_date("20040826", r1.date_offset_days)
    import datetime as dt

    d1 = dt.datetime.strptime(ds1.StudyDate, "%Y%m%d")
    d2 = dt.datetime.strptime(ds2.StudyDate, "%Y%m%d")
    assert (d2 - d1).days == 6


def test_prepare_file_returns_deidentified_metadata_and_original() -> None:
    data = dicom_path("RG3_UNCR.dcm").read_bytes()
    original = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    prepared = prepare_file(data, "x.dcm", key=KEY)
    frame = prepared.frames[0].decoded
    assert frame.sop_instance_uid == remap_uid(KEY, original.SOPInstanceUID)
    assert frame.patient_id == pseudonym(KEY, "11RG3")
    assert b"11RG3" not in prepared.original and original.InstitutionName.encode() not in prepared.original
    assert pydicom.dcmread(io.BytesIO(prepared.original)).pixel_array.shape == (1760, 1760)


def test_burned_in_annotation_flagged() -> None:
    ds = pydicom.dcmread(dicom_path("MR_small.dcm"))
    ds.BurnedInAnnotation = "YES"
    assert deidentify(ds, KEY).burned_in_annotation


@pytest.mark.parametrize("value", ["", "garbage"])
def test_unparseable_dates_become_empty(value: str) -> None:
    assert shift_date(value, 10) == ""


def test_pydicom_value_messages_redacted_in_logs_and_silenced_as_warnings(caplog: pytest.LogCaptureFixture) -> None:
    import warnings

    from workers.imaging.dicom import hide_pydicom_warnings

    with caplog.at_level("WARNING", logger="pydicom"), warnings.catch_warnings(record=True) as caught:
        hide_pydicom_warnings()  # installed at import; re-applied here inside the recording context
        Dataset().PatientBirthDate = "1945X317"  # pydicom logs and warns "Invalid value for VR DA: '1945X317'"
    assert "Invalid value for VR DA" in caplog.text and "1945X317" not in caplog.text
    assert not [w for w in caught if "1945X317" in str(w.message)]
