import numpy as np
import pytest

from model_code.training.hard_negatives import (
    PAD_INDEX,
    f1_optimal_threshold,
    mine_hard_negatives,
)


def test_separable_scores_threshold_between_classes():
    positives, negatives = np.array([0.9, 0.8, 0.75]), np.array([0.5, 0.3, 0.6])
    threshold, f1 = f1_optimal_threshold(positives, negatives)
    assert negatives.max() < threshold <= positives.min()
    assert f1 == 1.0


def test_hand_computed_optimum():
    """t=0.4 keeps all 3 positives and one negative (0.7): F1 = 6/7; every other candidate is worse
    (0.2: 6/9, 0.3: 6/8, 0.7: 4/6, 0.8: 4/5, 0.9: 2/4)."""
    threshold, f1 = f1_optimal_threshold(np.array([0.9, 0.8, 0.4]), np.array([0.7, 0.3, 0.2]))
    assert threshold == 0.4
    assert f1 == pytest.approx(6 / 7)


def test_ties_pick_the_lowest_threshold():
    """t=0.5 (TP 2, FP 2) and t=1.0 (TP 1, FN 1) both give F1 = 2/3."""
    threshold, f1 = f1_optimal_threshold(np.array([1.0, 0.5]), np.array([0.6, 0.55]))
    assert (threshold, f1) == (0.5, pytest.approx(2 / 3))


def test_threshold_without_negatives_and_bad_inputs():
    assert f1_optimal_threshold(np.array([0.3, 0.7]), np.array([])) == (0.3, 1.0)
    with pytest.raises(ValueError):
        f1_optimal_threshold(np.array([]), np.array([0.1]))
    with pytest.raises(ValueError):
        f1_optimal_threshold(np.array([np.nan]), np.array([0.1]))


SIMILARITY = np.array(
    [
        [0.95, 0.93, 0.60, 0.50, 0.10],  # positive 0; 0.93 is a planted near-duplicate
        [0.20, 0.30, 0.40, 0.85, 0.90],  # positive 2 scores below the threshold
    ]
)
POSITIVES = np.array([0, 2])


def test_drops_near_duplicate_and_keeps_next_hardest():
    mined = mine_hard_negatives(SIMILARITY, POSITIVES, threshold=0.8, k=2)
    np.testing.assert_array_equal(mined.indices, [[2, 3], [1, 0]])
    assert mined.mask.all()
    np.testing.assert_array_equal(mined.false_negatives, [1, 2])
    assert mined.total_false_negatives == 3


def test_score_at_threshold_is_kept():
    mined = mine_hard_negatives(SIMILARITY, POSITIVES, threshold=0.93, k=1)
    np.testing.assert_array_equal(mined.indices[0], [1])
    assert mined.false_negatives[0] == 0


def test_mask_and_padding_when_too_few_negatives():
    mined = mine_hard_negatives(SIMILARITY, POSITIVES, threshold=0.8, k=4)
    np.testing.assert_array_equal(
        mined.mask, [[True, True, True, False], [True, True, False, False]]
    )
    np.testing.assert_array_equal(
        mined.indices, [[2, 3, 4, PAD_INDEX], [1, 0, PAD_INDEX, PAD_INDEX]]
    )
    wide = mine_hard_negatives(SIMILARITY, POSITIVES, threshold=1.0, k=7)
    assert wide.indices.shape == (2, 7)
    assert wide.mask.sum(axis=1).tolist() == [4, 4]


def test_random_mining_invariants():
    rng = np.random.default_rng(0)
    similarity = rng.uniform(-1, 1, size=(20, 30))
    positives = rng.integers(30, size=20)
    mined = mine_hard_negatives(similarity, positives, threshold=0.5, k=5)
    for row, pos, idx, keep in zip(similarity, positives, mined.indices, mined.mask, strict=True):
        chosen = idx[keep]
        assert pos not in chosen
        eligible = np.delete(row, pos)
        eligible = np.sort(eligible[eligible <= 0.5])[::-1]
        np.testing.assert_array_equal(row[chosen], eligible[:5])
    dropped = (similarity > 0.5).sum(axis=1) - (similarity[np.arange(20), positives] > 0.5)
    np.testing.assert_array_equal(mined.false_negatives, dropped)


@pytest.mark.parametrize(
    ("similarity", "positives", "k"),
    [
        (np.zeros(3), np.array([0]), 1),
        (np.zeros((2, 3)), np.array([0]), 1),
        (np.zeros((2, 3)), np.array([0, 3]), 1),
        (np.zeros((2, 3)), np.array([0.0, 1.0]), 1),
        (np.zeros((2, 3)), np.array([0, 1]), 0),
    ],
)
def test_mining_rejects_bad_inputs(similarity, positives, k):
    with pytest.raises(ValueError):
        mine_hard_negatives(similarity, positives, threshold=0.5, k=k)
