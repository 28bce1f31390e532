import math
from itertools import product

import numpy as np
import pytest

from model_code.evaluation import (
    bijective_alignment_accuracy,
    cross_modal_report,
    hit_rate_at_k,
    ndcg_at_k,
    neighbour_recall,
    next_item_report,
    rank_candidates,
    recall_at_k,
    retrieval_report,
    score_ranking_report,
)
from model_code.evaluation.retrieval import TIE_TOLERANCE

pytestmark = pytest.mark.numeric_paths  # make test runs these again under other CPU kernels


def unit(*rows: tuple[float, ...]) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


# Candidate scores per query (dot products):
#   q0 = (1, 0):     [1, 0, -1, 0.6]    -> ranking 0, 3, 1, 2
#   q1 = (0, 1):     [0, 1, 0, 0.8]     -> ranking 1, 3, 0, 2 (0 and 2 tie: listed by index)
#   q2 = (0.8, 0.6): [0.8, 0.6, -0.8, 0.96] -> ranking 3, 0, 1, 2
CANDIDATES = unit((1, 0), (0, 1), (-1, 0), (0.6, 0.8))
QUERIES = unit((1, 0), (0, 1), (0.8, 0.6))
FULL_RANKING = [[0, 3, 1, 2], [1, 3, 0, 2], [3, 0, 1, 2]]

# Unit vectors with entries in {0, ±0.5, ±1}: all dot products are exact, so ties are exact.
POOL = np.concatenate(
    [np.eye(4), -np.eye(4), 0.5 * np.array(list(product((-1, 1), repeat=4)))]
).astype(np.float32)


def random_unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def reference_top_k(queries, candidates, k, exclude=None) -> np.ndarray:
    """Full stable sort: descending score, ties by index, excluded last."""
    scores = (queries @ candidates.T).astype(np.float64)
    for i, excluded in enumerate(exclude or []):
        scores[i, list(excluded)] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_rank_candidates_by_hand():
    assert rank_candidates(QUERIES, CANDIDATES, 4).tolist() == FULL_RANKING
    assert rank_candidates(QUERIES, CANDIDATES, 2).tolist() == [r[:2] for r in FULL_RANKING]


def test_rank_candidates_masks_exclusions():
    exclude = [{0}, np.array([1, 3]), set()]
    assert rank_candidates(QUERIES, CANDIDATES, 2, exclude).tolist() == [[3, 1], [0, 2], [3, 0]]


def test_ties_at_the_cut_off_go_to_the_lower_index():
    q = unit((1, 0, 0, 0))
    a, b, c = (0.5, 0.5, 0.5, 0.5), (1, 0, 0, 0), (0, 1, 0, 0)
    candidates = unit(a, b, a, a, c)  # scores 0.5, 1, 0.5, 0.5, 0
    assert rank_candidates(q, candidates, 3).tolist() == [[1, 0, 2]]
    assert rank_candidates(q, candidates, 4).tolist() == [[1, 0, 2, 3]]
    assert rank_candidates(q, unit(*[a] * 5), 2).tolist() == [[0, 1]]


def test_rank_candidates_matches_a_full_stable_sort_with_ties_and_exclusions():
    rng = np.random.default_rng(1)
    queries, candidates = POOL[rng.integers(0, 24, 50)], POOL[rng.integers(0, 24, 60)]
    exclude = [rng.choice(60, size=rng.integers(0, 30), replace=False) for _ in range(50)]
    expected = reference_top_k(queries, candidates, 10, exclude)
    for batch in (1, 7, 1024):
        got = rank_candidates(queries, candidates, 10, exclude, batch=batch)
        np.testing.assert_array_equal(got, expected)


def test_rank_candidates_errors():
    with pytest.raises(ValueError, match="k=5 exceeds the 4 candidates"):
        rank_candidates(QUERIES, CANDIDATES, 5)
    with pytest.raises(ValueError, match="query 0 has fewer than k=2 candidates left"):
        rank_candidates(QUERIES, CANDIDATES, 2, [{0, 1, 2}, set(), set()])
    with pytest.raises(ValueError, match=r"exclude\[1\] must hold candidate indices in \[0, 4\)"):
        rank_candidates(QUERIES, CANDIDATES, 2, [set(), {4}, set()])
    with pytest.raises(ValueError, match="one per query"):
        rank_candidates(QUERIES, CANDIDATES, 2, [set()])
    with pytest.raises(ValueError, match="queries rows must be L2-normalised"):
        rank_candidates(2 * QUERIES, CANDIDATES, 2)
    with pytest.raises(ValueError, match="dimension"):
        rank_candidates(QUERIES, unit((1, 0, 0)), 1)
    with pytest.raises(ValueError, match="batch"):
        rank_candidates(QUERIES, CANDIDATES, 1, batch=0)


def test_retrieval_report_by_hand():
    # targets 3, 1, 0 sit at ranks 1, 0, 1
    report = retrieval_report(QUERIES, CANDIDATES, np.array([3, 1, 0]), ks=(1, 2, 4))
    assert report == pytest.approx(
        {"recall@1": 1 / 3, "recall@2": 1.0, "recall@4": 1.0, "mrr": (1 / 2 + 1 + 1 / 2) / 3}
    )
    # q1's target 2 ties with candidate 0 after two better ones: third or fourth, equally likely
    tied = retrieval_report(QUERIES[1:2], CANDIDATES, np.array([2]), ks=(2, 3, 4))
    assert tied == pytest.approx({"recall@2": 0.0, "recall@3": 0.5, "recall@4": 1.0, "mrr": 7 / 24})


def test_scores_within_the_tolerance_tie_and_beyond_it_do_not():
    query = unit((1, 0))
    angle = np.arccos(0.5)
    near = [np.cos(angle + 3e-7), np.sin(angle + 3e-7)]  # cosine 0.5 - 2.6e-7
    far = [np.cos(angle + 3e-5), np.sin(angle + 3e-5)]  # cosine 0.5 - 2.6e-5
    candidates = unit((0.5, np.sqrt(0.75)), near, far)
    report = retrieval_report(np.repeat(query, 3, axis=0), candidates, np.arange(3), ks=(1,))
    assert report["recall@1"] == pytest.approx((0.5 + 0.5 + 0) / 3)  # 0 and 1 tie, 2 trails
    assert TIE_TOLERANCE == 1e-6


def tie_order_expectation(queries, candidates, targets, k, draws=400, seed=0):
    """recall@k with ties by index, averaged over random orders of the candidates."""
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(draws):
        order = rng.permutation(len(candidates))
        position = np.argsort(order)  # candidate c sits at position[c] of the shuffled list
        ranked = rank_candidates(queries, candidates[order], k)
        found.append(recall_at_k(ranked, position[targets], k))
    return float(np.mean(found))


def test_retrieval_report_errors():
    with pytest.raises(ValueError, match="k=5 exceeds"):
        retrieval_report(QUERIES, CANDIDATES, np.array([0, 1, 2]), ks=(5,))
    with pytest.raises(ValueError, match="targets must be 3 integer"):
        retrieval_report(QUERIES, CANDIDATES, np.array([0, 1]), ks=(1,))
    with pytest.raises(ValueError, match=r"candidate indices in \[0, 4\)"):
        retrieval_report(QUERIES, CANDIDATES, np.array([0, 1, 4]), ks=(1,))


def test_retrieval_report_agrees_with_top_k_metrics_without_ties():
    rng = np.random.default_rng(2)
    queries, candidates = random_unit(rng, 80, 8), random_unit(rng, 40, 8)
    targets = rng.integers(0, 40, 80)
    report = retrieval_report(queries, candidates, targets, ks=(1, 5, 10))
    ranked = rank_candidates(queries, candidates, 10)
    for k in (1, 5, 10):
        assert report[f"recall@{k}"] == recall_at_k(ranked, targets, k)


def test_under_ties_recall_is_its_expectation_over_the_order_of_tied_candidates():
    rng = np.random.default_rng(2)
    queries, candidates = POOL[rng.integers(0, 24, 80)], POOL[rng.integers(0, 24, 40)]
    targets = rng.integers(0, 40, 80)
    report = retrieval_report(queries, candidates, targets, ks=(1, 5, 10))
    in_index_order = retrieval_report(queries, candidates, targets, ks=(10,))["recall@10"]
    for k in (1, 5, 10):
        expected = tie_order_expectation(queries, candidates, targets, k)
        assert report[f"recall@{k}"] == pytest.approx(expected, abs=0.01)
    # the same figure whatever order the candidates come in
    order = rng.permutation(40)
    shuffled = retrieval_report(queries, candidates[order], np.argsort(order)[targets], (10,))
    assert shuffled["recall@10"] == pytest.approx(in_index_order, abs=1e-12)


def test_a_collapsed_model_scores_exactly_chance():
    point = unit((0.6, 0.8))
    texts, images = np.repeat(point, 50, axis=0), np.repeat(point, 50, axis=0)
    report = cross_modal_report(texts, images, ks=(1, 5, 10))
    for k in (1, 5, 10):
        assert report[f"t2i_recall@{k}"] == pytest.approx(k / 50, abs=1e-12)
        assert report[f"i2t_recall@{k}"] == pytest.approx(k / 50, abs=1e-12)
    assert report["bijective_accuracy"] == pytest.approx(1 / 50**2, abs=1e-12)
    mrr = retrieval_report(texts, images, np.arange(50), ks=(1,))["mrr"]
    assert mrr == pytest.approx(np.mean(1 / np.arange(1, 51)), abs=1e-12)
    users, items = np.repeat(point, 4, axis=0), np.repeat(point, 30, axis=0)
    seen = [np.arange(20, 20 + s) for s in (0, 5, 10, 0)]  # 30, 25, 20 and 30 left
    report = next_item_report(users, items, np.array([3, 4, 5, 6]), seen, ks=(10,))
    assert report["hr@10"] == pytest.approx(np.mean([10 / 30, 10 / 25, 10 / 20, 10 / 30]))
    ndcg = [sum(1 / np.log2(np.arange(10) + 2)) / left for left in (30, 25, 20, 30)]
    assert report["ndcg@10"] == pytest.approx(np.mean(ndcg))


def test_random_embeddings_recall_near_k_over_m():
    rng = np.random.default_rng(3)
    queries, candidates = random_unit(rng, 3000, 32), random_unit(rng, 100, 32)
    report = retrieval_report(queries, candidates, rng.integers(0, 100, 3000), ks=(1, 10, 50))
    assert report["recall@1"] == pytest.approx(0.01, abs=0.01)
    assert report["recall@10"] == pytest.approx(0.10, abs=0.03)
    assert report["recall@50"] == pytest.approx(0.50, abs=0.05)
    assert report["mrr"] == pytest.approx(np.mean(1 / np.arange(1, 101)), abs=0.02)


# Pairs (text_i, image_i); S[t, i] = t . i:
#   t0: [1, 0.8, 0]      t2i rank 0     i0 (column): [1, 0, 0.6]      i2t rank 0
#   t1: [0, 0.6, 1]      t2i rank 1     i1 (column): [0.8, 0.6, 0.96] i2t rank 2
#   t2: [0.6, 0.96, 0.8] t2i rank 1     i2 (column): [0, 1, 0.8]      i2t rank 1
TEXTS = unit((1, 0), (0, 1), (0.6, 0.8))
IMAGES = unit((1, 0), (0.8, 0.6), (0, 1))


def test_cross_modal_report_by_hand():
    report = cross_modal_report(TEXTS, IMAGES, ks=(1, 2, 3))
    assert report == pytest.approx(
        {
            "t2i_recall@1": 1 / 3,
            "t2i_recall@2": 1.0,
            "t2i_recall@3": 1.0,
            "i2t_recall@1": 1 / 3,
            "i2t_recall@2": 2 / 3,
            "i2t_recall@3": 1.0,
            "bijective_accuracy": 1 / 3,
        }
    )
    assert report["bijective_accuracy"] == bijective_alignment_accuracy(TEXTS @ IMAGES.T)


def test_cross_modal_report_identical_and_shuffled_pairs():
    rng = np.random.default_rng(4)
    vecs = random_unit(rng, 50, 16)
    perfect = cross_modal_report(vecs, vecs)
    assert perfect["t2i_recall@1"] == perfect["i2t_recall@1"] == perfect["bijective_accuracy"] == 1
    shuffled = cross_modal_report(vecs, vecs[np.roll(np.arange(50), 1)])
    assert shuffled["bijective_accuracy"] == 0.0
    with pytest.raises(ValueError, match="rows must pair up"):
        cross_modal_report(vecs, vecs[:49])


def test_cross_modal_bijective_matches_the_matrix_metric():
    rng = np.random.default_rng(5)
    texts = random_unit(rng, 60, 8)
    images = texts + 1.5 * random_unit(rng, 60, 8)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    report = cross_modal_report(texts, images)
    assert 0 < report["bijective_accuracy"] < 1
    assert report["bijective_accuracy"] == bijective_alignment_accuracy(texts @ images.T)


def test_next_item_report_by_hand():
    # u0 without 0: target 3 first; u1 without 1, 3: target 2 ties 0 for first, first or second
    # equally likely; u2 sees nothing: target 2 last of four
    seen = [np.array([0]), np.array([1, 3]), np.array([], dtype=int)]
    report = next_item_report(QUERIES, CANDIDATES, np.array([3, 2, 2]), seen, ks=(1, 2, 4))
    tied_first_two = (1 + 1 / math.log2(3)) / 2
    assert report == pytest.approx(
        {
            "hr@1": (1 + 0.5) / 3,
            "hr@2": 2 / 3,
            "hr@4": 1.0,
            "ndcg@1": (1 + 0.5) / 3,
            "ndcg@2": (1 + tied_first_two) / 3,
            "ndcg@4": (1 + tied_first_two + 1 / math.log2(5)) / 3,
        }
    )
    from_scores = score_ranking_report(QUERIES @ CANDIDATES.T, np.array([3, 2, 2]), seen, (1, 2, 4))
    assert from_scores == report


def test_score_ranking_report_popularity_by_hand():
    popularity = np.array([[5, 3, 3, 1]] * 2)
    # user 0 has seen item 0: items 1 and 2 tie, so target 2 is first or second; user 1's target 0
    # is first
    report = score_ranking_report(popularity, np.array([2, 0]), [[0], []], ks=(1, 2))
    tied_first_two = (1 + 1 / math.log2(3)) / 2
    assert report == pytest.approx(
        {"hr@1": 0.75, "hr@2": 1.0, "ndcg@1": 0.75, "ndcg@2": (tied_first_two + 1) / 2}
    )


def test_next_item_errors():
    popularity = np.array([[5.0, 3, 3, 1]])
    with pytest.raises(ValueError, match="query 0: target 2 is among its own excluded items"):
        score_ranking_report(popularity, np.array([2]), [np.array([0, 2])], ks=(1,))
    with pytest.raises(ValueError, match="target 1 is among its own excluded"):
        next_item_report(QUERIES[:1], CANDIDATES, np.array([1]), [{1}], ks=(1,))
    with pytest.raises(ValueError, match="k=10 exceeds the 4 candidates"):
        score_ranking_report(popularity, np.array([2]), [[]])
    with pytest.raises(ValueError, match="finite"):
        score_ranking_report(np.array([[np.nan, 1.0]]), np.array([0]), [[]], ks=(1,))
    with pytest.raises(ValueError, match="at least one cut-off"):
        score_ranking_report(popularity, np.array([2]), [[]], ks=())


def test_next_item_report_at_movielens_size_matches_top_k_metrics():
    rng = np.random.default_rng(6)
    users, items = random_unit(rng, 943, 32), random_unit(rng, 1682, 32)
    targets = rng.integers(0, 1682, 943)
    seen = []
    for target in targets:
        history = rng.choice(1682, size=rng.integers(5, 300), replace=False)
        seen.append(history[history != target])
    report = next_item_report(users, items, targets, seen, ks=(10, 50))
    for k in (10, 50):
        ranked = rank_candidates(users, items, k, exclude=seen)
        assert report[f"hr@{k}"] == hit_rate_at_k(ranked, targets, k)
        assert report[f"ndcg@{k}"] == pytest.approx(ndcg_at_k(ranked, targets, k))
        assert report[f"hr@{k}"] == pytest.approx(k / 1600, abs=0.02)


def test_neighbour_recall_counts_a_tie_at_the_cut_off_as_a_hit():
    scores = np.array([0.9, 0.8, 0.5, 0.5 - 1e-8, 0.1])  # 2 and 3 tie for third
    assert neighbour_recall(scores, [0, 1, 2], 3) == 1.0
    assert neighbour_recall(scores, [0, 1, 3], 3) == 1.0
    assert neighbour_recall(scores, [0, 1, 4], 3) == pytest.approx(2 / 3)
    assert neighbour_recall(scores, [1, 4], 3) == pytest.approx(1 / 3)  # a short answer
    scores[0] = -np.inf  # excluded: the third best is now the last but one
    assert neighbour_recall(scores, [1, 2, 4], 3) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="k=5 exceeds the 4 candidates left"):
        neighbour_recall(scores, [1, 2], 5)
