"""Cross-validated metrics and temperature scaling for the label heads: what a model version reports.

``fit_heads`` is what a retrain runs: k-fold cross-validation gives every labelled image a
prediction from a model that never saw it (out-of-fold logits); a temperature per head is fitted on
those held-out logits; the metrics per head (AUROC, AUPRC, balanced accuracy, ECE) are computed on
the calibrated out-of-fold probabilities; the model kept is trained on all labels and carries the
temperatures. ECE is therefore measured on the data the temperature was fitted on: one parameter
per head, so the optimism is small, but it is there.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .calibration import fit_temperature, probabilities
from .heads import HeadConfig, HeadsModel, Schema, known_mask, train_heads
from .metrics_cls import head_metrics


def fold_ids(targets: Mapping[str, np.ndarray], schema: Schema, rows: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold of each labelled row, stratified on the first head's answer (unknown = its own stratum).

    Args:
        targets: encoded targets.
        schema: the heads.
        rows: indices of the labelled rows.
        folds: number of folds.
        seed: shuffling seed.

    Returns:
        [len(rows)] fold index per row.
    """
    rng = np.random.default_rng(seed)
    first = schema.heads[0]
    t = np.asarray(targets.get(first.name, np.full(len(rows), -1)))[rows] if first.name in targets else None
    if t is None or first.kind == "multilabel":
        strata = np.zeros(len(rows), dtype=np.int64)
    else:
        strata = t.astype(np.int64)
    out = np.empty(len(rows), dtype=np.int64)
    offset = 0
    for s in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == s))
        out[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)  # continue the round-robin so small strata don't all land in fold 0
    return out


def fit_heads(
    emb: np.ndarray,
    targets: Mapping[str, np.ndarray],
    schema: Schema,
    config: HeadConfig | None = None,
    folds: int = 5,
    calibrate: bool = True,
) -> HeadsModel:
    """Trains the final model on all labels, with per-head temperatures and k-fold CV metrics.

    Args:
        emb: [N, D] embeddings (rows with no known answer are ignored).
        targets: ``{head: encoded targets}``.
        schema: the heads.
        config: training hyper-parameters.
        folds: k of k-fold; reduced when there are few labelled rows, CV skipped below 2 per fold.
        calibrate: fit temperatures on the out-of-fold logits (else T = 1).

    Returns:
        The model; ``model.metrics[head]`` holds the CV metrics (``n`` = answers scored).
    """
    cfg = config or HeadConfig()
    emb = np.asarray(emb, dtype=np.float32)
    n = len(emb)
    masks = {h.name: known_mask(h, targets[h.name]) for h in schema.heads if h.name in targets}
    labelled = np.zeros(n, dtype=bool)
    for k in masks.values():
        labelled |= k if k.ndim == 1 else k.any(axis=1)
    rows = np.flatnonzero(labelled)
    model = train_heads(emb, targets, schema, cfg)
    k_folds = min(folds, len(rows) // 2)
    if k_folds < 2:
        return model

    fid = fold_ids(targets, schema, rows, k_folds, cfg.seed)
    oof = {h.name: np.zeros((n, h.n_outputs)) for h in schema.heads}
    for f in range(k_folds):
        train_rows, test_rows = rows[fid != f], rows[fid == f]
        sub = {name: np.asarray(t)[train_rows] for name, t in targets.items()}
        fold_model = train_heads(emb[train_rows], sub, schema, cfg)
        for name, z in fold_model.logits(emb[test_rows]).items():
            oof[name][test_rows] = z

    for h in schema.heads:
        if h.name not in masks:
            continue
        k = masks[h.name]
        t = np.asarray(targets[h.name])
        if h.kind == "multilabel":
            sel = k.any(axis=1)
            z, y = oof[h.name][sel], np.where(k[sel], t[sel], np.nan)
        else:
            z, y = oof[h.name][k], t[k]
        if len(y) == 0:
            continue
        temp = fit_temperature(h.kind, z, y) if calibrate else 1.0
        model.temperatures[h.name] = temp
        scores = head_metrics(h.kind, y, probabilities(h.kind, z, temp))
        # Undefined scores (one class only in the labels) become None: valid JSON for the platform.
        model.metrics[h.name] = {k: (v if np.isfinite(v) else None) for k, v in scores.items()}
    return model


def bootstrap_ensemble(
    emb: np.ndarray,
    targets: Mapping[str, np.ndarray],
    schema: Schema,
    members: int = 5,
    config: HeadConfig | None = None,
    seed: int = 0,
) -> list[HeadsModel]:
    """Models trained on bootstrap resamples of the labelled rows, for ensemble-disagreement sampling.

    Args:
        emb: [N, D] embeddings of the labelled rows (or all rows; unlabelled ones never count).
        targets: their encoded targets.
        schema: the heads.
        members: ensemble size.
        config: training hyper-parameters.
        seed: resampling seed.

    Returns:
        ``members`` models.
    """
    cfg = config or HeadConfig()
    rng = np.random.default_rng(seed)
    n = len(emb)
    out = []
    for m in range(members):
        idx = rng.integers(0, n, size=n)
        sub = {name: np.asarray(t)[idx] for name, t in targets.items()}
        member_cfg = HeadConfig(**{**cfg.__dict__, "seed": cfg.seed + m})
        out.append(train_heads(np.asarray(emb)[idx], sub, schema, member_cfg))
    return out
