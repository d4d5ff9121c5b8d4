"""Embeddings: unit-norm float16 rows, batch-size independent; mean+max (default), mean and CLS pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.workers.ml.engine_fixtures import tiny_model
from workers.ml.embed import embed, embedding_dim


def test_embeddings_are_unit_float16_and_batch_independent() -> None:
    model = tiny_model()
    x = torch.randn(5, 3, 32, 32)
    e = embed(model, x, batch_size=2)
    assert e.shape == (5, 64) == (5, embedding_dim(model)) and e.dtype == np.float16  # mean + max of 32-d tokens
    np.testing.assert_allclose(np.linalg.norm(e.astype(np.float32), axis=1), 1.0, atol=2e-3)
    np.testing.assert_allclose(e, embed(model, x, batch_size=5), atol=1e-3)
    assert np.isfinite(e).all()
    assert embed(model, x[:0]).shape == (0, 64)


def test_default_pooling_is_the_normalised_mean_next_to_the_normalised_max() -> None:
    model = tiny_model()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        patches = model.forward_features(x)[:, 1:]
    unit = torch.nn.functional.normalize
    mean, top = unit(patches.mean(1), dim=-1).numpy(), unit(patches.amax(1), dim=-1).numpy()
    e = embed(model, x).astype(np.float32)
    # Each half is its pooled vector scaled by 1/sqrt(2): both count equally in every distance.
    np.testing.assert_allclose(e[:, :32] * np.sqrt(2), mean, atol=3e-3)
    np.testing.assert_allclose(e[:, 32:] * np.sqrt(2), top, atol=3e-3)


def test_mean_pooling_is_the_mean_of_patch_tokens_and_cls_differs() -> None:
    model = tiny_model()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tokens = model.forward_features(x)
    expected = torch.nn.functional.normalize(tokens[:, 1:].mean(1), dim=-1).numpy()
    mean = embed(model, x, pooling="mean")
    assert mean.shape == (2, 32)
    np.testing.assert_allclose(mean.astype(np.float32), expected, atol=2e-3)
    cls = embed(model, x, pooling="cls")
    assert not np.allclose(cls, mean, atol=1e-2)
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        embed(model, x, pooling="max")
