"""Evaluation metrics from the report: retrieval, AUC, NMI, rank agreement, alignment, separation.

Ranking conventions: a `ranked` array holds candidate indices, best first, one row per query. A
`ranks` array holds the 0-based position of each query's single target in its full ranking: the
number of candidates scoring above it. Where other candidates score the same as the target
(`tied`, per query), the target is equally likely to sit anywhere among them, and the
`*_from_ranks` metrics count it in expectation over that order: a figure never depends on how a
tie happens to be broken.
`k` must lie in [1, number of ranked columns]: a larger `k` raises ValueError (it is never clipped).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import digamma
from scipy.stats import kendalltau
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score, roc_auc_score


def _ranked(ranked: np.ndarray, k: int) -> np.ndarray:
    """Validate a [n, >=k] integer array of ranked candidate indices and k."""
    ranked = np.asarray(ranked)
    if ranked.ndim != 2 or ranked.shape[0] == 0:
        raise ValueError(f"ranked must be a non-empty 2-D array [n, k], got shape {ranked.shape}")
    if not np.issubdtype(ranked.dtype, np.integer):
        raise ValueError(f"ranked must hold integer candidate indices, got dtype {ranked.dtype}")
    _check_k(k, ranked.shape[1], "ranked columns")
    return ranked


def _check_k(k: int, limit: int | None = None, what: str = "") -> None:
    """Raise unless k is an integer with 1 <= k (<= limit when given)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if limit is not None and k > limit:
        raise ValueError(f"k={k} exceeds the {limit} {what}")


def _vector(values: np.ndarray, n: int | None, name: str, integer: bool = False) -> np.ndarray:
    """Validate a non-empty 1-D array (of length n when given)."""
    values = np.asarray(values)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {values.shape}")
    if n is not None and values.size != n:
        raise ValueError(f"{name} has {values.size} entries, expected {n}")
    if integer and not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {values.dtype}")
    if not integer and not np.isfinite(values.astype(float)).all():
        raise ValueError(f"{name} must be finite")
    return values


def target_positions(ranked: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Position of each target within the first k of its ranked row, or k where it is absent."""
    ranked = _ranked(ranked, k)
    targets = _vector(targets, ranked.shape[0], "targets", integer=True)
    match = ranked[:, :k] == targets[:, None]
    return np.where(match.any(axis=1), match.argmax(axis=1), k)


def _valid_ranks(
    ranks: np.ndarray, tied: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate 1-D arrays of non-negative integer target ranks and tie counts (zeros if None)."""
    ranks = _vector(ranks, None, "ranks", integer=True)
    if (ranks < 0).any():
        raise ValueError("ranks must be non-negative (0 = ranked first)")
    if tied is None:
        return ranks, np.zeros_like(ranks)
    tied = _vector(tied, ranks.size, "tied", integer=True)
    if (tied < 0).any():
        raise ValueError("tied must be non-negative (other candidates tied with the target)")
    return ranks, tied


def hit_rate_from_ranks(ranks: np.ndarray, k: int, tied: np.ndarray | None = None) -> float:
    """Fraction of queries whose target rank is below k; a target tied with others counts
    min(1, max(0, k - rank) / (tied + 1)), its chance of landing in the top k."""
    _check_k(k)
    ranks, tied = _valid_ranks(ranks, tied)
    return float(np.mean(np.clip((k - ranks) / (tied + 1.0), 0.0, 1.0)))


def ndcg_from_ranks(ranks: np.ndarray, k: int, tied: np.ndarray | None = None) -> float:
    """Mean binary single-target NDCG@k: 1 / log2(rank + 2) when rank < k, else 0 (averaged
    over the positions rank .. rank + tied a tied target is equally likely to take)."""
    _check_k(k)
    ranks, tied = _valid_ranks(ranks, tied)
    gains = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))])
    reached = gains[np.minimum(ranks + tied + 1, k)] - gains[np.minimum(ranks, k)]
    return float(np.mean(reached / (tied + 1.0)))


def mrr_from_ranks(ranks: np.ndarray, tied: np.ndarray | None = None) -> float:
    """Mean reciprocal rank, 1 / (rank + 1), over the full ranking (averaged over the positions
    a tied target is equally likely to take: harmonic numbers by the digamma function)."""
    ranks, tied = _valid_ranks(ranks, tied)
    return float(np.mean((digamma(ranks + tied + 2.0) - digamma(ranks + 1.0)) / (tied + 1.0)))


def recall_at_k(ranked: np.ndarray, relevant: Sequence[set[int]] | np.ndarray, k: int) -> float:
    """Mean over queries of |top-k ∩ relevant| / |relevant|.

    relevant: one set of candidate indices per query, or an integer array with one index per query.
    """
    ranked = _ranked(ranked, k)
    if isinstance(relevant, np.ndarray):
        relevant = [{int(t)} for t in _vector(relevant, ranked.shape[0], "relevant", integer=True)]
    if len(relevant) != ranked.shape[0]:
        raise ValueError(f"relevant has {len(relevant)} entries, expected {ranked.shape[0]}")
    if any(len(r) == 0 for r in relevant):
        raise ValueError("every query needs at least one relevant candidate")
    pairs = zip(ranked[:, :k].tolist(), relevant, strict=True)
    found = [len(set(top) & set(r)) / len(r) for top, r in pairs]
    return float(np.mean(found))


def hit_rate_at_k(ranked: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Fraction of queries whose single target is in their top k."""
    return hit_rate_from_ranks(target_positions(ranked, targets, k), k)


def ndcg_at_k(ranked: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Mean binary single-target NDCG@k: 1 / log2(position + 2) if the target is in the top k."""
    return ndcg_from_ranks(target_positions(ranked, targets, k), k)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of scores against binary labels (0/1 or bool); both classes must be present."""
    scores = _vector(scores, None, "scores")
    labels = _vector(labels, scores.size, "labels")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be binary (0/1 or bool)")
    if np.unique(labels).size < 2:
        raise ValueError("AUC needs both positive and negative labels")
    return float(roc_auc_score(labels.astype(int), scores))


def nmi(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """Normalised mutual information between two labellings of the same samples."""
    labels_true = np.asarray(labels_true)
    labels_pred = np.asarray(labels_pred)
    if labels_true.ndim != 1 or labels_true.size == 0 or labels_pred.shape != labels_true.shape:
        raise ValueError(
            f"labels must be two non-empty 1-D arrays of equal length, "
            f"got shapes {labels_true.shape} and {labels_pred.shape}"
        )
    return float(normalized_mutual_info_score(labels_true, labels_pred))


def cluster_nmi(
    embeddings: np.ndarray, labels: np.ndarray, n_clusters: int | None = None, seed: int = 0
) -> float:
    """NMI of k-means clusters of the embeddings against labels (n_clusters: #labels by default)."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or embeddings.shape[0] == 0:
        raise ValueError(f"embeddings must be a non-empty 2-D array, got {embeddings.shape}")
    labels = np.asarray(labels)
    if labels.shape != (embeddings.shape[0],):
        raise ValueError(f"labels must have shape ({embeddings.shape[0]},), got {labels.shape}")
    n_clusters = np.unique(labels).size if n_clusters is None else n_clusters
    _check_k(n_clusters, embeddings.shape[0], "samples (at most one cluster per sample)")
    kmeans = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed)
    return nmi(labels, kmeans.fit_predict(embeddings))


def kendall_tau(scores_a: np.ndarray, scores_b: np.ndarray) -> float:
    """Kendall's tau-b between two score lists over the same items."""
    scores_a = _vector(scores_a, None, "scores_a")
    scores_b = _vector(scores_b, scores_a.size, "scores_b")
    if scores_a.size < 2:
        raise ValueError("kendall_tau needs at least two items")
    tau = kendalltau(scores_a, scores_b).statistic
    if np.isnan(tau):
        raise ValueError("kendall_tau is undefined when either score list is constant")
    return float(tau)


def top_k_overlap(ranking_a: np.ndarray, ranking_b: np.ndarray, k: int) -> float:
    """|top-k of a ∩ top-k of b| / k for two rankings (item ids, best first)."""
    ranking_a = _vector(ranking_a, None, "ranking_a", integer=True)
    ranking_b = _vector(ranking_b, None, "ranking_b", integer=True)
    _check_k(k, min(ranking_a.size, ranking_b.size), "items of the shorter ranking")
    top_a, top_b = set(ranking_a[:k].tolist()), set(ranking_b[:k].tolist())
    if len(top_a) < k or len(top_b) < k:
        raise ValueError("rankings must not repeat an item within their top k")
    return len(top_a & top_b) / k


def bijective_alignment_accuracy(sim: np.ndarray) -> float:
    """Fraction of i whose row-i and column-i argmax are both i (mutual nearest neighbours)."""
    sim = np.asarray(sim)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1] or sim.shape[0] == 0:
        raise ValueError(f"sim must be a non-empty square matrix, got shape {sim.shape}")
    index = np.arange(sim.shape[0])
    return float(np.mean((sim.argmax(axis=1) == index) & (sim.argmax(axis=0) == index)))


def separation(positive_scores: np.ndarray, negative_scores: np.ndarray) -> dict[str, float]:
    """Mean positive and negative similarity, their gap, and d' = gap / pooled std.

    The pooled std is sqrt((var_pos + var_neg) / 2) with population variances; when it is 0, d' is
    ±inf (or nan for a zero gap).
    """
    positive = _vector(positive_scores, None, "positive_scores").astype(np.float64)
    negative = _vector(negative_scores, None, "negative_scores").astype(np.float64)
    gap = positive.mean() - negative.mean()
    pooled = np.sqrt((positive.var() + negative.var()) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_prime = gap / pooled
    return {
        "mean_positive": float(positive.mean()),
        "mean_negative": float(negative.mean()),
        "gap": float(gap),
        "d_prime": float(d_prime),
    }
