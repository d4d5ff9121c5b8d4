"""Embeddings: unit-norm float16 rows, batch-size independent, mean vs CLS pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.workers.ml.engine_fixtures import tiny_model
from workers.ml.embed import embed


def test_embeddings_are_unit_float16_and_batch_independent() -> None:
    model = tiny_model()
    x = torch.randn(5, 3, 32, 32)
    e = embed(model, x, batch_size=2)
    assert e.shape == (5, 32) and e.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(e.astype(np.float32), axis=1), 1.0, atol=2e-3)
    np.testing.assert_allclose(e, embed(model, x, batch_size=5), atol=1e-3)
    assert np.isfinite(e).all()


def test_mean_pooling_is_the_mean_of_patch_tokens_and_cls_differs() -> None:
    model = tiny_model()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tokens = model.forward_features(x)
    expected = torch.nn.functional.normalize(tokens[:, 1:].mean(1), dim=-1).numpy()
    np.testing.assert_allclose(embed(model, x).astype(np.float32), expected, atol=2e-3)
    cls = embed(model, x, pooling="cls")
    assert not np.allclose(cls, embed(model, x), atol=1e-2)
    with pytest.raises(ValueError):
        embed(model, x, pooling="max")
