"""Adaptive multi-source balancing: sampling weights from train/eval embedding overlap.

Each training set and each evaluation set is summarised by k-means centroids of its
(early-checkpoint) embeddings. A training set's score against an evaluation set is
sum(plan * similarity), where similarity is the cosine between the two centroid sets and plan is
the entropic optimal-transport (Sinkhorn) plan for the cost 1 - similarity. Scores are averaged
over evaluation sets; each set's configured weight is then scaled by exp(score / temperature),
with the temperature in the scores' own unit (cosine similarity), and the result normalised.
Equal scores keep the configured weights; a set scoring one temperature higher than another gets
e times its configured share relative to it, however many sets there are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import softmax
from sklearn.cluster import KMeans

KMEANS_N_INIT = 4
DEFAULT_TEMPERATURE = 0.05  # cosine similarity: 0.05 higher -> e times the configured share


@dataclass(frozen=True)
class BalanceResult:
    """Sampling weights per training set and the raw score matrix behind them.

    `scores[i, j]` is training set `train_names[i]` against evaluation set `eval_names[j]`.
    """

    weights: dict[str, float]
    scores: np.ndarray
    train_names: list[str]
    eval_names: list[str]

    def score_table(self) -> dict[str, dict[str, float]]:
        """The score matrix as {train name: {eval name: score}}, e.g. for logging."""
        return {
            train: {name: float(s) for name, s in zip(self.eval_names, row, strict=True)}
            for train, row in zip(self.train_names, self.scores, strict=True)
        }


def _matrix(x: np.ndarray, name: str) -> np.ndarray:
    """`x` as a finite, non-empty float64 [n, d] array."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty [n, d] array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds non-finite values")
    return x


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of `x` scaled to unit L2 norm (zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def kmeans_centroids(embeddings: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """L2-normalised k-means centroids [min(k, n), d] of the L2-normalised `embeddings`."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x = l2_normalise(_matrix(embeddings, "embeddings"))
    kmeans = KMeans(n_clusters=min(k, len(x)), n_init=KMEANS_N_INIT, random_state=seed)
    return l2_normalise(kmeans.fit(x).cluster_centers_)


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """Max-shifted log(sum(exp(x))) along `axis` (scipy's is slow on small arrays)."""
    peak = x.max(axis=axis, keepdims=True)
    return (peak + np.log(np.exp(x - peak).sum(axis=axis, keepdims=True))).squeeze(axis)


def _log_marginal(weights: np.ndarray | None, size: int, name: str) -> np.ndarray:
    """Log of a marginal summing to 1: uniform when `weights` is None."""
    if weights is None:
        return np.full(size, -np.log(size))
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (size,) or not np.isfinite(weights).all() or (weights <= 0).any():
        raise ValueError(f"{name} must be {size} positive finite values, got {weights}")
    return np.log(weights / weights.sum())


def sinkhorn(
    cost: np.ndarray,
    reg: float = 0.05,
    iters: int = 200,
    a_weights: np.ndarray | None = None,
    b_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Entropic optimal-transport plan [a, b] for `cost`, by log-domain Sinkhorn iterations.

    Marginals are uniform unless `a_weights` / `b_weights` (positive, normalised here) are given.
    The column marginals are exact after the last iteration; the row marginals converge.
    """
    cost = _matrix(cost, "cost")
    if reg <= 0 or iters < 1:
        raise ValueError(f"reg must be > 0 and iters >= 1, got reg={reg}, iters={iters}")
    log_a = _log_marginal(a_weights, cost.shape[0], "a_weights")
    log_b = _log_marginal(b_weights, cost.shape[1], "b_weights")
    kernel = -cost / reg
    f = np.zeros(cost.shape[0])
    g = np.zeros(cost.shape[1])
    for _ in range(iters):
        f = log_a - _logsumexp(kernel + g[None, :], axis=1)
        g = log_b - _logsumexp(kernel + f[:, None], axis=0)
    return np.exp(kernel + f[:, None] + g[None, :])


def source_score(
    train_centroids: np.ndarray, eval_centroids: np.ndarray, reg: float = 0.05
) -> float:
    """sum(plan * similarity): cosine similarity of the centroid sets under their Sinkhorn plan."""
    similarity = (
        l2_normalise(_matrix(train_centroids, "train_centroids"))
        @ l2_normalise(_matrix(eval_centroids, "eval_centroids")).T
    )
    plan = sinkhorn(1.0 - similarity, reg=reg)
    return float((plan * similarity).sum())


def balance_weights(
    train_sets: Mapping[str, np.ndarray],
    eval_sets: Mapping[str, np.ndarray],
    k: int = 8,
    temperature: float = DEFAULT_TEMPERATURE,
    reg: float = 0.05,
    seed: int = 0,
    priors: Mapping[str, float] | None = None,
) -> BalanceResult:
    """Sampling weight per training set: prior * exp(mean score over eval sets / temperature),
    normalised. `priors` are the configured weights (default: equal); `temperature` is in cosine
    units, so the weights follow how far apart the scores are, not only their order."""
    if not train_sets or not eval_sets:
        raise ValueError("train_sets and eval_sets must each hold at least one set")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    train_names, eval_names = list(train_sets), list(eval_sets)
    prior = np.array([(priors or {}).get(name, 1.0) for name in train_names], dtype=np.float64)
    if not np.isfinite(prior).all() or (prior <= 0).any():
        raise ValueError(f"priors must be positive finite weights, got {dict(priors or {})}")
    train_centroids = [kmeans_centroids(train_sets[name], k, seed) for name in train_names]
    eval_centroids = [kmeans_centroids(eval_sets[name], k, seed) for name in eval_names]
    scores = np.array([[source_score(t, e, reg) for e in eval_centroids] for t in train_centroids])
    weights = softmax(np.log(prior) + scores.mean(axis=1) / temperature)
    return BalanceResult(
        weights={name: float(w) for name, w in zip(train_names, weights, strict=True)},
        scores=scores,
        train_names=train_names,
        eval_names=eval_names,
    )
