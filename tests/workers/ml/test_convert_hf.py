"""Converter parity: a random transformers ViTMAEForPreTraining and our converted model agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from workers.ml.__main__ import main  # noqa: E402
from workers.ml.checkpoint import CheckpointError, load_model  # noqa: E402
from workers.ml.convert_hf import convert_folder, convert_state_dict, model_from_hf  # noqa: E402
from workers.ml.posembed import sincos_2d  # noqa: E402

TINY = dict(
    image_size=32,
    patch_size=8,
    num_channels=3,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    decoder_hidden_size=32,
    decoder_num_hidden_layers=2,
    decoder_num_attention_heads=4,
    decoder_intermediate_size=48,
    mask_ratio=0.75,
)


def _hf_model(norm_pix_loss: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    model = transformers.ViTMAEForPreTraining(transformers.ViTMAEConfig(**TINY, norm_pix_loss=norm_pix_loss))
    # Fresh HF models have zero biases and unit LayerNorms; randomise everything so a swapped
    # or dropped tensor cannot hide.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "position_embeddings" not in name and "decoder_pos_embed" not in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def _saved(tmp_path: Path, safe: bool, norm_pix_loss: bool = False) -> tuple[torch.nn.Module, Path]:
    model = _hf_model(norm_pix_loss)
    folder = tmp_path / ("hf_st" if safe else "hf_bin")
    model.save_pretrained(folder, safe_serialization=safe)
    return model, folder


@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "bin"])
@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_reconstruction_mask_and_loss_match_transformers(tmp_path: Path, safe: bool, norm_pix_loss: bool) -> None:
    hf, folder = _saved(tmp_path, safe, norm_pix_loss)
    if not safe:
        assert (folder / "pytorch_model.bin").is_file()
    ours = load_model(convert_folder(folder, tmp_path / "ours.safetensors"), device="cpu")
    assert ours.config.layer_norm_eps == pytest.approx(1e-12)
    assert ours.config.norm_pix_loss is norm_pix_loss
    assert ours.config.decoder_mlp_ratio == pytest.approx(48 / 32)

    torch.manual_seed(1)
    imgs = torch.randn(3, 3, 32, 32)
    noise = torch.rand(3, 16)
    with torch.no_grad():
        ref = hf(pixel_values=imgs, noise=noise)
        loss, pred, mask = ours(imgs, mask_ratio=0.75, noise=noise)
    torch.testing.assert_close(mask, ref.mask, rtol=0, atol=0)
    torch.testing.assert_close(pred, ref.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(loss, ref.loss, rtol=0, atol=1e-5)


def test_unmasked_encoder_matches_transformers_encoder(tmp_path: Path) -> None:
    hf, folder = _saved(tmp_path, safe=True)
    ours = model_from_hf(folder)
    hf.config.mask_ratio = 0.0
    imgs = torch.randn(2, 3, 32, 32)
    # HF shuffles tokens by the noise even at mask_ratio 0; increasing noise keeps grid order.
    noise = torch.arange(16, dtype=torch.float32).repeat(2, 1)
    with torch.no_grad():
        ref = hf.vit(pixel_values=imgs, noise=noise).last_hidden_state
        tokens = ours.forward_features(imgs)
    torch.testing.assert_close(tokens, ref, rtol=0, atol=1e-5)


def test_our_sincos_matches_the_hf_position_embeddings() -> None:
    hf = _hf_model()
    np.testing.assert_allclose(sincos_2d(32, 4), hf.vit.embeddings.position_embeddings[0].detach().numpy(), atol=1e-6)


def _rename_to_v5(key: str) -> str:
    key = key.replace("vit.encoder.layer.", "vit.layers.")
    for old, new in (
        ("attention.attention.query", "attention.q_proj"),
        ("attention.attention.key", "attention.k_proj"),
        ("attention.attention.value", "attention.v_proj"),
        ("attention.output.dense", "attention.o_proj"),
        ("intermediate.dense", "mlp.fc1"),
        ("output.dense", "mlp.fc2"),
    ):
        key = key.replace(old, new)
    return key


def test_transformers_5_key_names_convert_to_the_same_weights() -> None:
    state = _hf_model().state_dict()
    v5 = {_rename_to_v5(k): v for k, v in state.items()}
    assert any(".layers.0.attention.q_proj." in k for k in v5)
    assert any("decoder.decoder_layers.1.mlp.fc2" in k for k in v5)
    old, new = convert_state_dict(state), convert_state_dict(v5)
    assert old.keys() == new.keys()
    for k in old:
        torch.testing.assert_close(old[k], new[k], rtol=0, atol=0)


def test_unknown_keys_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    state = dict(_hf_model().state_dict())
    state["vit.pooler.dense.weight"] = torch.zeros(2, 2)
    with pytest.raises(CheckpointError, match="vit.pooler.dense.weight"):
        convert_state_dict(state)
    with pytest.raises(CheckpointError, match="config.json"):
        convert_folder(tmp_path, tmp_path / "x.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit_mae", **TINY, "hidden_act": "relu"}))
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="unreadable"):
        convert_folder(tmp_path, tmp_path / "x.safetensors")


def test_cli_converts_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, folder = _saved(tmp_path, safe=True)
    out = tmp_path / "out" / "skelex.safetensors"
    assert main(["convert-hf", str(folder), str(out), "--dtype", "float16"]) == 0
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["dtype"] == "float16" and side["config"]["embed_dim"] == 32
    assert main(["convert-hf", str(tmp_path / "nowhere"), str(out)]) == 1
    assert "config.json" in capsys.readouterr().err


def test_export_back_to_transformers_gives_the_same_model() -> None:
    from tests.workers.ml.engine_fixtures import tiny_model
    from workers.ml.convert_hf import hf_config_dict, to_hf_state_dict

    ours = tiny_model(seed=4)
    hf = transformers.ViTMAEForPreTraining(transformers.ViTMAEConfig(**hf_config_dict(ours.config))).eval()
    missing, unexpected = hf.load_state_dict(to_hf_state_dict(ours.state_dict()), strict=False)
    assert not missing and not unexpected
    x, noise = torch.randn(2, 3, 32, 32), torch.rand(2, 16)
    with torch.no_grad():
        torch.testing.assert_close(hf(pixel_values=x, noise=noise).logits, ours(x, noise=noise)[1], rtol=0, atol=1e-5)
