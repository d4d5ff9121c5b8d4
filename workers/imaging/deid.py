"""DICOM de-identification: a documented subset of the PS3.15 Basic Application Level
Confidentiality Profile, with the Retain Longitudinal Temporal Information (Modified Dates) and
Retain Patient Characteristics options.

What happens to a data set (recursively, inside sequences too):

- Patient ID and Patient's Name → a keyed pseudonym ``P<20 hex>`` (HMAC-SHA256 of the patient id
  under the project key): stable within a project, so patient-level splits still work, and
  unlinkable across projects or without the key.
- Removed (:data:`REMOVE`): birth date/time, address, telephone numbers, other patient ids and
  names, birth and mother's names, insurance, military rank, medical record locator, occupation,
  patient comments, accession number, study id, institution name/address/department, station name,
  device serial number, physicians' and operators' names, request attributes, descriptions and
  comments that are free text (study, series, image, protocol, procedure step), and all
  private tags and overlay/curve groups (60xx).
- Every other Person Name (PN) value anywhere is emptied.
- UIDs: every UI value that is not a DICOM-defined UID (``1.2.840.10008.*``: SOP classes,
  transfer syntaxes, coding schemes) is remapped to ``2.25.<decimal of a keyed 128-bit hash>``
  (valid UID syntax, under 64 characters), the same way everywhere, so study/series/instance
  links and references survive. The file meta Media Storage SOP Instance UID follows.
- Dates (DA) and date-times (DT) are shifted back by a per-patient offset of 1..3650 days (keyed),
  so intervals between a patient's studies are kept.
- Kept: patient sex, age, size, weight (Retain Patient Characteristics), modality, body part,
  view, laterality, pixel spacing and every pixel-describing attribute.
- Added: Patient Identity Removed = YES, De-identification Method (text + code sequence:
  DCM 113100 Basic Profile, 113107 Modified Dates, 113108 Patient Characteristics),
  Longitudinal Temporal Information Modified = MODIFIED.

Not covered (documented limits): burned-in text in the pixels (Burned In Annotation = YES is
reported as a flag for a human to check), free text in attributes not listed above, and
structured-report content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

METHOD = "skelex-web PS3.15 Basic Profile subset, keyed pseudonyms"  # LO: at most 64 characters
_DICOM_ROOT = "1.2.840.10008."

# Removed outright (X in the profile; Z attributes emptied then dropped: nothing downstream needs them).
REMOVE = (
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientTelecomInformation",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientInsurancePlanCodeSequence",
    "MilitaryRank",
    "BranchOfService",
    "MedicalRecordLocator",
    "Occupation",
    "PatientComments",
    "AdditionalPatientHistory",
    "CountryOfResidence",
    "RegionOfResidence",
    "EthnicGroup",
    "PatientReligiousPreference",
    "ResponsiblePerson",
    "ResponsibleOrganization",
    "IssuerOfPatientID",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "InstitutionCodeSequence",
    "StationName",
    "DeviceSerialNumber",
    "ReferringPhysicianName",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "ReferringPhysicianIdentificationSequence",
    "PhysiciansOfRecord",
    "PhysiciansOfRecordIdentificationSequence",
    "PerformingPhysicianName",
    "PerformingPhysicianIdentificationSequence",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansReadingStudyIdentificationSequence",
    "OperatorsName",
    "OperatorIdentificationSequence",
    "RequestingPhysician",
    "RequestingService",
    "ScheduledPerformingPhysicianName",
    "RequestAttributesSequence",
    "StudyDescription",
    "SeriesDescription",
    "ImageComments",
    "ProtocolName",
    "PerformedProcedureStepID",
    "PerformedProcedureStepDescription",
    "RequestedProcedureDescription",
    "DerivationDescription",
    "AdmittingDiagnosesDescription",
    "ReasonForStudy",
    "RequestedProcedureID",
    "ScheduledProcedureStepID",
    "FillerOrderNumberImagingServiceRequest",
    "PlacerOrderNumberImagingServiceRequest",
    "TextComments",
    "InstanceCreatorUID",
    "ContentCreatorName",
)
# Replaced by the pseudonym.
PSEUDONYMISED = ("PatientID", "PatientName")


@dataclass
class DeidResult:
    """What de-identification did: the pseudonym, the UID map and the date offset used."""

    patient_pseudo_id: str
    date_offset_days: int
    burned_in_annotation: bool
    uid_map: dict[str, str] = field(default_factory=dict)


def _key_bytes(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


def pseudonym(key: str | bytes, patient_id: str) -> str:
    """The keyed pseudonym of a patient id: ``P`` + 20 hex digits (80 bits), stable per key."""
    digest = hmac.new(_key_bytes(key), b"patient:" + patient_id.encode(), hashlib.sha256).hexdigest()
    return "P" + digest[:20].upper()


def remap_uid(key: str | bytes, uid: str) -> str:
    """``2.25.<int>`` from a keyed 128-bit hash of ``uid``: valid UID syntax, at most 44 characters."""
    digest = hmac.new(_key_bytes(key), b"uid:" + uid.strip().encode(), hashlib.sha256).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def date_offset_days(key: str | bytes, patient_id: str) -> int:
    """Days (1..3650) every date of this patient moves back: keyed, so not guessable from the output."""
    digest = hmac.new(_key_bytes(key), b"dates:" + patient_id.encode(), hashlib.sha256).digest()
    return 1 + int.from_bytes(digest[:4], "big") % 3650


def shift_date(value: str, days: int) -> str:
    """A DA value (``YYYYMMDD``) moved back ``days`` days; unparseable values become empty."""
    text = value.strip()
    try:
        day = dt.datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        return ""
    return (day - dt.timedelta(days=days)).strftime("%Y%m%d")


def _shift_datetime(value: str, days: int) -> str:
    """A DT value with its date part shifted; the time and zone parts are kept."""
    text = value.strip()
    if len(text) < 8:
        return ""
    shifted = shift_date(text[:8], days)
    return shifted + text[8:] if shifted else ""


def deidentify(ds: Dataset, key: str | bytes) -> DeidResult:
    """De-identifies ``ds`` in place (see the module docstring for exactly what changes).

    Args:
        ds: a data set read with pydicom (its ``file_meta`` is updated too).
        key: the project's secret key: pseudonyms, UIDs and date offsets derive from it.
    """
    patient_id = str(ds.get("PatientID") or "")
    # Patients without an id still get a stable pseudonym per study, so they are not pooled.
    basis = patient_id or "study:" + str(ds.get("StudyInstanceUID") or "")
    pseudo = pseudonym(key, basis)
    offset = date_offset_days(key, basis)
    burned_in = str(ds.get("BurnedInAnnotation") or "").strip().upper() == "YES"
    uid_map: dict[str, str] = {}
    ds.remove_private_tags()
    _scrub(ds, key, offset, uid_map)
    ds.PatientID = pseudo
    ds.PatientName = pseudo
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    ds.DeidentificationMethodCodeSequence = Sequence([_code(c, m) for c, m in _METHOD_CODES])
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta:
        old = str(meta.MediaStorageSOPInstanceUID)
        meta.MediaStorageSOPInstanceUID = uid_map.get(old) or remap_uid(key, old)
    return DeidResult(pseudo, offset, burned_in, uid_map)


_METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
)


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def _scrub(ds: Dataset, key: str | bytes, offset: int, uid_map: dict[str, str]) -> None:
    for keyword in REMOVE:
        if keyword in ds:
            delattr(ds, keyword)
    for tag in [t for t in ds.keys() if 0x6000 <= t.group <= 0x60FF or 0x5000 <= t.group <= 0x50FF]:
        del ds[tag]
    for elem in list(ds):
        _scrub_element(elem, key, offset, uid_map)


def _scrub_element(elem: DataElement, key: str | bytes, offset: int, uid_map: dict[str, str]) -> None:
    vr = elem.VR
    if vr == "SQ":
        for item in elem.value or []:
            item.remove_private_tags()
            _scrub(item, key, offset, uid_map)
        return
    if elem.value is None or elem.value == "":
        return
    if vr == "PN" and elem.keyword not in PSEUDONYMISED:
        elem.value = ""
    elif vr == "UI":
        elem.value = _map_values(elem.value, lambda u: _remap(key, u, uid_map))
    elif vr == "DA":
        elem.value = _map_values(elem.value, lambda d: shift_date(d, offset))
    elif vr == "DT":
        elem.value = _map_values(elem.value, lambda d: _shift_datetime(d, offset))


def _map_values(value: object, fn: object) -> object:
    convert = fn  # typed loosely: pydicom values are str or MultiValue of str
    if isinstance(value, str | bytes):
        return convert(value.decode() if isinstance(value, bytes) else value)  # type: ignore[operator]
    return [convert(str(v)) for v in value]  # type: ignore[attr-defined, operator]


def _remap(key: str | bytes, uid: str, uid_map: dict[str, str]) -> str:
    uid = uid.strip().rstrip("\x00")
    if not uid or uid.startswith(_DICOM_ROOT):
        return uid
    if uid not in uid_map:
        uid_map[uid] = remap_uid(key, uid)
    return uid_map[uid]
