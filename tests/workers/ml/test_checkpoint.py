"""Our checkpoint format: round trip, storage dtypes, and clear errors on bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.workers.ml.engine_fixtures import tiny_checkpoint, tiny_model
from workers.ml.checkpoint import CheckpointError, load_model, read_sidecar, save_checkpoint


def test_round_trip_gives_the_same_outputs(tmp_path: Path) -> None:
    model = tiny_model()
    path = save_checkpoint(model, tmp_path / "m.safetensors", metadata={"run": "abc"})
    loaded = load_model(path, device="cpu")
    assert not loaded.training
    assert loaded.config == model.config
    assert read_sidecar(path)["metadata"] == {"run": "abc"}
    x, noise = torch.randn(2, 3, 32, 32), torch.rand(2, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, noise=noise)[1], model(x, noise=noise)[1], rtol=0, atol=0)


def test_float16_storage_is_smaller_and_close(tmp_path: Path) -> None:
    model = tiny_model()
    full = save_checkpoint(model, tmp_path / "a.safetensors")
    half = save_checkpoint(model, tmp_path / "b.safetensors", dtype="float16")
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_model(half, device="cpu")
    assert loaded.cls_token.dtype == torch.float32
    torch.testing.assert_close(loaded.cls_token, model.cls_token, rtol=1e-3, atol=1e-4)


def test_missing_corrupt_and_mismatched_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "none.safetensors")
    path = tiny_checkpoint(tmp_path)
    path.write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(path)
    path = tiny_checkpoint(tmp_path)
    side = json.loads(path.with_suffix(".json").read_text())
    side["config"]["depth"] = 3
    path.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(CheckpointError, match=r"missing keys .*blocks\.2\."):
        load_model(path)
    side["config"]["depth"] = 2
    side["config"]["embed_dim"] = 64
    path.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_model(path)
    path.with_suffix(".json").write_text("{")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(path)
    with pytest.raises(CheckpointError, match=r"\.safetensors"):
        save_checkpoint(tiny_model(), tmp_path / "x.pt")


def test_a_bare_config_sidecar_from_pretraining_runs_loads(tmp_path: Path) -> None:
    model = tiny_model()
    path = save_checkpoint(model, tmp_path / "run.safetensors")
    path.with_suffix(".json").write_text(json.dumps({**json.loads(model.config.to_json()), "meta": {"epoch": 3}}))
    assert read_sidecar(path)["metadata"] == {"epoch": 3}
    assert load_model(path, device="cpu").config == model.config
