"""``python -m workers.ml errormap`` end to end on a real DICOM (RG3, CR) and a FracAtlas JPEG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.paths import FRACATLAS
from tests.workers.ml.engine_fixtures import tiny_checkpoint
from workers.ml.__main__ import main

pydicom_data = pytest.importorskip("pydicom.data")


def _rg3() -> Path:
    return Path(pydicom_data.get_testdata_file("RG3_UNCR.dcm"))


def _fracatlas_jpeg() -> Path:
    folder = FRACATLAS / "images" / "Fractured"
    if not folder.is_dir():
        pytest.skip(f"FracAtlas not found at {folder}")
    return sorted(folder.glob("*.jpg"))[0]


def test_round_trip_on_dicom_and_jpeg(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path)
    out = tmp_path / "maps"
    dicom, jpeg = _rg3(), _fracatlas_jpeg()
    args = ["errormap", "--checkpoint", str(ckpt), "--out", str(out), "--tiles", "2", str(dicom), str(jpeg)]
    assert main(args) == 0
    from workers.imaging import load_image

    for path in (dicom, jpeg):
        pixels = load_image(path).pixels
        emap = np.load(out / f"{path.stem}.npy")
        assert emap.dtype == np.float32 and emap.shape == pixels.shape
        assert np.isfinite(emap).all() and emap.max() > 0
        report = json.loads((out / f"{path.stem}.json").read_text())
        assert set(report) >= {"boxes", "image_score"} and np.isfinite(report["image_score"])
        assert report["tiles"] == 2 and report["mode"] == "complementary"
        for box in report["boxes"]:
            assert 0 <= box["x0"] < box["x1"] <= pixels.shape[1]
            assert 0 <= box["y0"] < box["y1"] <= pixels.shape[0]
    # same seed, same map
    again = tmp_path / "again"
    assert main([*args[:4], str(again), "--tiles", "2", str(jpeg)]) == 0
    np.testing.assert_array_equal(np.load(again / f"{jpeg.stem}.npy"), np.load(out / f"{jpeg.stem}.npy"))


def test_bad_inputs_fail_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tiny_checkpoint(tmp_path)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert main(["errormap", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o"), str(bad)]) == 1
    assert "broken.jpg" in capsys.readouterr().err
    missing = tmp_path / "none.safetensors"
    assert main(["errormap", "--checkpoint", str(missing), "--out", str(tmp_path / "o"), str(bad)]) == 1
    assert "not found" in capsys.readouterr().err
