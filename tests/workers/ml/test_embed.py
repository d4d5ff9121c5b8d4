"""Embeddings: unit-norm float16 rows, batch-size independent; mean+max (default), mean and CLS pooling;
several scales (``embed_images``), padding left out of the pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.workers.ml.engine_fixtures import tiny_model
from workers.ml.embed import embed, embed_images, embedding_dim
from workers.ml.preprocess import prepare


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


def _films(seed: int = 0) -> list[np.ndarray]:
    """Grey films of several shapes (portrait, landscape, square, tiny), as the platform decodes them."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 4096, size=shape).astype(np.uint16) for shape in [(90, 50), (40, 70), (64, 64), (9, 30)]]


def test_one_scale_of_a_square_film_is_the_single_pass_embedding() -> None:
    model = tiny_model()
    film = _films()[2]
    c = model.config
    single = embed(model, prepare(film, size=c.img_size, mean=c.mean, std=c.std).tensor[None])
    np.testing.assert_allclose(embed_images(model, [film], scales=(1,)), single, atol=1e-3)


def test_scales_add_what_the_tiles_see_and_each_film_is_embedded_the_same_in_any_batch() -> None:
    model = tiny_model()
    films = _films()
    e = embed_images(model, films, batch_size=5)  # 14 tiles per film: flushes between films
    assert e.shape == (4, embedding_dim(model)) and e.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(e.astype(np.float32), axis=1), 1.0, atol=2e-3)
    for k, film in enumerate(films):
        np.testing.assert_allclose(e[k], embed_images(model, [film])[0], atol=1e-3)
    one = embed_images(model, films, scales=(1,))
    assert not np.allclose(one, e, atol=1e-2)  # the tiled scales change the vector
    assert embed_images(model, []).shape == (0, embedding_dim(model))


def test_padding_is_left_out_of_the_pooling() -> None:
    model = tiny_model()
    film = _films()[0]  # portrait 90 x 50: padded left and right at every scale
    c = model.config
    prep = prepare(film, size=c.img_size, mean=c.mean, std=c.std)
    grid, p = c.img_size // c.patch_size, c.patch_size
    content = prep.valid.reshape(grid, p, grid, p).mean(axis=(1, 3)).reshape(-1) > 0.5
    assert 0 < content.sum() < content.size
    with torch.no_grad():
        patches = model.forward_features(prep.tensor[None])[0, 1:][torch.from_numpy(content)]
    unit = torch.nn.functional.normalize
    expected = unit(torch.cat([unit(patches.mean(0), dim=-1), unit(patches.amax(0), dim=-1)]), dim=-1).numpy()
    np.testing.assert_allclose(embed_images(model, [film], scales=(1,))[0], expected, atol=2e-3)


@pytest.mark.parametrize(
    ("scales", "message"),
    [((4,), "1, 2 or 3; got 4"), ((), "at least one"), ((1, 1), "repeat a value"), ((1.5,), "got 1.5")],
)
def test_bad_scales_are_refused_by_name(scales: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        embed_images(tiny_model(), _films()[:1], scales=scales)
