"""Geometry of the embedding space for sampling: k-center greedy core-sets, k-means and medoids.

Everything runs in float32 with distances computed in chunks (||a||^2 + ||b||^2 - 2 a.b), so a
pool of 100,000 x 384 embeddings needs a few hundred MB, never an N x N matrix.
"""

from __future__ import annotations

import numpy as np

CHUNK = 4096  # rows per distance block: 4096 x 4096 float32 = 64 MB


def _as32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def min_sq_dist(x: np.ndarray, ref: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """For each row of ``x`` [N, D], the squared Euclidean distance to its nearest row of ``ref`` [M, D]."""
    x, ref = _as32(x), _as32(ref)
    out = np.full(len(x), np.inf, dtype=np.float32)
    if len(ref) == 0:
        return out
    xn = np.einsum("ij,ij->i", x, x)
    rn = np.einsum("ij,ij->i", ref, ref)
    for s in range(0, len(x), chunk):
        xs = x[s : s + chunk]
        best = out[s : s + chunk]
        for t in range(0, len(ref), chunk):
            d = xn[s : s + chunk, None] + rn[None, t : t + chunk] - 2.0 * (xs @ ref[t : t + chunk].T)
            np.minimum(best, d.min(axis=1), out=best)
    return np.maximum(out, 0.0)


def kcenter_greedy(
    emb: np.ndarray, labelled: np.ndarray, pool: np.ndarray, budget: int, chunk: int = CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """k-center greedy (Sener & Savarese, 2018): repeatedly take the pool point farthest from every
    labelled or already chosen point.

    Args:
        emb: [N, D] embeddings (any float dtype).
        labelled: indices of the labelled points (may be empty).
        pool: indices of candidates.
        budget: how many to choose.
        chunk: rows per distance block.

    Returns:
        (chosen indices into ``emb`` [budget], their distance to the nearest labelled/chosen point at
        the time of choosing [budget]). Without labels the first pick is the pool point nearest the
        pool mean, reported with its distance to that mean.
    """
    budget = int(min(budget, len(pool)))
    xp = _as32(np.asarray(emb)[pool])
    pn = np.einsum("ij,ij->i", xp, xp)
    chosen = np.empty(budget, dtype=np.int64)
    dists = np.empty(budget, dtype=np.float64)
    if budget == 0:
        return chosen, dists
    if len(labelled):
        mind = min_sq_dist(xp, np.asarray(emb)[labelled], chunk)
        start = 0
    else:
        centre = xp.mean(axis=0, keepdims=True)
        d0 = min_sq_dist(xp, centre, chunk)
        first = int(np.argmin(d0))
        chosen[0], dists[0] = pool[first], float(np.sqrt(d0[first]))
        mind = np.full(len(xp), np.inf, dtype=np.float32)
        _update(mind, xp, pn, first)
        start = 1
    for b in range(start, budget):
        j = int(np.argmax(mind))
        chosen[b], dists[b] = pool[j], float(np.sqrt(max(float(mind[j]), 0.0)))
        _update(mind, xp, pn, j)
    return chosen, dists


def _update(mind: np.ndarray, xp: np.ndarray, pn: np.ndarray, j: int) -> None:
    """Lowers ``mind`` to the squared distance to pool point ``j`` where that is nearer (in place)."""
    d = pn + pn[j] - 2.0 * (xp @ xp[j])
    np.minimum(mind, d, out=mind)
    mind[j] = -1.0  # chosen: never again


def kmeans(
    x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 25, chunk: int = CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding, deterministic for a generator state.

    Args:
        x: [N, D] points.
        k: clusters (capped at N).
        rng: randomness of the seeding.
        iters: Lloyd iterations at most (stops earlier when assignments settle).
        chunk: rows per distance block.

    Returns:
        (labels [N] in [0, k), centroids [k, D]); a cluster may end up empty when points coincide.
    """
    x = _as32(x)
    n = len(x)
    k = int(min(k, n))
    centroids = np.empty((k, x.shape[1]), dtype=np.float32)
    centroids[0] = x[rng.integers(n)]
    d = min_sq_dist(x, centroids[:1], chunk)
    for c in range(1, k):
        total = float(d.sum())
        idx = int(rng.choice(n, p=d / total)) if total > 0 else int(rng.integers(n))
        centroids[c] = x[idx]
        np.minimum(d, min_sq_dist(x, centroids[c : c + 1], chunk), out=d)
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(iters):
        new = assign(x, centroids, chunk)
        if np.array_equal(new, labels):
            break
        labels = new
        for c in range(k):
            members = x[labels == c]
            if len(members):
                centroids[c] = members.mean(axis=0)
    return labels, centroids


def assign(x: np.ndarray, centroids: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """Index of the nearest centroid for each row of ``x``."""
    x, centroids = _as32(x), _as32(centroids)
    cn = np.einsum("ij,ij->i", centroids, centroids)
    out = np.empty(len(x), dtype=np.int64)
    for s in range(0, len(x), chunk):
        xs = x[s : s + chunk]
        out[s : s + chunk] = np.argmin(cn[None, :] - 2.0 * (xs @ centroids.T), axis=1)
    return out


def medoids(x: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """For each cluster, the row of ``x`` nearest its centroid (-1 for an empty cluster)."""
    x = _as32(x)
    out = np.full(len(centroids), -1, dtype=np.int64)
    for c in range(len(centroids)):
        members = np.flatnonzero(labels == c)
        if len(members):
            d = ((x[members] - centroids[c]) ** 2).sum(axis=1)
            out[c] = members[int(np.argmin(d))]
    return out
