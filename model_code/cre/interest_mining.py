"""User historical interest mining: the (context, next item) sequences for sequence-to-item.

Every sequence comes from one user's time-ordered TRAIN positive history (the `history` column of
`sequences.parquet`, which already leaves out the validation and test items); the target is always
a history item and its context holds only items that came before it, in time order.

Modes (`kind` labels in brackets, the source being `content` or `collab`):

- recent (`recent`): the plain baseline; the context is the `window` items just before the target.
- single-interest (`<source>-single`): target-aware. Of the items before the target, keep those
  whose similarity to the target is above the threshold, take the `window` most similar (ties: the
  more recent) and put them back in time order: one coherent interest that explains the target.
- multi-interest (`<source>-multi`): target-agnostic. The whole history is split into interests by
  greedy average-linkage grouping in time order (an item joins the interest it is most similar to on
  average if that is above the threshold, otherwise it starts a new one); each interest is then slid
  like `recent` on its own sub-history, so a user yields sequences for each of their interests.

Similarity is an [m, m] item matrix: cosine of content embeddings, or the Jaccard co-engagement of
`co_engagement_similarity`. Their scales differ, so the default threshold is per user and
scale-free: the median similarity over all pairs of the user's history items.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse

MODES = ("recent", "single", "multi")
SOURCES = ("recent", "content", "collab")

Histories = Mapping[str, Sequence[str]]
Positions = list[tuple[list[int], int]]  # (context positions, target position) in one history


@dataclass(frozen=True)
class InterestSequence:
    """A training example for sequence-to-item: time-ordered context items and the next item."""

    user_id: str
    context: list[str]
    target: str
    kind: str


class EvaluationContext(NamedTuple):
    """A held-out example: the user's last items before the target."""

    user_id: str
    context: list[str]
    target: str


def train_histories(sequences: pd.DataFrame) -> dict[str, list[str]]:
    """User id -> time-ordered train positive history, from a `sequences.parquet` frame."""
    users, histories = sequences["user_id"], sequences["history"]
    return {user: list(history) for user, history in zip(users, histories, strict=True)}


def co_engagement_similarity(histories: Histories, item_ids: Sequence[str]) -> sparse.csr_array:
    """[m, m] Jaccard between items' user sets: |users of a and b| / |users of a or b|."""
    index = _index(item_ids)
    rows, cols = [], []
    for row, history in enumerate(histories.values()):
        items = np.unique(_rows(history, index))
        rows.extend([row] * len(items))
        cols.extend(items.tolist())
    engaged = sparse.csr_array(
        (np.ones(len(rows)), (rows, cols)), shape=(len(histories), len(item_ids))
    )
    both = (engaged.T @ engaged).tocoo()
    users = np.asarray(engaged.sum(axis=0)).ravel()
    union = users[both.row] + users[both.col] - both.data
    return sparse.csr_array((both.data / union, (both.row, both.col)), shape=both.shape)


def content_similarity(content_vectors: np.ndarray, item_ids: Sequence[str]) -> np.ndarray:
    """[m, m] cosine similarity of the items' content embeddings (rows in `item_ids` order)."""
    vectors = np.asarray(content_vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(item_ids):
        raise ValueError(f"content_vectors must be [{len(item_ids)}, d], got {vectors.shape}")
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors @ vectors.T


def mine_sequences(
    histories: Histories,
    item_ids: Sequence[str],
    similarity: np.ndarray | sparse.sparray | None = None,
    window: int = 10,
    mode: str = "single",
    min_length: int = 2,
    max_per_user: int | None = None,
    threshold: float | None = None,
    seed: int = 0,
    kind: str | None = None,
) -> list[InterestSequence]:
    """Sequences of one mode for every user (see the module docstring), labelled `kind or mode`.

    Contexts hold `min_length` to `window` items. `threshold=None` uses each user's median pairwise
    similarity. `max_per_user` keeps a random subset per user, seeded by `seed` and the user id.
    """
    _check_mining(mode, similarity, window, min_length)
    index = _index(item_ids)
    mined = []
    for user, history in histories.items():
        history = list(history)
        sim = None if mode == "recent" else _submatrix(similarity, _rows(history, index))
        positions = _positions(len(history), sim, mode, window, min_length, threshold)
        for context, target in _subsample(positions, max_per_user, seed, user):
            mined.append(
                InterestSequence(user, [history[p] for p in context], history[target], kind or mode)
            )
    return mined


def build_sequences(
    histories: Histories,
    item_ids: Sequence[str],
    content_vectors: np.ndarray | None = None,
    co_engagement: np.ndarray | sparse.sparray | None = None,
    sources: Iterable[str] = SOURCES,
    modes: Iterable[str] = ("single", "multi"),
    window: int = 10,
    min_length: int = 2,
    max_per_user: int | None = None,
    seed: int = 0,
) -> list[InterestSequence]:
    """The union of `recent` and each similarity source x mode, without duplicate examples.

    `content` needs `content_vectors` [m, d]; `collab` uses `co_engagement`, computed from
    `histories` when not given. A (user, context, target) mined twice keeps its first `kind`.
    """
    mined = []
    for source in sources:
        if source == "recent":
            mined += mine_sequences(
                histories, item_ids, None, window, "recent", min_length, max_per_user, seed=seed
            )
            continue
        similarity = _source_similarity(source, histories, item_ids, content_vectors, co_engagement)
        for mode in modes:
            mined += mine_sequences(
                histories,
                item_ids,
                similarity,
                window,
                mode,
                min_length,
                max_per_user,
                seed=seed,
                kind=f"{source}-{mode}",
            )
    return deduplicate(mined)


def deduplicate(sequences: Iterable[InterestSequence]) -> list[InterestSequence]:
    """The sequences with repeated (user, context, target) dropped, first occurrence kept."""
    kept: dict[tuple, InterestSequence] = {}
    for sequence in sequences:
        kept.setdefault((sequence.user_id, tuple(sequence.context), sequence.target), sequence)
    return list(kept.values())


def evaluation_contexts(
    sequences: pd.DataFrame, window: int = 10, split: str = "validation"
) -> list[EvaluationContext]:
    """Per user, the last `window` items before the held-out target of `split`.

    validation: context from the train history, target `validation_item`; test: context from the
    history followed by the validation item, target `test_item`. Contexts may be shorter than
    `window` (a history can hold a single item).
    """
    if split not in ("validation", "test"):
        raise ValueError(f"split must be 'validation' or 'test', got {split!r}")
    contexts = []
    for row in sequences.itertuples(index=False):
        before = list(row.history) + ([row.validation_item] if split == "test" else [])
        target = row.validation_item if split == "validation" else row.test_item
        contexts.append(EvaluationContext(row.user_id, before[-window:], target))
    return contexts


def _check_mining(mode: str, similarity: object, window: int, min_length: int) -> None:
    """Raise ValueError on an unknown mode, a missing similarity or bad lengths."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode != "recent" and similarity is None:
        raise ValueError(f"mode {mode!r} needs a similarity matrix")
    if not 1 <= min_length <= window:
        raise ValueError(f"need 1 <= min_length <= window, got {min_length} and {window}")


def _source_similarity(
    source: str,
    histories: Histories,
    item_ids: Sequence[str],
    content_vectors: np.ndarray | None,
    co_engagement: np.ndarray | sparse.sparray | None,
) -> np.ndarray | sparse.sparray:
    """The item similarity matrix of one source."""
    if source == "content":
        if content_vectors is None:
            raise ValueError("source 'content' needs content_vectors")
        return content_similarity(content_vectors, item_ids)
    if source == "collab":
        return (
            co_engagement
            if co_engagement is not None
            else co_engagement_similarity(histories, item_ids)
        )
    raise ValueError(f"source must be one of {SOURCES}, got {source!r}")


def _index(item_ids: Sequence[str]) -> dict[str, int]:
    """Item id -> row."""
    return {item: i for i, item in enumerate(item_ids)}


def _rows(items: Iterable[str], index: Mapping[str, int]) -> np.ndarray:
    """Rows of the items; ValueError for an item outside the catalogue."""
    try:
        return np.array([index[item] for item in items], dtype=np.int64)
    except KeyError as error:
        raise ValueError(f"item {error.args[0]!r} is not in item_ids") from None


def _submatrix(similarity: np.ndarray | sparse.sparray, rows: np.ndarray) -> np.ndarray:
    """Dense [n, n] similarity among the given rows."""
    if sparse.issparse(similarity):
        return similarity[rows][:, rows].toarray().astype(np.float64)
    return np.asarray(similarity)[np.ix_(rows, rows)].astype(np.float64)


def _positions(
    length: int,
    sim: np.ndarray | None,
    mode: str,
    window: int,
    min_length: int,
    threshold: float | None,
) -> Positions:
    """(context positions, target position) pairs of one history under `mode`."""
    if mode == "recent":
        return _slide(list(range(length)), window, min_length)
    threshold = _user_threshold(sim) if threshold is None else threshold
    if mode == "single":
        return _single_interest(sim, window, min_length, threshold)
    return [
        pair
        for interest in _greedy_interests(sim, threshold)
        for pair in _slide(interest, window, min_length)
    ]


def _slide(positions: list[int], window: int, min_length: int) -> Positions:
    """Each position with at least `min_length` before it, and up to `window` of those."""
    return [
        (positions[max(0, t - window) : t], positions[t]) for t in range(min_length, len(positions))
    ]


def _user_threshold(sim: np.ndarray) -> float:
    """Median similarity over the pairs of distinct history positions (inf when there are none)."""
    upper = sim[np.triu_indices(len(sim), k=1)]
    return float(np.median(upper)) if upper.size else float("inf")


def _single_interest(sim: np.ndarray, window: int, min_length: int, threshold: float) -> Positions:
    """Per target, the `window` earlier items most similar to it above `threshold`, time-ordered."""
    pairs = []
    for target in range(min_length, len(sim)):
        scores = sim[target, :target]
        above = np.flatnonzero(scores > threshold)
        best = above[np.lexsort((-above, -scores[above]))][:window]
        if len(best) >= min_length:
            pairs.append((sorted(best.tolist()), target))
    return pairs


def _greedy_interests(sim: np.ndarray, threshold: float) -> list[list[int]]:
    """Positions grouped in time order: join the most similar group on average, if above."""
    interests: list[list[int]] = []
    link_sums = np.zeros_like(sim)  # row k: summed similarity of interest k's members to each item
    for position in range(len(sim)):
        links = link_sums[: len(interests), position] / [len(i) for i in interests]
        if links.size and links.max() > threshold:
            best = int(np.argmax(links))
        else:
            best = len(interests)
            interests.append([])
        interests[best].append(position)
        link_sums[best] += sim[position]
    return interests


def _subsample(positions: Positions, limit: int | None, seed: int, user: str) -> Positions:
    """At most `limit` pairs, drawn without replacement by a (seed, user) generator, order kept."""
    if limit is None or len(positions) <= limit:
        return positions
    rng = np.random.default_rng([seed, zlib.crc32(user.encode())])
    return [positions[i] for i in np.sort(rng.choice(len(positions), limit, replace=False))]
