"""Multi-head training on embeddings: masked loss, determinism, serialisation, CV metrics, suggestions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workers.ml.heads import (
    HeadConfig,
    HeadsModel,
    Schema,
    _read_metadata,
    encode_answers,
    learnable_heads,
    suggestions,
    train_heads,
)
from workers.ml.heads_cv import fit_heads
from workers.ml.metrics_cls import auprc, auroc, balanced_accuracy, ece, head_metrics

SCHEMA = Schema.from_dict(
    {
        "heads": [
            {"name": "fractured", "kind": "binary", "classes": ["no", "yes"]},
            {"name": "bodypart", "kind": "multiclass", "classes": ["hand", "leg", "hip"]},
            {"name": "implants", "kind": "multilabel", "classes": ["plate", "screw"]},
        ]
    }
)


def synthetic(n: int = 300, d: int = 16, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Embeddings whose first dims carry each head's answer."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    fractured = (x[:, 0] + 0.3 * rng.normal(size=n) > 0.5).astype(np.int64)  # imbalanced, ~30% positive
    bodypart = np.argmax(x[:, 1:4], axis=1).astype(np.int64)
    implants = (x[:, 4:6] > 0).astype(np.float64)
    return x, {"fractured": fractured, "bodypart": bodypart, "implants": implants}


def weights(model: HeadsModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.net.state_dict().items()}


def test_unknown_answers_do_not_count() -> None:
    x, t = synthetic()
    unknown = np.zeros(len(x), dtype=bool)
    unknown[::3] = True
    a = {k: v.copy() for k, v in t.items()}
    b = {k: v.copy() for k, v in t.items()}
    a["fractured"][unknown] = 0  # the hidden answer is "no" in one run ...
    b["fractured"][unknown] = 1  # ... and "yes" in the other; both are masked out
    a["implants"][unknown, 0] = 0.0
    b["implants"][unknown, 0] = 1.0
    known = {"fractured": ~unknown, "implants": np.stack([~unknown, np.ones(len(x), bool)], axis=1)}
    ma = train_heads(x, a, SCHEMA, known=known)
    mb = train_heads(x, b, SCHEMA, known=known)
    for k, v in weights(ma).items():
        torch.testing.assert_close(v, weights(mb)[k], rtol=0, atol=0, msg=k)
    # -1 / NaN encoding gives the same model as the explicit mask.
    c = {k: v.copy() for k, v in t.items()}
    c["fractured"][unknown] = -1
    c["implants"][unknown, 0] = np.nan
    mc = train_heads(x, c, SCHEMA)
    for k, v in weights(ma).items():
        torch.testing.assert_close(v, weights(mc)[k], msg=k)


def test_known_answers_do_count() -> None:
    """Guards the test above: flipping a *known* answer does change the model."""
    x, t = synthetic()
    b = {k: v.copy() for k, v in t.items()}
    b["fractured"][::3] = 1 - b["fractured"][::3]
    wa, wb = weights(train_heads(x, t, SCHEMA)), weights(train_heads(x, b, SCHEMA))
    assert not torch.equal(wa["heads.fractured.weight"], wb["heads.fractured.weight"])


@pytest.mark.parametrize("hidden", [0, 8])
def test_deterministic_for_a_seed(hidden: int) -> None:
    x, t = synthetic(n=100, d=8)
    cfg = HeadConfig(hidden=hidden, seed=3, max_iter=10)
    p1 = train_heads(x, t, SCHEMA, cfg).predict_proba(x)
    p2 = train_heads(x, t, SCHEMA, cfg).predict_proba(x)
    for name in p1:
        np.testing.assert_array_equal(p1[name], p2[name])


def test_heads_learn_and_report_cv_metrics() -> None:
    x, t = synthetic(n=400)
    model = fit_heads(x, t, SCHEMA, folds=4)
    assert set(model.metrics) == {"fractured", "bodypart", "implants"}
    for name, m in model.metrics.items():
        assert m["auroc"] > 0.9, (name, m)
        assert 0.0 <= m["ece"] <= 0.2
        assert m["balanced_accuracy"] > 0.7
    assert all(t > 0 for t in model.temperatures.values())
    probs = model.predict_proba(x[:5])
    assert probs["fractured"].shape == (5, 2)
    assert probs["bodypart"].shape == (5, 3)
    np.testing.assert_allclose(probs["bodypart"].sum(axis=1), 1.0)
    assert probs["implants"].shape == (5, 2)


def test_undefined_cv_scores_are_json_null() -> None:
    x, t = synthetic(n=60)
    t["fractured"][:] = 0  # one class only: AUROC is undefined
    model = fit_heads(x, t, SCHEMA, folds=3)
    assert model.metrics["fractured"]["auroc"] is None
    metadata = _read_metadata(model.to_bytes())
    assert "NaN" not in metadata["metrics"]
    assert HeadsModel.from_bytes(model.to_bytes()).metrics["fractured"]["auroc"] is None


def test_class_weighting_balances_a_rare_class() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    y = (x[:, 0] + 0.8 * rng.normal(size=400) > 1.6).astype(np.int64)  # ~8% positive, noisy
    schema = Schema.from_dict({"heads": [{"name": "f", "kind": "binary", "classes": ["no", "yes"]}]})
    plain = train_heads(x, {"f": y}, schema, HeadConfig(class_weighting=False)).predict_proba(x)["f"][:, 1]
    weighted = train_heads(x, {"f": y}, schema).predict_proba(x)["f"][:, 1]
    bal_plain = balanced_accuracy(y, (plain >= 0.5).astype(int), 2)
    bal_weighted = balanced_accuracy(y, (weighted >= 0.5).astype(int), 2)
    assert bal_weighted > bal_plain + 0.05


def test_round_trip_bytes_and_suggestions(tmp_path) -> None:
    x, t = synthetic()
    model = fit_heads(x, t, SCHEMA, folds=3)
    path = tmp_path / "heads.safetensors"
    model.save(path)
    again = HeadsModel.load(path)
    assert again.schema == SCHEMA
    assert again.temperatures == pytest.approx(model.temperatures)
    assert again.metrics.keys() == model.metrics.keys()
    p1, p2 = model.predict_proba(x), again.predict_proba(x)
    for name in p1:
        np.testing.assert_allclose(p1[name], p2[name], rtol=1e-6)
    s = suggestions(SCHEMA, p1)
    assert len(s) == len(x)
    first = s[0]
    assert first["fractured"]["answer"] in ("no", "yes")
    assert set(first["bodypart"]["probabilities"]) == {"hand", "leg", "hip"}
    assert isinstance(first["implants"]["answer"], list)
    best = max(first["bodypart"]["probabilities"].items(), key=lambda kv: kv[1])[0]
    assert first["bodypart"]["answer"] == best


def test_encode_answers_marks_unknowns() -> None:
    t = encode_answers(
        SCHEMA,
        [
            {"fractured": "yes", "bodypart": "hip", "implants": ["screw"]},
            {"fractured": "unknown", "implants": {"plate": True, "screw": None}},
            {},
        ],
    )
    assert t["fractured"].tolist() == [1, -1, -1]
    assert t["bodypart"].tolist() == [2, -1, -1]
    np.testing.assert_array_equal(t["implants"][0], [0.0, 1.0])
    assert t["implants"][1, 0] == 1.0 and np.isnan(t["implants"][1, 1])
    assert np.isnan(t["implants"][2]).all()


def test_schema_rejects_bad_heads() -> None:
    with pytest.raises(ValueError):
        Schema.from_dict({"heads": [{"name": "f", "kind": "binary", "classes": ["a", "b", "c"]}]})
    with pytest.raises(ValueError):
        Schema.from_dict({"heads": [{"name": "f", "kind": "ordinal", "classes": ["a", "b"]}]})


def test_metrics_on_known_values() -> None:
    y = np.array([0, 0, 1, 1])
    assert auroc(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert auroc(y, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert np.isnan(auroc(np.array([1, 1]), np.array([0.2, 0.3])))
    assert auprc(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx((1.0 + 2 / 3) / 2)
    assert balanced_accuracy(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0]), 2) == 0.5
    # Always 90% confident and right half the time: ECE 0.4.
    assert ece(np.array([0, 1] * 50), np.full(100, 0.1)) == pytest.approx(0.4)
    m = head_metrics("multiclass", np.array([0, 1, 2]), np.eye(3))
    assert m["auroc"] == 1.0 and m["balanced_accuracy"] == 1.0


def test_learnable_heads_need_two_different_known_answers() -> None:
    nan = np.nan
    targets = {
        "fractured": np.array([1, 1, -1, 1]),  # one class known
        "bodypart": np.array([0, 2, -1, -1]),  # two classes known
        "implants": np.array([[1.0, nan], [0.0, nan], [nan, 1.0], [nan, 1.0]]),  # plate seen both ways
    }
    assert learnable_heads(SCHEMA, targets) == ["bodypart", "implants"]
    targets["implants"] = np.array([[1.0, 1.0], [1.0, nan], [nan, 1.0], [nan, nan]])  # always present
    targets["fractured"] = np.array([-1, -1, -1, -1])
    assert learnable_heads(SCHEMA, targets) == ["bodypart"]
    probs = {"fractured": np.full((1, 2), 0.5), "bodypart": np.full((1, 3), 1 / 3), "implants": np.full((1, 2), 0.5)}
    assert list(suggestions(SCHEMA, probs, heads=["bodypart"])[0]) == ["bodypart"]
