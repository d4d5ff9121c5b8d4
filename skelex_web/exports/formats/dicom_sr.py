"""DICOM SR (TID 1500 Measurement Report, via highdicom) for images that came in as DICOM.

One SR per source image, referencing it (its de-identified SOP Instance UID) as evidence:
- each box is a Planar ROI group (TID 1410) whose region is a closed POLYLINE SCOORD (5 points,
  x0,y0 -> x1,y0 -> x1,y1 -> x0,y1 -> x0,y0) on the source image, finding type = the box label;
  its tracking identifier names the annotation and author, qualitative evaluations carry the
  origin and review state, and boxes from a model suggestion carry the model as algorithm id;
- head answers are qualitative evaluations of one image-level group (TID 1501).
Labels, heads and origins are coded in the private scheme ``99SKELEX`` (value = the name).

UIDs are derived from the version's content hash and the image, and every date/time is the
version's creation time, so re-exporting a version gives identical SR bytes.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from .records import Header, Record, Records, head_value_text

SCHEME = "99SKELEX"
# SNOMED CT "Radiographic imaging procedure".
PROCEDURE = hd.sr.CodedConcept("363680008", "SCT", "Radiographic imaging procedure")
ORIGIN = hd.sr.CodedConcept("origin", SCHEME, "Annotation origin")
REVIEWED = hd.sr.CodedConcept("reviewed", SCHEME, "Reviewed by an expert")
MANUFACTURER = "skelex-web"


def _code(value: str, meaning: str | None = None) -> hd.sr.CodedConcept:
    # Code values are at most 16 characters; longer names keep their full text in the meaning.
    return hd.sr.CodedConcept(value[:16], SCHEME, meaning or value)


def _uid(header: Header, *parts: object) -> str:
    return str(generate_uid(entropy_srcs=[str(header.get("content_hash", "")), *[str(p) for p in parts]]))


def _person_name(username: str) -> str:
    # A user name as the family-name component; the trailing caret marks it as one deliberately.
    return username.replace("^", " ").replace("\\", " ")[:60] + "^"


def _when(header: Header) -> datetime:
    raw = str(header.get("created_at") or "2000-01-01T00:00:00+00:00")
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _polyline(bbox: list[float]) -> np.ndarray:
    x0, y0, x1, y1 = (float(v) for v in bbox)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]], dtype=np.float32)


def _box_group(header: Header, record: Record, box: dict[str, Any], source: Dataset) -> Any:
    frame = [int(record.get("frame", 0)) + 1] if int(getattr(source, "NumberOfFrames", 1) or 1) > 1 else None
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=_polyline(box["bbox"]),
        source_image=hd.sr.SourceImageForRegion.from_source_image(source, referenced_frame_numbers=frame),
    )
    author = box.get("author") or "unknown"
    tracking = hd.sr.TrackingIdentifier(
        uid=_uid(header, "box", box["annotation"]),
        identifier=f"annotation {box['annotation']} by {author}"[:64],
    )
    evaluations = [
        hd.sr.QualitativeEvaluation(ORIGIN, _code(box["origin"])),
        hd.sr.QualitativeEvaluation(REVIEWED, codes.SCT.Yes if box.get("reviewed") else codes.SCT.No),
    ]
    algorithm = None
    if box.get("model_version"):
        algorithm = hd.sr.AlgorithmIdentification(
            name=str(box["model_version"])[:64], family=codes.cid7162.ArtificialIntelligence, version="1"
        )
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking,
        referenced_region=region,
        finding_type=_code(box["label"]),
        algorithm_id=algorithm,
        qualitative_evaluations=evaluations,
    )


def _heads_group(header: Header, record: Record, source: Dataset) -> Any | None:
    evaluations = []
    for name in sorted(record.get("heads", {})):
        value = record["heads"][name]["value"]
        for item in value if isinstance(value, list) else [value]:
            evaluations.append(hd.sr.QualitativeEvaluation(_code(name), _code(head_value_text(item))))
    if not evaluations:
        return None
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=_uid(header, "heads", record["image"]), identifier=f"image {record['image']} head answers"
        ),
        qualitative_evaluations=evaluations,
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
    )


# Type 2 patient/study attributes the SR copies from its evidence. De-identification may have
# removed them (a PS3.15 profile empties or drops them); present-but-empty is what they must be.
TYPE2_FROM_EVIDENCE = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def _complete(source: Dataset) -> Dataset:
    ds = copy.deepcopy(source)
    for keyword in TYPE2_FROM_EVIDENCE:
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def build_sr(header: Header, record: Record, source: Dataset) -> Dataset:
    """The SR dataset for one image record, whose source DICOM header is ``source``."""
    source = _complete(source)
    authors = [b.get("author") for b in record["boxes"] if b.get("author")]
    authors += [h.get("author") for h in record.get("heads", {}).values() if h.get("author")]
    observer = max(sorted(set(authors)), key=authors.count) if authors else None
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=_uid(header, "device"), name=MANUFACTURER
        ),
    )
    person = None
    if observer:
        person = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=_person_name(str(observer))),
        )
    context = hd.sr.ObservationContext(observer_person_context=person, observer_device_context=device)
    groups: list[Any] = [_box_group(header, record, box, source) for box in record["boxes"]]
    heads = _heads_group(header, record, source)
    if heads is not None:
        groups.append(heads)
    report = hd.sr.MeasurementReport(
        observation_context=context, procedure_reported=PROCEDURE, imaging_measurements=groups or None
    )
    when = _when(header)
    sr = hd.sr.ComprehensiveSR(
        evidence=[source],
        content=report,
        series_instance_uid=_uid(header, "series", source.StudyInstanceUID),
        series_number=900,
        sop_instance_uid=_uid(header, "sr", record["image"]),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,
        series_description=f"skelex-web labels, dataset version {header.get('version', '')}",
    )
    # highdicom stamps "now"; the version's creation time keeps re-exports byte-identical.
    date, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    for keyword, value in (
        ("ContentDate", date),
        ("ContentTime", time),
        ("InstanceCreationDate", date),
        ("InstanceCreationTime", time),
        ("SeriesDate", date),
        ("SeriesTime", time),
    ):
        if keyword in sr:
            setattr(sr, keyword, value)
    for equipment in sr.get("ContributingEquipmentSequence", []):
        equipment.ContributionDateTime = when.strftime("%Y%m%d%H%M%S")
    return sr


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def files(
    header: Header, records: Records, load_source: Callable[[Record], Dataset | None]
) -> Iterator[tuple[str, Iterable[str | bytes]]]:
    """One ``sr/<split>/<stem>.dcm`` per DICOM record; ``load_source`` returns its header (or None)."""
    for record in records():
        if record.get("file_format") != "dicom":
            continue
        source = load_source(record)
        if source is None:
            continue
        yield f"sr/{record['split']}/{record['stem']}.dcm", [to_bytes(build_sr(header, record, source))]
