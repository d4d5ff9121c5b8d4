"""Patient-level, seeded, stratified train/val/test splits.

Images are grouped (by pseudonymous patient, else study, else the image itself) and whole groups
are assigned to splits, so no patient ever sits in two. Within each stratum (a group's main label)
groups are visited in an order fixed by ``sha256(seed:group)`` and each goes to the split furthest
below its target share of that stratum's images. Same items and seed -> same assignment, whatever
the input order.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping

DEFAULT_RATIOS: dict[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}
SPLIT_NAMES = ("train", "val", "test")


def normalise_ratios(ratios: Mapping[str, float] | None) -> dict[str, float]:
    """Validated ratios in train/val/test order, summing to 1; zero-ratio splits dropped.

    Raises:
        ValueError: unknown split names, negative or non-finite values, or an all-zero mapping.
    """
    raw = dict(DEFAULT_RATIOS if ratios is None else ratios)
    unknown = sorted(set(raw) - set(SPLIT_NAMES))
    if unknown:
        raise ValueError(f"unknown split names: {', '.join(unknown)} (use {', '.join(SPLIT_NAMES)})")
    values = {name: float(raw.get(name, 0.0)) for name in SPLIT_NAMES}
    if any(v < 0 for v in values.values()):
        raise ValueError("split ratios must not be negative")
    if not all(math.isfinite(v) for v in values.values()):
        raise ValueError("split ratios must be finite numbers")
    total = sum(values.values())
    if not math.isfinite(total):  # 1e308 twice: inf, and every ratio would read as 0
        raise ValueError("split ratios are too large to add up; give shares such as 0.8, 0.1, 0.1")
    if total <= 0:
        raise ValueError("at least one split ratio must be positive")
    return {name: v / total for name, v in values.items() if v > 0}


def _order_key(seed: int, group: Hashable) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def assign_splits(
    items: Iterable[tuple[Hashable, Hashable, str]],
    seed: int,
    ratios: Mapping[str, float] | None = None,
) -> dict[Hashable, str]:
    """Assigns every item to a split, keeping each group whole.

    Args:
        items: ``(item_id, group_key, stratum)`` triples; the stratum is the item's main label.
        seed: fixes the order groups are dealt in.
        ratios: target share of images per split (default 0.8/0.1/0.1).

    Returns:
        ``{item_id: split_name}``.
    """
    shares = normalise_ratios(ratios)
    members: dict[Hashable, list[Hashable]] = defaultdict(list)
    strata: dict[Hashable, Counter[str]] = defaultdict(Counter)
    for item, group, stratum in items:
        members[group].append(item)
        strata[group][stratum] += 1
    # A group's stratum is its most frequent main label (ties: alphabetical), so a patient with
    # one fractured and three normal films counts as normal, like most of their images.
    by_stratum: dict[str, list[Hashable]] = defaultdict(list)
    for group, counts in strata.items():
        top = max(counts.values())
        by_stratum[min(s for s, c in counts.items() if c == top)].append(group)

    assignment: dict[Hashable, str] = {}
    for stratum in sorted(by_stratum):
        groups = sorted(by_stratum[stratum], key=lambda g: _order_key(seed, g))
        total = sum(len(members[g]) for g in groups)
        filled = dict.fromkeys(shares, 0)
        for group in groups:
            # The split furthest below its target; ties go to the earlier split (train first).
            split = max(shares, key=lambda s: (shares[s] * total - filled[s], -SPLIT_NAMES.index(s)))
            filled[split] += len(members[group])
            for item in members[group]:
                assignment[item] = split
    return assignment
