import math

import numpy as np
import pytest

from model_code.evaluation import (
    auc,
    bijective_alignment_accuracy,
    cluster_nmi,
    hit_rate_at_k,
    hit_rate_from_ranks,
    kendall_tau,
    mrr_from_ranks,
    ndcg_at_k,
    ndcg_from_ranks,
    nmi,
    recall_at_k,
    separation,
    target_positions,
    top_k_overlap,
)

pytestmark = pytest.mark.numeric_paths  # make test runs these again under other CPU kernels

# 3 queries over 4 candidates; targets sit at positions 1, 3 and 0.
RANKED = np.array([[2, 0, 1, 3], [1, 3, 0, 2], [3, 2, 1, 0]])
TARGETS = np.array([0, 2, 3])


def test_target_positions_mark_misses_with_k():
    assert target_positions(RANKED, TARGETS, 4).tolist() == [1, 3, 0]
    assert target_positions(RANKED, TARGETS, 2).tolist() == [1, 2, 0]


def test_hit_rate_by_hand():
    assert hit_rate_at_k(RANKED, TARGETS, 1) == pytest.approx(1 / 3)
    assert hit_rate_at_k(RANKED, TARGETS, 2) == pytest.approx(2 / 3)
    assert hit_rate_at_k(RANKED, TARGETS, 4) == 1.0


def test_ndcg_by_hand():
    at_2 = (1 / math.log2(3) + 0 + 1) / 3
    at_4 = (1 / math.log2(3) + 1 / math.log2(5) + 1) / 3
    assert ndcg_at_k(RANKED, TARGETS, 2) == pytest.approx(at_2)
    assert ndcg_at_k(RANKED, TARGETS, 4) == pytest.approx(at_4)


def test_recall_with_relevant_sets_by_hand():
    relevant = [{0, 1}, {2}, {0, 2, 3}]
    # q0: {2, 0} finds 1 of 2; q1: {1, 3} finds 0 of 1; q2: {3, 2} finds 2 of 3
    assert recall_at_k(RANKED, relevant, 2) == pytest.approx((1 / 2 + 0 + 2 / 3) / 3)
    assert recall_at_k(RANKED, relevant, 4) == 1.0


def test_recall_with_single_targets_equals_hit_rate():
    for k in (1, 2, 3, 4):
        assert recall_at_k(RANKED, TARGETS, k) == hit_rate_at_k(RANKED, TARGETS, k)


def test_rank_based_metrics_by_hand():
    ranks = np.array([0, 1, 3])
    assert mrr_from_ranks(ranks) == pytest.approx((1 + 1 / 2 + 1 / 4) / 3)
    assert hit_rate_from_ranks(ranks, 2) == pytest.approx(2 / 3)
    assert ndcg_from_ranks(ranks, 10) == pytest.approx(
        (1 + 1 / math.log2(3) + 1 / math.log2(5)) / 3
    )
    assert ndcg_from_ranks(ranks, 3) == pytest.approx((1 + 1 / math.log2(3)) / 3)


@pytest.mark.parametrize("k", [0, 5, 2.0, True])
def test_k_outside_the_ranked_columns_raises(k):
    # k is never clipped: a k beyond the ranked columns is an error
    with pytest.raises(ValueError, match="k"):
        hit_rate_at_k(RANKED, TARGETS, k)


def test_ranked_input_validation():
    with pytest.raises(ValueError, match="targets has 2 entries"):
        ndcg_at_k(RANKED, TARGETS[:2], 2)
    with pytest.raises(ValueError, match="integer candidate indices"):
        hit_rate_at_k(RANKED.astype(float), TARGETS, 2)
    with pytest.raises(ValueError, match="2-D"):
        hit_rate_at_k(RANKED[0], TARGETS, 2)
    with pytest.raises(ValueError, match="at least one relevant"):
        recall_at_k(RANKED, [{0}, set(), {1}], 2)
    with pytest.raises(ValueError, match="relevant has 2 entries"):
        recall_at_k(RANKED, [{0}, {1}], 2)
    with pytest.raises(ValueError, match="non-negative"):
        mrr_from_ranks(np.array([0, -1]))


def test_auc_by_hand():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered correctly
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert auc(np.array([0.5, 0.5]), np.array([False, True])) == pytest.approx(0.5)


def test_auc_rejects_one_class_and_non_binary_labels():
    with pytest.raises(ValueError, match="both positive and negative"):
        auc(np.array([0.1, 0.2]), np.array([1, 1]))
    with pytest.raises(ValueError, match="binary"):
        auc(np.array([0.1, 0.2]), np.array([0, 2]))
    with pytest.raises(ValueError, match="labels has 1 entries"):
        auc(np.array([0.1, 0.2]), np.array([1]))


def test_nmi_by_hand():
    assert nmi(np.array([0, 0, 1, 1]), np.array([5, 5, 7, 7])) == pytest.approx(1.0)
    assert nmi(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="equal length"):
        nmi(np.array([0, 1]), np.array([0, 1, 1]))


def test_cluster_nmi_separates_two_blobs():
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(0, 0.1, (20, 4)), rng.normal(5, 0.1, (20, 4))])
    labels = np.repeat([3, 8], 20)
    assert cluster_nmi(blobs, labels) == pytest.approx(1.0)
    assert cluster_nmi(blobs, labels, n_clusters=1) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="exceeds the 40 samples"):
        cluster_nmi(blobs, labels, n_clusters=41)
    with pytest.raises(ValueError, match="labels must have shape"):
        cluster_nmi(blobs, labels[:5])


def test_kendall_tau_by_hand():
    # one discordant pair of six: (5 - 1) / 6
    assert kendall_tau(np.array([1, 2, 3, 4]), np.array([1, 3, 2, 4])) == pytest.approx(2 / 3)
    assert kendall_tau(np.array([1, 2, 3]), np.array([3, 2, 1])) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="constant"):
        kendall_tau(np.array([1, 2, 3]), np.array([1, 1, 1]))
    with pytest.raises(ValueError, match="at least two"):
        kendall_tau(np.array([1.0]), np.array([2.0]))


def test_top_k_overlap_by_hand():
    a, b = np.array([5, 3, 1, 2]), np.array([3, 4, 5, 1])
    assert top_k_overlap(a, b, 2) == pytest.approx(1 / 2)
    assert top_k_overlap(a, b, 3) == pytest.approx(2 / 3)
    assert top_k_overlap(a, b, 4) == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match="exceeds the 4 items"):
        top_k_overlap(a, b, 5)
    with pytest.raises(ValueError, match="repeat"):
        top_k_overlap(np.array([1, 1, 2]), b, 2)


def test_bijective_alignment_accuracy():
    assert bijective_alignment_accuracy(np.eye(4)) == 1.0
    assert bijective_alignment_accuracy(np.eye(4)[[1, 2, 3, 0]]) == 0.0
    # rows' argmax: 0, 0, 2; columns' argmax: 1, 0, 2 -> only i = 2 is mutual
    sim = np.array([[0.9, 0.8, 0.1], [0.95, 0.7, 0.2], [0.0, 0.1, 0.5]])
    assert bijective_alignment_accuracy(sim) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="square"):
        bijective_alignment_accuracy(np.ones((2, 3)))


def test_separation_by_hand():
    out = separation(np.array([0.8, 0.6]), np.array([0.2, 0.0]))
    # variances 0.01 each -> pooled std 0.1
    assert out == pytest.approx(
        {"mean_positive": 0.7, "mean_negative": 0.1, "gap": 0.6, "d_prime": 6.0}
    )
    assert separation(np.array([1.0, 1.0]), np.array([0.0]))["d_prime"] == math.inf
    with pytest.raises(ValueError, match="negative_scores must be a non-empty"):
        separation(np.array([1.0]), np.array([]))


def test_tied_targets_count_in_expectation_over_their_position():
    # target 0 ties with one other for first; target 1 has two above it and three tied with it
    ranks, tied = np.array([0, 2]), np.array([1, 3])
    assert hit_rate_from_ranks(ranks, 2, tied) == pytest.approx((1 + 0) / 2)
    assert hit_rate_from_ranks(ranks, 4, tied) == pytest.approx((1 + 2 / 4) / 2)
    first_two = (1 + 1 / math.log2(3)) / 2
    assert ndcg_from_ranks(ranks, 2, tied) == pytest.approx(first_two / 2)
    third_to_sixth = sum(1 / math.log2(p + 2) for p in range(2, 4)) / 4  # only 2 and 3 are < k
    assert ndcg_from_ranks(ranks, 4, tied) == pytest.approx((first_two + third_to_sixth) / 2)
    assert mrr_from_ranks(ranks, tied) == pytest.approx(
        (0.75 + (1 / 3 + 1 / 4 + 1 / 5 + 1 / 6) / 4) / 2
    )
    assert mrr_from_ranks(ranks, np.zeros(2, dtype=int)) == pytest.approx(mrr_from_ranks(ranks))
    with pytest.raises(ValueError, match="tied must be non-negative"):
        hit_rate_from_ranks(ranks, 2, np.array([0, -1]))
    with pytest.raises(ValueError, match="tied has 1 entries, expected 2"):
        hit_rate_from_ranks(ranks, 2, np.array([0]))
