"""The pure ingest work runs in worker threads (``ingest_many(threads=N)``): same output as serial."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from workers.imaging.prepare import prepare_file

from .samples import dicom_bytes

FILES = [
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_RLE.dcm",
    "JPGLosslessP14SV1_1s_1f_8b.dcm",
    "SC_rgb_jpeg.dcm",
    "emri_small_jpeg_2k_lossless.dcm",
    "US1_J2KR.dcm",
] * 2


def _digest(name: str) -> list[str]:
    prepared = prepare_file(dicom_bytes(name), name, key=b"k")
    return [f.pixel_sha256 + f.decoded.sop_instance_uid for f in prepared.frames]


def test_threaded_prepare_matches_serial() -> None:
    serial = [_digest(n) for n in FILES]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(_digest, FILES))
    assert threaded == serial
