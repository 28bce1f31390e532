"""The retrieval metrics agree with scikit-learn's on random score matrices (no ties)."""

import numpy as np
import pytest
from sklearn.metrics import (
    label_ranking_average_precision_score,
    ndcg_score,
    recall_score,
    top_k_accuracy_score,
)

from model_code.evaluation.metrics import (
    hit_rate_at_k,
    mrr_from_ranks,
    ndcg_at_k,
    recall_at_k,
)

pytestmark = pytest.mark.numeric_paths  # make test runs these again under other CPU kernels

QUERIES, CANDIDATES = 60, 40


def scores_and_ranking(seed: int) -> tuple[np.ndarray, np.ndarray]:
    scores = np.random.default_rng(seed).standard_normal((QUERIES, CANDIDATES))
    return scores, np.argsort(-scores, axis=1)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [1, 5, 10, CANDIDATES])
def test_single_target_metrics_match_scikit_learn(seed, k):
    scores, ranked = scores_and_ranking(seed)
    targets = np.random.default_rng(seed + 100).integers(0, CANDIDATES, QUERIES)
    one_hot = np.eye(CANDIDATES, dtype=int)[targets]
    labels = np.arange(CANDIDATES)
    assert hit_rate_at_k(ranked, targets, k) == pytest.approx(
        top_k_accuracy_score(targets, scores, k=k, labels=labels)
    )
    assert ndcg_at_k(ranked, targets, k) == pytest.approx(ndcg_score(one_hot, scores, k=k))
    ranks = np.argmax(ranked == targets[:, None], axis=1)
    # with one relevant label per query, average precision is the reciprocal rank
    assert mrr_from_ranks(ranks) == pytest.approx(
        label_ranking_average_precision_score(one_hot, scores)
    )


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [1, 5, 10])
def test_recall_with_several_relevant_items_matches_scikit_learn(seed, k):
    scores, ranked = scores_and_ranking(seed)
    rng = np.random.default_rng(seed + 200)
    relevant = [set(rng.choice(CANDIDATES, rng.integers(1, 6), replace=False)) for _ in ranked]
    expected = []
    for row, wanted in zip(ranked, relevant, strict=True):
        truth = np.isin(np.arange(CANDIDATES), list(wanted)).astype(int)
        predicted = np.isin(np.arange(CANDIDATES), row[:k]).astype(int)
        expected.append(recall_score(truth, predicted))
    assert recall_at_k(ranked, relevant, k) == pytest.approx(np.mean(expected))
