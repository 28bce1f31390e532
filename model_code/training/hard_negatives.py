"""Dynamic hard-negative mining with an F1-optimal false-negative threshold.

Per dataset, positives and negatives are scored with the current model and the cosine threshold
that maximises F1 is chosen. Negatives scoring above it are treated as false negatives (likely
unlabelled positives) and dropped; the hard negatives are the highest-scoring ones at or below it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD_INDEX = -1


@dataclass(frozen=True)
class MinedNegatives:
    """Per-query hard negatives: `indices` [n, k] (PAD_INDEX where `mask` is False), `mask` [n, k]
    (True = a real negative) and `false_negatives` [n], the candidates dropped above the threshold.
    """

    indices: np.ndarray
    mask: np.ndarray
    false_negatives: np.ndarray

    @property
    def total_false_negatives(self) -> int:
        """Candidates dropped as false negatives over all queries."""
        return int(self.false_negatives.sum())


def _scores(x: np.ndarray, name: str) -> np.ndarray:
    """`x` as a finite 1-D float64 array."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise ValueError(f"{name} must be a finite 1-D array, got shape {x.shape}")
    return x


def _count_at_or_above(sorted_scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How many of `sorted_scores` are >= each threshold."""
    return len(sorted_scores) - np.searchsorted(sorted_scores, thresholds, side="left")


def f1_optimal_threshold(
    positive_scores: np.ndarray, negative_scores: np.ndarray
) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of "score >= threshold => positive".

    Candidate thresholds are the sorted unique scores; among equal F1s the lowest threshold wins
    (the conservative choice: more suspect negatives are dropped).
    """
    positives = np.sort(_scores(positive_scores, "positive_scores"))
    negatives = np.sort(_scores(negative_scores, "negative_scores"))
    if positives.size == 0:
        raise ValueError("positive_scores must not be empty")
    candidates = np.unique(np.concatenate([positives, negatives]))
    true_pos = _count_at_or_above(positives, candidates)
    false_pos = _count_at_or_above(negatives, candidates)
    false_neg = len(positives) - true_pos
    f1 = 2 * true_pos / (2 * true_pos + false_pos + false_neg)
    best = int(np.argmax(f1))
    return float(candidates[best]), float(f1[best])


def mine_hard_negatives(
    similarity: np.ndarray, positives: np.ndarray, threshold: float, k: int
) -> MinedNegatives:
    """Up to `k` hard negatives per query: the highest-scoring candidates at or below `threshold`.

    `similarity` is [n_queries, n_candidates]; `positives[i]` is query i's true target, which is
    never returned. Other candidates scoring above `threshold` are counted as false negatives and
    dropped. Rows with fewer than `k` eligible candidates are padded (mask False).
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    positives = np.asarray(positives)
    if similarity.ndim != 2 or not np.isfinite(similarity).all():
        raise ValueError(f"similarity must be a finite 2-D array, got shape {similarity.shape}")
    n, m = similarity.shape
    if positives.shape != (n,) or not np.issubdtype(positives.dtype, np.integer):
        raise ValueError(f"positives must be [{n}] integer indices, got {positives}")
    if ((positives < 0) | (positives >= m)).any():
        raise ValueError(f"positives must index the {m} candidates")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    is_positive = np.zeros((n, m), dtype=bool)
    is_positive[np.arange(n), positives] = True
    eligible = (similarity <= threshold) & ~is_positive
    false_negatives = ((similarity > threshold) & ~is_positive).sum(axis=1)
    ranked = np.argsort(np.where(eligible, -similarity, np.inf), axis=1, kind="stable")[:, :k]
    mask = np.take_along_axis(eligible, ranked, axis=1)
    indices = np.where(mask, ranked, PAD_INDEX)
    pad = k - indices.shape[1]
    return MinedNegatives(
        indices=np.pad(indices, ((0, 0), (0, pad)), constant_values=PAD_INDEX),
        mask=np.pad(mask, ((0, 0), (0, pad)), constant_values=False),
        false_negatives=false_negatives,
    )
