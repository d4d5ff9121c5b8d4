"""Which images to label next: uncertainty, diversity and their hybrid, on plain arrays.

Every strategy returns ``budget`` distinct indices from the unlabelled pool (never a labelled or
excluded one; fewer only when the pool is smaller), each with a short reason the platform shows
next to the image ("uncertain: p(fractured) = 0.52", "diverse: unlike anything labelled").

Multi-head uncertainty: each head's predictive entropy is divided by its maximum (log 2 for a
binary head, log C for a C-class head, per label then averaged for a multilabel head), so every
head scores in [0, 1]. Default combination (``max_rank``): each head's scores become percentile
ranks over the images, and an image scores its best rank: it is worth labelling when it is among
the most uncertain for *any* head. The plain mean of the normalised entropies (``mean``) is
available; in the FracAtlas simulations it let a head that is near chance (uncertain everywhere)
decide the ranking for all heads, and entropy sampling with it did worse than with ``max_rank``
on every head (docs/active-learning.md). Margin and ensemble scores combine the same way.

The default (``hybrid``): take the 10 x B most uncertain pool images, cluster their embeddings
into B groups and take the most uncertain of each (uncertain, but not B near-duplicates), and
replace a small random share (10%) by random pool images, which keeps the labelled set an
unbiased sample of the data and lets the model find what it does not know it does not know.
Cold start (no labels yet): medoids of k-means clusters, i.e. typical images covering the data,
stratified by body part when it is known.

Geometry (k-means, k-center greedy) lives in ``coreset.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from .coreset import kcenter_greedy, kmeans, medoids
from .heads import HeadSpec, Schema

STRATEGIES = ("random", "entropy", "margin", "ensemble", "kcenter", "hybrid", "cold_start")
COMBINES = ("max_rank", "mean")
DEFAULT_COMBINE = "max_rank"
_EPS = 1e-12


@dataclass(frozen=True)
class Pick:
    """One image chosen for labelling."""

    index: int
    reason: str
    score: float = 0.0


# -- uncertainty scores ---------------------------------------------------------------------
def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0)
    return -(p * np.log(p)).sum(axis=axis)


def head_entropy(spec: HeadSpec, probs: np.ndarray) -> np.ndarray:
    """Normalised entropy of one head, [N] in [0, 1] (see the module docstring)."""
    p = np.asarray(probs, dtype=np.float64)
    if spec.kind == "multilabel":
        pl = np.stack([1.0 - p, p], axis=-1)
        return (_entropy(pl) / np.log(2.0)).mean(axis=1)
    return _entropy(p) / np.log(p.shape[1])


def head_margin(spec: HeadSpec, probs: np.ndarray) -> np.ndarray:
    """1 - (top probability - runner-up), [N] in [0, 1]; multilabel: mean over labels of 1 - |2p - 1|."""
    p = np.asarray(probs, dtype=np.float64)
    if spec.kind == "multilabel":
        return (1.0 - np.abs(2.0 * p - 1.0)).mean(axis=1)
    top2 = np.sort(p, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def combine_heads(per_head: np.ndarray, combine: str = DEFAULT_COMBINE) -> tuple[np.ndarray, np.ndarray]:
    """Combines per-head scores [H, N] (each in [0, 1]) into one score per image.

    Args:
        per_head: normalised per-head uncertainty, higher = more uncertain.
        combine: ``max_rank`` (default): each head's scores become percentile ranks over the N
            images, an image scores its best rank (ties broken by the mean score); ``mean``: the mean
            of the normalised scores.

    Returns:
        (combined [N], index of the head that leads each image's score [N]).
    """
    mean = per_head.mean(axis=0)
    if combine == "mean":
        return mean, np.argmax(per_head, axis=0)
    if combine == "max_rank":
        ranks = rankdata(per_head, axis=1) / per_head.shape[1]
        return ranks.max(axis=0) + 1e-6 * mean, np.argmax(ranks, axis=0)
    raise ValueError(f"unknown combine {combine!r}; known: {', '.join(COMBINES)}")


def uncertainty_detail(
    schema: Schema, probs: Mapping[str, np.ndarray], measure: str = "entropy", combine: str = DEFAULT_COMBINE
) -> tuple[np.ndarray, np.ndarray]:
    """Multi-head uncertainty [N] and the leading head of each image [N] (see ``combine_heads``)."""
    fn = head_entropy if measure == "entropy" else head_margin
    return combine_heads(np.stack([fn(h, probs[h.name]) for h in schema.heads]), combine)


def uncertainty(
    schema: Schema, probs: Mapping[str, np.ndarray], measure: str = "entropy", combine: str = DEFAULT_COMBINE
) -> np.ndarray:
    """Multi-head uncertainty [N] (``entropy`` or ``margin``), combined over heads."""
    return uncertainty_detail(schema, probs, measure, combine)[0]


def disagreement_detail(
    schema: Schema, member_probs: Sequence[Mapping[str, np.ndarray]], combine: str = DEFAULT_COMBINE
) -> tuple[np.ndarray, np.ndarray]:
    """Ensemble disagreement [N] and the leading head of each image [N]: per head, entropy of the
    mean minus mean entropy (mutual information), normalised by the head's maximum entropy;
    combined over heads as uncertainty."""
    scores = []
    for h in schema.heads:
        stack = np.stack([np.asarray(m[h.name], dtype=np.float64) for m in member_probs])  # [M, N, C]
        mean_h = head_entropy(h, stack.mean(axis=0))
        each_h = np.mean([head_entropy(h, s) for s in stack], axis=0)
        scores.append(np.clip(mean_h - each_h, 0.0, None))
    return combine_heads(np.stack(scores), combine)


def disagreement(
    schema: Schema, member_probs: Sequence[Mapping[str, np.ndarray]], combine: str = DEFAULT_COMBINE
) -> np.ndarray:
    """Ensemble disagreement [N] (see ``disagreement_detail``)."""
    return disagreement_detail(schema, member_probs, combine)[0]


def mean_probs(schema: Schema, member_probs: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The ensemble's mean probabilities per head."""
    return {h.name: np.mean([m[h.name] for m in member_probs], axis=0) for h in schema.heads}


# Below this normalised entropy the model is nearly sure: "uncertain" would mislead (a binary
# head is under it outside p = 0.03-0.97).
NEARLY_SURE = 0.2
# Above this normalised entropy the model is torn (a binary head between about 0.22 and 0.78):
# "uncertain" reads right to a radiologist; between the two, the image is ranked for being less
# sure than the rest, which its wording says instead (p = 0.06 is not "uncertain" to a reader).
TORN = 0.75


def _p(x: float) -> str:
    """A probability as shown to people: never "1.00" or "0.00", which read as certainty."""
    if x > 0.995:
        return "> 0.99"
    if x < 0.005:
        return "< 0.01"
    return f"{x:.2f}"


def _is(x: float) -> str:
    """ "= 0.52", or "> 0.99" / "< 0.01" at the ends."""
    shown = _p(x)
    return shown if shown[0] in "<>" else f"= {shown}"


def explain_uncertain(schema: Schema, probs: Mapping[str, np.ndarray], i: int, head: int | None = None) -> str:
    """ "uncertain: p(fractured) = 0.52" for the given head (default: the image's most uncertain).

    Between ``NEARLY_SURE`` and ``TORN`` (normalised entropy) the model leans one way but less
    surely than on most images: "less sure than most: p(implant) = 0.06". Under ``NEARLY_SURE`` the
    image is only the least certain of what is left: "nearly sure: p(fractured) > 0.99 (least
    certain left)".
    """
    entropies = [float(head_entropy(h, np.asarray(probs[h.name])[i : i + 1])[0]) for h in schema.heads]
    if head is None:
        head = int(np.argmax(entropies))
    h = schema.heads[head]
    p = np.asarray(probs[h.name])[i]
    if h.kind == "binary":
        what = f"p({h.name}) {_is(p[1])}"
    elif h.kind == "multilabel":
        j = int(np.argmin(np.abs(p - 0.5)))
        what = f"p({h.name}: {h.classes[j]}) {_is(p[j])}"
    else:
        a, b = np.argsort(p)[::-1][:2]
        what = f"{h.name} {h.classes[a]} {_p(p[a])} vs {h.classes[b]} {_p(p[b])}"
    if entropies[head] < NEARLY_SURE:
        return f"nearly sure: {what} (least certain left)"
    if entropies[head] < TORN:
        return f"less sure than most: {what}"
    return f"uncertain: {what}"


# -- the pool -------------------------------------------------------------------------------
def unlabelled_pool(
    n: int, labelled: Sequence[int] | np.ndarray, exclude: Sequence[int] | np.ndarray = ()
) -> np.ndarray:
    """Indices in [0, n) that are neither labelled nor excluded (e.g. open in someone's viewer)."""
    free = np.ones(n, dtype=bool)
    free[np.asarray(labelled, dtype=np.int64)] = False
    free[np.asarray(exclude, dtype=np.int64)] = False
    return np.flatnonzero(free)


def _top(pool: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The k pool indices with the highest scores, ties broken by index (stable, deterministic)."""
    s = scores[pool]
    order = np.lexsort((pool, -s))
    return pool[order[:k]]


# -- strategies -----------------------------------------------------------------------------
def select(
    strategy: str,
    budget: int,
    *,
    n: int,
    labelled: Sequence[int] | np.ndarray = (),
    exclude: Sequence[int] | np.ndarray = (),
    embeddings: np.ndarray | None = None,
    schema: Schema | None = None,
    probs: Mapping[str, np.ndarray] | None = None,
    member_probs: Sequence[Mapping[str, np.ndarray]] | None = None,
    strata: Sequence[object] | np.ndarray | None = None,
    seed: int = 0,
    random_share: float = 0.1,
    combine: str = DEFAULT_COMBINE,
    hybrid_uncertainty: str = "entropy",
) -> list[Pick]:
    """Picks ``budget`` images to label next.

    Args:
        strategy: one of ``STRATEGIES``.
        budget: how many to pick.
        n: size of the whole set (indices are into it).
        labelled: indices already labelled (never picked; the reference set of ``kcenter``).
        exclude: indices not to hand out (e.g. open in another annotator's viewer).
        embeddings: [n, D], needed by ``kcenter``, ``hybrid``, ``cold_start``.
        schema, probs: the heads and their ``{head: [n, C]}`` probabilities (uncertainty strategies).
        member_probs: one ``probs`` per bootstrap model (``ensemble``).
        strata: [n] group of each image (e.g. body part) for ``cold_start``; None = one group.
        seed: randomness of ``random``, the random share and k-means.
        random_share: share of ``hybrid`` picks drawn at random.
        combine: how per-head uncertainties combine (``max_rank`` or ``mean``, see ``combine_heads``).
        hybrid_uncertainty: what ``hybrid`` ranks by: ``entropy`` of ``probs`` (default) or
            ``disagreement`` of ``member_probs``.

    Returns:
        Up to ``budget`` picks with distinct indices from the pool, in pick order.
    """
    pool = unlabelled_pool(n, labelled, exclude)
    budget = int(min(budget, len(pool)))
    rng = np.random.default_rng(seed)
    if budget <= 0:
        return []
    if strategy == "random":
        chosen = rng.choice(pool, size=budget, replace=False)
        return [Pick(int(i), "random: unbiased sample of the pool") for i in chosen]
    if strategy in ("entropy", "margin"):
        assert schema is not None and probs is not None, f"{strategy} needs schema and probs"
        scores, lead = uncertainty_detail(schema, probs, strategy, combine)
        return [
            Pick(int(i), explain_uncertain(schema, probs, int(i), int(lead[i])), float(scores[i]))
            for i in _top(pool, scores, budget)
        ]
    if strategy == "ensemble":
        assert schema is not None and member_probs, "ensemble needs schema and member_probs"
        scores = disagreement(schema, member_probs, combine)
        mean = mean_probs(schema, member_probs)
        return [
            Pick(int(i), _reason("models disagree: ", schema, mean, int(i), None), float(scores[i]))
            for i in _top(pool, scores, budget)
        ]
    assert embeddings is not None, f"{strategy} needs embeddings"
    if strategy == "kcenter":
        chosen, dist = kcenter_greedy(embeddings, np.asarray(labelled, dtype=np.int64), pool, budget)
        return [
            Pick(int(i), f"diverse: unlike anything labelled (nearest at distance {d:.2f})", float(d))
            for i, d in zip(chosen, dist)
        ]
    if strategy == "cold_start":
        return cold_start(embeddings, pool, budget, strata, seed)
    if strategy == "hybrid":
        assert schema is not None and probs is not None, "hybrid needs schema and probs"
        if hybrid_uncertainty not in ("entropy", "disagreement"):
            raise ValueError(f"unknown hybrid uncertainty {hybrid_uncertainty!r}; known: entropy, disagreement")
        by_disagreement = hybrid_uncertainty == "disagreement"
        assert member_probs or not by_disagreement, "hybrid by disagreement needs member_probs"
        members = member_probs if by_disagreement else None
        return hybrid(embeddings, pool, budget, schema, probs, rng, random_share, combine=combine, member_probs=members)
    raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")


def hybrid(
    embeddings: np.ndarray,
    pool: np.ndarray,
    budget: int,
    schema: Schema,
    probs: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    random_share: float = 0.1,
    candidates_per_pick: int = 10,
    combine: str = DEFAULT_COMBINE,
    member_probs: Sequence[Mapping[str, np.ndarray]] | None = None,
) -> list[Pick]:
    """Uncertain and diverse: the most uncertain of each cluster of the top candidates, plus a random share.

    Uncertainty is the model's predictive entropy, or with ``member_probs`` (a bootstrap ensemble)
    the members' disagreement: what more labels would settle, not what stays ambiguous however many
    labels come (an image the features cannot separate has a high entropy but members agree on it).
    """
    n_random = int(round(budget * random_share))
    n_unc = budget - n_random
    if member_probs:
        scores, lead = disagreement_detail(schema, member_probs, combine)
        probs, prefix = mean_probs(schema, member_probs), "models disagree: "
    else:
        scores, lead = uncertainty_detail(schema, probs, "entropy", combine)
        prefix = ""
    cand = _top(pool, scores, min(len(pool), candidates_per_pick * max(n_unc, 1)))
    picks: list[Pick] = []
    taken: set[int] = set()
    if n_unc > 0:
        labels, _ = kmeans(np.asarray(embeddings)[cand], n_unc, rng)
        for c in range(n_unc):
            members = cand[labels == c]
            if len(members):
                best = int(_top(members, scores, 1)[0])
                picks.append(Pick(best, _reason(prefix, schema, probs, best, int(lead[best])), float(scores[best])))
                taken.add(best)
        for i in cand:  # empty clusters (duplicates in the data): fall back to the next most uncertain
            if len(picks) >= n_unc:
                break
            if int(i) not in taken:
                picks.append(Pick(int(i), _reason(prefix, schema, probs, int(i), int(lead[i])), float(scores[i])))
                taken.add(int(i))
    rest = np.array([i for i in pool if int(i) not in taken], dtype=np.int64)
    k = min(budget - len(picks), len(rest))
    for i in rng.choice(rest, size=k, replace=False) if k > 0 else []:
        picks.append(Pick(int(i), "random: keeps the labelled set representative", float(scores[i])))
    return picks


def _reason(prefix: str, schema: Schema, probs: Mapping[str, np.ndarray], i: int, head: int | None) -> str:
    """``explain_uncertain``, or with a prefix ("models disagree: ") the same probability after it."""
    text = explain_uncertain(schema, probs, i, head)
    if not prefix:
        return text
    return prefix + text.split(": ", 1)[1].removesuffix(" (least certain left)")


def cold_start(
    embeddings: np.ndarray,
    pool: np.ndarray,
    budget: int,
    strata: Sequence[object] | np.ndarray | None = None,
    seed: int = 0,
) -> list[Pick]:
    """Typical images before any label: k-means medoids, budget shared across strata by size."""
    emb = np.asarray(embeddings)
    rng = np.random.default_rng(seed)
    groups = np.asarray(strata, dtype=object)[pool] if strata is not None else np.zeros(len(pool), dtype=object)
    names = sorted({str(g) for g in groups})
    sizes = np.array([np.sum(groups.astype(str) == g) for g in names])
    alloc = _allocate(budget, sizes)
    picks: list[Pick] = []
    for g, k in zip(names, alloc):
        if k == 0:
            continue
        members = pool[groups.astype(str) == g]
        labels, centroids = kmeans(emb[members], int(k), rng)
        for c, idx in enumerate(medoids(emb[members], labels, centroids)):
            if idx < 0:
                continue
            size = int(np.sum(labels == c))
            picks.append(Pick(int(members[idx]), _typical_reason(size, g if strata is not None else None), float(size)))
    chosen = {p.index for p in picks}
    if len(picks) < budget:  # duplicates left clusters empty: top up at random
        rest = np.array([i for i in pool if int(i) not in chosen], dtype=np.int64)
        extra = rng.choice(rest, size=min(budget - len(picks), len(rest)), replace=False)
        picks += [Pick(int(i), "random: unbiased sample of the pool") for i in extra]
    return picks


def _typical_reason(size: int, stratum: str | None) -> str:
    """``typical: stands for 37 similar images (hand)``; a cluster of one only covers the data."""
    where = f" ({stratum})" if stratum and stratum != "unknown" else ""
    if size > 1:
        return f"typical: stands for {size} similar unlabelled images{where}"
    return f"covers the data: unlike the other unlabelled images{where}"


def _allocate(budget: int, sizes: np.ndarray) -> np.ndarray:
    """Largest-remainder shares of ``budget`` proportional to ``sizes``; every stratum gets one first
    when the budget allows, so a rare body part is not skipped."""
    sizes = np.asarray(sizes, dtype=np.float64)
    alloc = np.zeros(len(sizes), dtype=np.int64)
    if budget >= len(sizes):
        alloc += 1
    left = budget - int(alloc.sum())
    quota = sizes / sizes.sum() * left
    alloc += np.floor(quota).astype(np.int64)
    rem = budget - int(alloc.sum())
    alloc[np.argsort(-(quota - np.floor(quota)), kind="stable")[:rem]] += 1
    return np.minimum(alloc, sizes.astype(np.int64))
