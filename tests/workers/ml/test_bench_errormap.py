"""The benchmark's two sides measure the same quantity: same weights, same masks -> same map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from tests.workers.ml.engine_fixtures import tiny_model  # noqa: E402
from workers.ml.bench_errormap import fidelity, our_maps, reference_maps  # noqa: E402
from workers.ml.convert_hf import hf_config_dict, to_hf_state_dict  # noqa: E402


def test_reference_side_and_ours_agree_for_the_same_masks() -> None:
    ours = tiny_model(seed=5)
    hf = transformers.ViTMAEForPreTraining(transformers.ViTMAEConfig(**hf_config_dict(ours.config), mask_ratio=0.75))
    hf.load_state_dict(to_hf_state_dict(ours.state_dict()), strict=True)
    hf.eval()
    imgs = torch.randn(2, 3, 32, 32)
    # a generator seeded alike yields the same noise rows whether drawn 1 x L at a time or P x L
    gen_a, gen_b = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    rows = torch.cat([torch.rand(1, 16, generator=gen_a) for _ in range(5)])
    assert torch.equal(rows, torch.rand(5, 16, generator=gen_b))
    ref, _ = reference_maps(hf, ours, imgs[:1], passes=5, seed=7)
    mine, _ = our_maps(ours, imgs[:1], "reference", passes=5, seed=7)
    np.testing.assert_allclose(ref, mine, rtol=1e-4, atol=1e-6)
    valid = np.ones((1, 32, 32), bool)
    assert fidelity(mine, ref, valid) == pytest.approx(1.0, abs=1e-6)
