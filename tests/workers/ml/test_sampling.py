"""Sampling strategies: B distinct unlabelled picks with reasons; k-center finds the outlier; seeds."""

from __future__ import annotations

import re

import numpy as np
import pytest

from workers.ml.coreset import kcenter_greedy, kmeans
from workers.ml.heads import Schema
from workers.ml.sampling import STRATEGIES, disagreement, explain_uncertain, select, uncertainty

SCHEMA = Schema.from_dict(
    {
        "heads": [
            {"name": "fractured", "kind": "binary", "classes": ["no", "yes"]},
            {"name": "bodypart", "kind": "multiclass", "classes": ["hand", "leg", "hip", "shoulder", "mixed"]},
        ]
    }
)
N = 200


def inputs(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(N, 8)).astype(np.float32)
    p = rng.random(N)

    def probs_for(noise: float) -> dict[str, np.ndarray]:
        q = np.clip(p + noise * rng.normal(size=N), 0.01, 0.99)
        body = rng.dirichlet(np.ones(5), size=N)
        return {"fractured": np.stack([1 - q, q], axis=1), "bodypart": body}

    return dict(
        embeddings=emb,
        schema=SCHEMA,
        probs=probs_for(0.0),
        member_probs=[probs_for(0.2) for _ in range(4)],
        strata=np.array(["hand", "leg", "hip"] * (N // 3) + ["hand"] * (N % 3)),
    )


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_budget_distinct_unlabelled_picks_with_reasons(strategy: str) -> None:
    labelled = np.arange(0, N, 4)  # 50 labelled
    exclude = [1, 2]  # open in another annotator's viewer
    picks = select(strategy, 20, n=N, labelled=labelled, exclude=exclude, seed=1, **inputs())
    idx = [p.index for p in picks]
    assert len(idx) == 20
    assert len(set(idx)) == 20
    assert not set(idx) & set(labelled.tolist())
    assert not set(idx) & set(exclude)
    assert all(0 <= i < N for i in idx)
    assert all(p.reason for p in picks)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_deterministic_for_a_seed(strategy: str) -> None:
    kw = dict(n=N, labelled=np.arange(10), seed=7, **inputs())
    assert select(strategy, 15, **kw) == select(strategy, 15, **kw)


def test_budget_larger_than_pool_returns_the_pool() -> None:
    picks = select("hybrid", 50, n=N, labelled=np.arange(N - 10), **inputs())
    assert sorted(p.index for p in picks) == list(range(N - 10, N))


def test_entropy_picks_the_most_uncertain_with_its_probability() -> None:
    inp = inputs()
    single = Schema.from_dict({"heads": [{"name": "fractured", "kind": "binary", "classes": ["no", "yes"]}]})
    q = np.linspace(0.01, 0.99, N)
    probs = {"fractured": np.stack([1 - q, q], axis=1)}
    picks = select("entropy", 2, n=N, schema=single, probs=probs, embeddings=inp["embeddings"])
    assert {p.index for p in picks} == {99, 100}  # p closest to 0.5
    assert picks[0].reason.startswith("uncertain: p(fractured) = 0.5")


def test_multi_head_uncertainty_mean_of_normalised_entropies() -> None:
    probs = {
        "fractured": np.array([[0.5, 0.5], [1.0, 0.0]]),
        "bodypart": np.array([[1.0, 0, 0, 0, 0], [0.2] * 5]),
    }
    np.testing.assert_allclose(uncertainty(SCHEMA, probs, combine="mean"), [0.5, 0.5], atol=1e-6)


def test_max_rank_lets_every_head_bring_its_most_uncertain_image() -> None:
    # fractured is near chance everywhere (all entropies ~1, tiny spread); bodypart is confident
    # except on image 3. The mean follows fractured's noise; max_rank finds image 3 as well.
    fr = np.array([0.50, 0.49, 0.48, 0.46, 0.47])
    body = np.full((5, 5), 0.01)
    body[:, 0] = 0.96
    body[3] = [0.3, 0.3, 0.2, 0.1, 0.1]
    probs = {"fractured": np.stack([1 - fr, fr], axis=1), "bodypart": body}
    top2 = {p.index for p in select("entropy", 2, n=5, schema=SCHEMA, probs=probs)}
    assert top2 == {0, 3}
    picks = select("entropy", 2, n=5, schema=SCHEMA, probs=probs)
    assert {p.index: p.reason for p in picks}[3].startswith("uncertain: bodypart hand 0.30 vs leg 0.30")
    assert {p.index: p.reason for p in picks}[0] == "uncertain: p(fractured) = 0.50"


def test_disagreement_is_zero_when_members_agree() -> None:
    inp = inputs()
    same = [inp["probs"]] * 3
    assert np.allclose(disagreement(SCHEMA, same, combine="mean"), 0.0)
    assert disagreement(SCHEMA, inp["member_probs"], combine="mean").max() > 0.01


def test_kcenter_picks_the_far_point() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(scale=0.1, size=(50, 4)).astype(np.float32)
    emb[37] = [10.0, 10.0, 10.0, 10.0]  # the outlier
    labelled = np.array([0, 1, 2])
    pool = np.setdiff1d(np.arange(50), labelled)
    chosen, dist = kcenter_greedy(emb, labelled, pool, 1)
    assert chosen.tolist() == [37]
    assert dist[0] > 15
    picks = select("kcenter", 1, n=50, labelled=labelled, embeddings=emb)
    assert picks[0].index == 37 and picks[0].reason.startswith("diverse:")


def test_kcenter_chunking_does_not_change_the_answer() -> None:
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(300, 6)).astype(np.float32)
    pool = np.arange(20, 300)
    a, _ = kcenter_greedy(emb, np.arange(20), pool, 10, chunk=7)
    b, _ = kcenter_greedy(emb, np.arange(20), pool, 10, chunk=4096)
    assert a.tolist() == b.tolist()


def test_cold_start_covers_every_stratum_with_medoids() -> None:
    inp = inputs()
    picks = select("cold_start", 6, n=N, embeddings=inp["embeddings"], strata=inp["strata"])
    chosen_strata = {str(inp["strata"][p.index]) for p in picks}
    assert chosen_strata == {"hand", "leg", "hip"}
    assert all(p.reason.startswith("typical:") for p in picks)


def test_kmeans_separates_obvious_clusters() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 0.1, size=(30, 2)) for c in (0.0, 5.0, 10.0)])
    labels, _ = kmeans(x, 3, np.random.default_rng(1))
    for s in range(0, 90, 30):
        assert len(set(labels[s : s + 30].tolist())) == 1
    assert len(set(labels.tolist())) == 3


def test_hybrid_has_a_random_share_and_spreads_over_clusters() -> None:
    inp = inputs()
    picks = select("hybrid", 20, n=N, seed=0, **inp)
    assert sum(p.reason.startswith("random:") for p in picks) == 2
    assert sum(p.reason.startswith("uncertain:") for p in picks) == 18


def test_cold_start_reasons_say_how_many_images_each_pick_stands_for() -> None:
    inp = inputs()
    strata = np.asarray(inp["strata"]).astype(str)
    picks = select("cold_start", 6, n=N, embeddings=inp["embeddings"], strata=inp["strata"])
    stood_for: dict[str, int] = {}
    for p in picks:
        match = re.fullmatch(r"typical: stands for (\d+) similar unlabelled images \((\w+)\)", p.reason)
        assert match, p.reason
        assert match[2] == strata[p.index]
        stood_for[match[2]] = stood_for.get(match[2], 0) + int(match[1])
    # Together the picks of a body part stand for all of its images.
    assert stood_for == {g: int(np.sum(strata == g)) for g in stood_for}
    # One image per cluster: nothing typical about it, it only covers the data; unknown body part unnamed.
    alone = select("cold_start", 3, n=3, embeddings=np.eye(3), strata=["unknown"] * 3)
    assert [p.reason for p in alone] == ["covers the data: unlike the other unlabelled images"] * 3


def test_a_nearly_sure_image_is_not_called_uncertain_and_no_probability_reads_as_certain() -> None:
    schema = Schema.from_dict(
        {
            "heads": [
                {"name": "fractured", "kind": "binary", "classes": ["no", "yes"]},
                {"name": "bodypart", "kind": "multiclass", "classes": ["hand", "leg", "hip"]},
            ]
        }
    )
    probs = {
        "fractured": np.array([[0.48, 0.52], [0.004, 0.996], [0.97, 0.03]]),
        "bodypart": np.array([[0.98, 0.01, 0.01], [0.9990, 0.0006, 0.0004], [0.999, 0.0005, 0.0005]]),
    }
    assert explain_uncertain(schema, probs, 0) == "uncertain: p(fractured) = 0.52"
    # Every head is nearly sure: the image is only the least certain of what is left.
    assert explain_uncertain(schema, probs, 1) == "nearly sure: p(fractured) > 0.99 (least certain left)"
    assert explain_uncertain(schema, probs, 1, head=1) == (
        "nearly sure: bodypart hand > 0.99 vs leg < 0.01 (least certain left)"
    )
    # p = 0.03 for a binary head is just under the line (normalised entropy ~0.19).
    assert explain_uncertain(schema, probs, 2).startswith("nearly sure: p(fractured) = 0.03")
    # Leaning one way, less surely than most: ranked, but not "uncertain" to a reader.
    leaning = {"fractured": np.array([[0.94, 0.06]]), "bodypart": np.array([[0.999, 0.0005, 0.0005]])}
    assert explain_uncertain(schema, leaning, 0) == "less sure than most: p(fractured) = 0.06"
    torn = {"fractured": np.array([[0.25, 0.75]]), "bodypart": np.array([[0.999, 0.0005, 0.0005]])}
    assert explain_uncertain(schema, torn, 0) == "uncertain: p(fractured) = 0.75"


def test_hybrid_by_disagreement_skips_what_the_members_agree_is_ambiguous() -> None:
    # Images 0-99: every member says p = 0.5 (ambiguous however many labels come: the highest
    # entropy, no disagreement). Images 100-199: the members split, p = 0.1 against p = 0.9.
    schema = Schema.from_dict({"heads": [{"name": "fractured", "kind": "binary", "classes": ["no", "yes"]}]})
    emb = np.random.default_rng(0).normal(size=(N, 4)).astype(np.float32)
    low = np.arange(N) < 100

    def binary(q: np.ndarray) -> dict[str, np.ndarray]:
        return {"fractured": np.stack([1 - q, q], axis=1)}

    members = [binary(np.where(low, 0.5, 0.1)), binary(np.where(low, 0.5, 0.9))]
    model = binary(np.where(low, 0.5, 0.3))  # the single model: most uncertain about 0-99
    kw = dict(n=N, embeddings=emb, schema=schema, probs=model, member_probs=members, seed=0)

    by_entropy = [p for p in select("hybrid", 10, **kw) if not p.reason.startswith("random:")]
    by_disagreement = [
        p for p in select("hybrid", 10, hybrid_uncertainty="disagreement", **kw) if not p.reason.startswith("random:")
    ]

    assert len(by_entropy) == len(by_disagreement) == 9
    assert all(p.index < 100 for p in by_entropy)
    assert all(p.index >= 100 for p in by_disagreement)
    assert {p.reason for p in by_disagreement} == {"models disagree: p(fractured) = 0.50"}
    with pytest.raises(ValueError, match="unknown hybrid uncertainty"):
        select("hybrid", 10, hybrid_uncertainty="margin", **kw)
