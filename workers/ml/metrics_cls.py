"""Classification metrics for the label heads, in numpy only (no scikit-learn at run time).

Every metric takes the labels known for one head and the head's probabilities, so the same code
scores cross-validation folds, the active-learning simulation and the platform's model versions.

Conventions:
    binary:      y: [N] in {0, 1};        p: [N] probability of the positive class (or [N, 2])
    multiclass:  y: [N] in {0..C-1};      p: [N, C] rows summing to 1; scores are one-vs-rest macro
    multilabel:  y: [N, C] in {0, 1};     p: [N, C] independent probabilities; scores are macro over labels

A score that is undefined for the data (AUROC with a single class present) is ``nan``; macro
averages skip undefined classes and are ``nan`` only when every class is undefined.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auroc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count one half).

    Args:
        y: [N] binary labels.
        score: [N] higher = more likely positive.

    Returns:
        AUROC in [0, 1], ``nan`` if only one class is present.
    """
    y = np.asarray(y).astype(bool).ravel()
    score = np.asarray(score, dtype=np.float64).ravel()
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)  # average ranks for ties
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def auprc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision (step interpolation).

    Args:
        y: [N] binary labels.
        score: [N] higher = more likely positive.

    Returns:
        Average precision in [0, 1], ``nan`` without positives.
    """
    y = np.asarray(y).astype(bool).ravel()
    score = np.asarray(score, dtype=np.float64).ravel()
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], y[order]
    tp = np.cumsum(t)
    # Evaluate only at the last element of each run of tied scores (a threshold includes all ties).
    last = np.r_[np.diff(s) != 0, True]
    tp_at, k_at = tp[last], (np.arange(1, s.size + 1))[last]
    precision = tp_at / k_at
    recall = tp_at / n_pos
    d_recall = np.diff(np.r_[0.0, recall])
    return float(np.sum(d_recall * precision))


def balanced_accuracy(y: np.ndarray, pred: np.ndarray, n_classes: int | None = None) -> float:
    """Mean per-class recall over the classes present in ``y``.

    Args:
        y: [N] integer labels.
        pred: [N] integer predictions.
        n_classes: number of classes (defaults to what appears).

    Returns:
        Balanced accuracy, ``nan`` for empty input.
    """
    y = np.asarray(y).astype(int).ravel()
    pred = np.asarray(pred).astype(int).ravel()
    if y.size == 0:
        return float("nan")
    n = n_classes or int(max(y.max(), pred.max()) + 1)
    recalls = [float(np.mean(pred[y == c] == c)) for c in range(n) if np.any(y == c)]
    return float(np.mean(recalls))


def ece(y: np.ndarray, prob: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of the top-label confidence, equal-width bins.

    Args:
        y: [N] integer labels.
        prob: [N, C] class probabilities, or [N] positive-class probabilities of a binary head.
        n_bins: number of confidence bins over [0, 1].

    Returns:
        Sum over bins of (bin share) * |accuracy - mean confidence|.
    """
    y = np.asarray(y).astype(int).ravel()
    p = _two_columns(prob)
    if y.size == 0:
        return float("nan")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        sel = bins == b
        total += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def _two_columns(prob: np.ndarray) -> np.ndarray:
    p = np.asarray(prob, dtype=np.float64)
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    return p


def _nanmean(values: list[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(arr)) if np.any(~np.isnan(arr)) else float("nan")


def head_metrics(kind: str, y: np.ndarray, prob: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    """AUROC, AUPRC, balanced accuracy and ECE of one head on its known labels.

    Args:
        kind: ``binary``, ``multiclass`` or ``multilabel``.
        y: labels, see the module docstring (unknowns already removed; multilabel may hold NaN).
        prob: probabilities, [N, C] (binary may be [N] or [N, 2]).
        n_bins: ECE bins.

    Returns:
        ``{"auroc", "auprc", "balanced_accuracy", "ece", "n"}``; multiclass and multilabel are macro
        averages (one-vs-rest for multiclass).
    """
    p = np.asarray(prob, dtype=np.float64)
    if kind == "binary":
        pos = p if p.ndim == 1 else p[:, -1]
        y = np.asarray(y).astype(int).ravel()
        return {
            "auroc": auroc(y, pos),
            "auprc": auprc(y, pos),
            "balanced_accuracy": balanced_accuracy(y, (pos >= 0.5).astype(int), 2),
            "ece": ece(y, pos, n_bins),
            "n": int(y.size),
        }
    if kind == "multiclass":
        y = np.asarray(y).astype(int).ravel()
        c = p.shape[1]
        onehot = np.eye(c, dtype=int)[y]
        return {
            "auroc": _nanmean([auroc(onehot[:, k], p[:, k]) for k in range(c)]),
            "auprc": _nanmean([auprc(onehot[:, k], p[:, k]) for k in range(c)]),
            "balanced_accuracy": balanced_accuracy(y, p.argmax(axis=1), c),
            "ece": ece(y, p, n_bins),
            "n": int(y.size),
        }
    if kind == "multilabel":
        y = np.asarray(y, dtype=np.float64)
        per = []
        for k in range(p.shape[1]):
            known = ~np.isnan(y[:, k])
            per.append(head_metrics("binary", y[known, k], p[known, k], n_bins) if known.any() else None)
        keys = ("auroc", "auprc", "balanced_accuracy", "ece")
        out: dict[str, float] = {key: _nanmean([m[key] if m else float("nan") for m in per]) for key in keys}
        out["n"] = int(np.any(~np.isnan(y), axis=1).sum())
        return out
    raise ValueError(f"unknown head kind {kind!r}")
