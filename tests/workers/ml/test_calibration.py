"""Temperature scaling makes over- and under-confident heads honest without changing rankings."""

from __future__ import annotations

import numpy as np
import pytest

from workers.ml.calibration import fit_temperature, nll, probabilities
from workers.ml.metrics_cls import auroc, ece


def miscalibrated(kind: str, scale: float, n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose true calibration needs temperature ``scale`` (>1: the head is overconfident)."""
    rng = np.random.default_rng(seed)
    if kind == "binary":
        true_logit = rng.normal(0.0, 1.5, size=n)
        y = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(int)
        return (true_logit * scale)[:, None], y
    true = rng.normal(0.0, 1.5, size=(n, 4))
    p = np.exp(true) / np.exp(true).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])
    return true * scale, y


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
@pytest.mark.parametrize("scale", [4.0, 0.3])
def test_temperature_lowers_ece(kind: str, scale: float) -> None:
    logits, y = miscalibrated(kind, scale)
    before = ece(y, probabilities(kind, logits))
    t = fit_temperature(kind, logits, y)
    after = ece(y, probabilities(kind, logits, t))
    assert t == pytest.approx(scale, rel=0.2)
    assert after < before / 2
    assert after < 0.03
    assert nll(kind, logits, y, t) < nll(kind, logits, y)


def test_temperature_keeps_ranking() -> None:
    logits, y = miscalibrated("binary", 3.0)
    t = fit_temperature("binary", logits, y)
    assert auroc(y, probabilities("binary", logits, t)[:, 1]) == pytest.approx(auroc(y, logits[:, 0]))


def test_single_class_is_left_alone() -> None:
    assert fit_temperature("binary", np.array([[2.0], [3.0]]), np.array([1, 1])) == 1.0


def test_multilabel_skips_unknowns() -> None:
    logits, y = miscalibrated("binary", 3.0)
    two = np.concatenate([logits, logits], axis=1)
    targets = np.stack([y, y], axis=1).astype(float)
    targets[::2, 1] = np.nan
    t = fit_temperature("multilabel", two, targets)
    assert t == pytest.approx(fit_temperature("binary", logits, y), rel=0.05)
