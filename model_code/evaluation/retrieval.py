"""Retrieval evaluation over L2-normalised embeddings (cosine similarity = dot product).

Scores are computed in float64, `batch` queries at a time (memory stays at [batch, m] however many
queries there are), with excluded candidates masked to -inf. `rank_candidates` lists the best
candidates by descending score, ties by candidate index (lower first).

Reports rank each query's target among all candidates, and a tie never decides a figure: candidates
whose score is within `TIE_TOLERANCE` of the target's (relative, for scores beyond +-1) are tied
with it, and every metric counts the target in expectation over the order of its tied candidates
(`model_code.evaluation.metrics`). Identical items score the same, yet two BLAS kernels, or two
computation paths, round their scores apart by a few units in the last place; breaking such ties by
index made a figure depend on the machine. A model whose vectors have collapsed to one point scores
exactly chance (recall@k = k / candidates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import numpy as np

from model_code.evaluation.metrics import (
    _check_k,
    hit_rate_from_ranks,
    mrr_from_ranks,
    ndcg_from_ranks,
)

ScoreRows = Callable[[slice], np.ndarray]
Exclusions = Sequence[np.ndarray | set[int]]

_BATCH = 1024
TIE_TOLERANCE = 1e-6  # far above float32 rounding of a cosine, far below real gaps between items


class TargetRanks(NamedTuple):
    """Per query: candidates scoring above its target (`ahead`) and others tied with it."""

    ahead: np.ndarray
    tied: np.ndarray


def _unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    """Validate a non-empty, finite [n, d] array of L2-normalised rows; return it as float32."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array [n, d], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite")
    norms = np.linalg.norm(x, axis=1)
    if not np.allclose(norms, 1.0, atol=1e-3):
        span = f"[{norms.min():.4g}, {norms.max():.4g}]"
        raise ValueError(f"{name} rows must be L2-normalised, got norms in {span}")
    return x


def _dot_scores(queries: np.ndarray, candidates: np.ndarray) -> tuple[ScoreRows, int, int]:
    """Validate two embedding sets of equal width; return a batched dot-product scorer, n and m."""
    queries = _unit_rows(queries, "queries")
    candidates = _unit_rows(candidates, "candidates")
    if queries.shape[1] != candidates.shape[1]:
        raise ValueError(
            f"queries have dimension {queries.shape[1]}, candidates {candidates.shape[1]}"
        )
    queries, candidates = queries.astype(np.float64), candidates.astype(np.float64)
    return lambda rows: queries[rows] @ candidates.T, len(queries), len(candidates)


def _targets(targets: np.ndarray, n: int, m: int) -> np.ndarray:
    """Validate one candidate index in [0, m) per query."""
    targets = np.asarray(targets)
    if targets.shape != (n,) or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be {n} integer indices, got {targets.dtype}{targets.shape}")
    if (targets < 0).any() or (targets >= m).any():
        raise ValueError(f"targets must be candidate indices in [0, {m})")
    return targets


def _check_ks(ks: Sequence[int], m: int) -> None:
    """Raise unless ks is a non-empty list of cut-offs in [1, m]."""
    if len(ks) == 0:
        raise ValueError("ks must name at least one cut-off")
    for k in ks:
        _check_k(k, m, "candidates")


def _exclusions(
    exclude: Exclusions, n: int, m: int, targets: np.ndarray | None = None
) -> list[np.ndarray]:
    """Validate per-query excluded candidate indices (never a query's own target)."""
    if len(exclude) != n:
        raise ValueError(f"exclude has {len(exclude)} entries, expected one per query ({n})")
    out = []
    for i, excluded in enumerate(exclude):
        if isinstance(excluded, set | frozenset):
            excluded = sorted(excluded)
        excluded = np.asarray(excluded).ravel()
        if excluded.size and (
            not np.issubdtype(excluded.dtype, np.integer)
            or excluded.min() < 0
            or excluded.max() >= m
        ):
            raise ValueError(f"exclude[{i}] must hold candidate indices in [0, {m})")
        if targets is not None and np.isin(targets[i], excluded):
            raise ValueError(f"query {i}: target {targets[i]} is among its own excluded items")
        out.append(excluded.astype(np.int64))
    return out


def _score_blocks(
    score_rows: ScoreRows, n: int, excluded: list[np.ndarray] | None, batch: int
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (rows, scores [rows, m]) per batch of queries, excluded candidates set to -inf."""
    if isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    for start in range(0, n, batch):
        rows = slice(start, min(start + batch, n))
        scores = score_rows(rows)
        if excluded is not None:
            block = excluded[rows]
            lengths = [len(e) for e in block]
            scores[np.repeat(np.arange(len(block)), lengths), np.concatenate(block)] = -np.inf
        yield rows, scores


def _top_k(scores: np.ndarray, k: int, start: int) -> np.ndarray:
    """Indices of the k best scores per row, descending, ties by index; O(m) per row."""
    m = scores.shape[1]
    kth = np.partition(scores, m - k, axis=1)[:, m - k, None]
    short = np.flatnonzero(np.isneginf(kth[:, 0]))
    if short.size:
        raise ValueError(f"query {start + short[0]} has fewer than k={k} candidates left")
    keep = scores >= kth
    crowded = np.flatnonzero(keep.sum(axis=1) > k)
    keep[crowded] = _first_k(scores[crowded], kth[crowded], k)
    top = np.nonzero(keep)[1].reshape(-1, k)
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def _first_k(scores: np.ndarray, kth: np.ndarray, k: int) -> np.ndarray:
    """Mask of each row's k best where ties straddle the cut-off: tied ones by lowest index."""
    above = scores > kth
    tied = scores == kth
    return above | (tied & (np.cumsum(tied, axis=1) <= k - above.sum(axis=1, keepdims=True)))


def _target_ranks(scores: np.ndarray, targets: np.ndarray) -> TargetRanks:
    """Each row's target against its candidates: how many score above it, how many tie with it."""
    target_scores = scores[np.arange(len(targets)), targets][:, None]
    tolerance = TIE_TOLERANCE * np.maximum(1.0, np.abs(target_scores))
    ahead = (scores > target_scores + tolerance).sum(axis=1)
    tied = (np.abs(scores - target_scores) <= tolerance).sum(axis=1) - 1  # not the target itself
    return TargetRanks(ahead, tied)


def _ranks(
    score_rows: ScoreRows, n: int, m: int, targets: np.ndarray, exclude: Exclusions | None = None
) -> TargetRanks:
    """Rank of every query's target among all its non-excluded candidates."""
    targets = _targets(targets, n, m)
    excluded = None if exclude is None else _exclusions(exclude, n, m, targets)
    blocks = _score_blocks(score_rows, n, excluded, _BATCH)
    ranks = [_target_ranks(scores, targets[rows]) for rows, scores in blocks]
    return TargetRanks(*(np.concatenate(part) for part in zip(*ranks, strict=True)))


def _next_item(
    score_rows: ScoreRows,
    shape: tuple[int, int],
    targets: np.ndarray,
    seen: Exclusions,
    ks: Sequence[int],
) -> dict[str, float]:
    """HR@k and NDCG@k of each user's target, ranked among all items minus the user's seen ones."""
    _check_ks(ks, shape[1])
    ranks = _ranks(score_rows, *shape, targets, seen)
    return {
        **{f"hr@{k}": hit_rate_from_ranks(ranks.ahead, k, ranks.tied) for k in ks},
        **{f"ndcg@{k}": ndcg_from_ranks(ranks.ahead, k, ranks.tied) for k in ks},
    }


def rank_candidates(
    queries: np.ndarray,
    candidates: np.ndarray,
    k: int,
    exclude: Exclusions | None = None,
    batch: int = _BATCH,
) -> np.ndarray:
    """Top-k candidate indices [n, k] per query by cosine similarity, best first.

    exclude[i] lists candidates never returned for query i. k above the number of candidates, or
    above those left after exclusion, raises ValueError.
    """
    score_rows, n, m = _dot_scores(queries, candidates)
    _check_k(k, m, "candidates")
    excluded = None if exclude is None else _exclusions(exclude, n, m)
    blocks = _score_blocks(score_rows, n, excluded, batch)
    return np.concatenate([_top_k(scores, k, rows.start) for rows, scores in blocks])


def neighbour_recall(scores: np.ndarray, found: Sequence[int], k: int) -> float:
    """The fraction of k that `found` (one query's top k by an approximate search) holds of the
    exact top k: found candidates whose exact `scores` reach the k-th best, within the tie
    tolerance, so that a tie at the cut-off never costs a hit (as ann-benchmarks counts recall).
    Excluded candidates score -inf."""
    scores = np.asarray(scores, dtype=np.float64)
    _check_k(k, int(np.isfinite(scores).sum()), "candidates left")
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]
    reached = scores[np.asarray(found, dtype=np.int64)] >= kth - TIE_TOLERANCE * max(1.0, abs(kth))
    return float(reached.sum() / k)


def retrieval_report(
    queries: np.ndarray,
    candidates: np.ndarray,
    targets: np.ndarray,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """`recall@k` (single target: is it in the top k) for each k, and `mrr`, over all candidates."""
    score_rows, n, m = _dot_scores(queries, candidates)
    _check_ks(ks, m)
    ranks = _ranks(score_rows, n, m, targets)
    recalls = {f"recall@{k}": hit_rate_from_ranks(ranks.ahead, k, ranks.tied) for k in ks}
    return {**recalls, "mrr": mrr_from_ranks(ranks.ahead, ranks.tied)}


def cross_modal_report(
    text_vecs: np.ndarray, image_vecs: np.ndarray, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Text-to-image and image-to-text recall@k over paired rows, and bijective accuracy.

    bijective_accuracy is the fraction of pairs that are each other's first-ranked match both ways
    (a pair tied for first counts its chance of coming first both ways).
    """
    text_to_image, n, m = _dot_scores(text_vecs, image_vecs)
    if m != n:
        raise ValueError(f"{n} texts but {m} images: rows must pair up")
    _check_ks(ks, n)
    image_to_text = _dot_scores(image_vecs, text_vecs)[0]
    pairs = np.arange(n)
    t2i = _ranks(text_to_image, n, n, pairs)
    i2t = _ranks(image_to_text, n, n, pairs)
    return {
        **{f"t2i_recall@{k}": hit_rate_from_ranks(t2i.ahead, k, t2i.tied) for k in ks},
        **{f"i2t_recall@{k}": hit_rate_from_ranks(i2t.ahead, k, i2t.tied) for k in ks},
        "bijective_accuracy": float(np.mean(_first(t2i) * _first(i2t))),
    }


def _first(ranks: TargetRanks) -> np.ndarray:
    """Each target's chance of being ranked first (1 / (tied + 1) when nothing scores above it)."""
    return (ranks.ahead == 0) / (ranks.tied + 1.0)


def next_item_report(
    user_vecs: np.ndarray,
    item_vecs: np.ndarray,
    targets: np.ndarray,
    seen: Exclusions,
    ks: Sequence[int] = (10,),
) -> dict[str, float]:
    """`hr@k` and `ndcg@k` of each user's target item by cosine similarity.

    Ranks all items per user except seen[u], as score_ranking_report does.
    """
    score_rows, n, m = _dot_scores(user_vecs, item_vecs)
    return _next_item(score_rows, (n, m), targets, seen, ks)


def score_ranking_report(
    scores: np.ndarray, targets: np.ndarray, seen: Exclusions, ks: Sequence[int] = (10,)
) -> dict[str, float]:
    """`hr@k` and `ndcg@k` from a precomputed [users, items] score matrix (higher is better).

    Every user's target is ranked among all items except seen[u] (the user's training items); a
    target inside its own seen list raises ValueError.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or 0 in scores.shape or not np.issubdtype(scores.dtype, np.number):
        raise ValueError(f"scores must be a non-empty numeric 2-D array, got {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    return _next_item(lambda rows: scores[rows].astype(np.float64), scores.shape, targets, seen, ks)
