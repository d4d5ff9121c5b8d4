"""Temperature scaling (Guo et al., 2017): one scalar per head that makes probabilities honest.

A head trained with class weights and on few labels is usually over- or under-confident; dividing
its logits by a temperature T fitted on held-out predictions fixes the confidence without changing
any ranking (so AUROC is untouched) and costs one parameter, so a few dozen labels suffice.

Logit layout, shared with ``heads.py``:
    binary:      [N, 1] one logit, positive class = classes[1]
    multiclass:  [N, C] softmax logits
    multilabel:  [N, C] one independent logit per label (NaN targets = unknown, skipped)
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

_LOG_T_BOUNDS = (-3.0, 3.0)  # T in [0.05, 20]: wide enough for any sane head, keeps the search finite


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def probabilities(kind: str, logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Class probabilities of a head, always [N, C] with C = number of classes.

    Args:
        kind: ``binary``, ``multiclass`` or ``multilabel``.
        logits: head logits, see the module docstring.
        temperature: divides the logits.

    Returns:
        binary: [N, 2] (negative, positive); multiclass: [N, C] rows sum to 1; multilabel: [N, C]
        independent probabilities.
    """
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    if kind == "binary":
        p = _sigmoid(z.reshape(-1))
        return np.stack([1.0 - p, p], axis=1)
    if kind == "multiclass":
        return _softmax(z)
    if kind == "multilabel":
        return _sigmoid(z)
    raise ValueError(f"unknown head kind {kind!r}")


def nll(kind: str, logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of known targets (binary/multiclass ints, multilabel 0/1/NaN)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    if kind == "multiclass":
        y = np.asarray(y).astype(int).ravel()
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(y.size), y].mean())
    t = np.asarray(y, dtype=np.float64).reshape(z.shape)
    known = ~np.isnan(t)
    z, t = z[known], t[known]
    # log(1 + exp(-|z|)) form: no overflow.
    loss = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    return float(loss.mean()) if loss.size else 0.0


def fit_temperature(kind: str, logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising held-out NLL (1.0 when there is nothing to fit on).

    Args:
        kind: head kind.
        logits: held-out logits of the head (predicted by models that never saw these samples).
        y: their known targets.

    Returns:
        T > 0; probabilities are ``probabilities(kind, logits, T)``.
    """
    y_arr = np.asarray(y)
    if y_arr.size == 0 or (kind != "multilabel" and np.unique(y_arr).size < 2):
        return 1.0  # one class only: any T can push NLL to zero, which would be a lie
    res = minimize_scalar(
        lambda log_t: nll(kind, logits, y_arr, float(np.exp(log_t))),
        bounds=_LOG_T_BOUNDS,
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(res.x))
