"""Patient-level splits: whole groups, seeded, stratified, independent of input order."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skelex_web.exports.formats.splits import assign_splits, normalise_ratios


def _items(n_patients: int, per_patient: int, positive_every: int = 3) -> list[tuple[int, str, str]]:
    items = []
    for p in range(n_patients):
        for k in range(per_patient):
            items.append((p * 100 + k, f"p{p}", "fracture" if p % positive_every == 0 else "none"))
    return items


@given(
    groups=st.lists(st.tuples(st.integers(1, 6), st.sampled_from(["a", "b", "none"])), min_size=1, max_size=60),
    seed=st.integers(0, 2**31 - 1),
)
@settings(max_examples=60, deadline=None)
def test_no_group_is_in_two_splits(groups: list[tuple[int, str]], seed: int) -> None:
    items = [(f"{g}-{k}", f"g{g}", stratum) for g, (size, stratum) in enumerate(groups) for k in range(size)]
    split = assign_splits(items, seed)
    assert set(split) == {i for i, _, _ in items}
    per_group: dict[str, set[str]] = {}
    for item, group, _ in items:
        per_group.setdefault(group, set()).add(split[item])
    assert all(len(s) == 1 for s in per_group.values())


def test_same_seed_same_split_whatever_the_order_and_other_seeds_differ() -> None:
    items = _items(200, 3)
    shuffled = list(items)
    random.Random(1).shuffle(shuffled)
    assert assign_splits(items, 7) == assign_splits(shuffled, 7)
    assert assign_splits(items, 7) != assign_splits(items, 8)


def test_split_sizes_follow_ratios_within_each_stratum() -> None:
    items = _items(300, 2)
    split = assign_splits(items, 3, {"train": 0.7, "val": 0.15, "test": 0.15})
    for stratum in ("fracture", "none"):
        ids = [i for i, _, s in items if s == stratum]
        counts = Counter(split[i] for i in ids)
        assert abs(counts["train"] / len(ids) - 0.7) < 0.03
        assert abs(counts["val"] / len(ids) - 0.15) < 0.03
        assert abs(counts["test"] / len(ids) - 0.15) < 0.03


def test_ratios_are_validated_and_normalised() -> None:
    assert normalise_ratios({"train": 8, "val": 2}) == {"train": 0.8, "val": 0.2}
    with pytest.raises(ValueError, match="unknown split"):
        normalise_ratios({"train": 1, "holdout": 1})
    with pytest.raises(ValueError, match="positive"):
        normalise_ratios({"train": 0})
