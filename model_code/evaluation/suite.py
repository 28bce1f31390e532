"""The evaluation suite on the held-out splits: openclipart text<->image, MovieLens next item.

Functions here take an `Embedder` (and, for users, a sequence pooler) and return flat metric
dicts, so any stage's checkpoint and the baselines are measured the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import Ridge

from model_code import compact
from model_code.data.catalogue import caption_of, drawing_of, movielens_items, openclipart_items
from model_code.embed import Embedder
from model_code.evaluation.retrieval import (
    cross_modal_report,
    next_item_report,
    score_ranking_report,
)
from model_code.items import Item
from model_code.model import truncate
from model_code.paths import feature_cache_dir
from model_code.training.stages import load_stage

RIDGE_ALPHA = 10.0  # the frozen ridge baseline's regularisation (the shortcut's is a stage key)


def _fitting(ks, candidates: int) -> tuple[int, ...]:
    """The cut-offs a split this small can answer (a tiny test split has fewer than 10 pairs)."""
    return tuple(k for k in ks if k <= candidates) or (candidates,)


# The stage and data set whose instructions each catalogue is embedded with, here and when it is
# published: openclipart as the content stages train it, movies as the CRE stages do (their
# instruction reaches the movie adapter).
CATALOGUE_DATASETS = {
    "openclipart": ("content2", "openclipart"),
    "movielens": ("seq2item", "movielens-sequences"),
}


def catalogue_instructions(catalogue: str) -> dict[str, str]:
    """The query and target instructions a catalogue's items were trained with."""
    stage, dataset = CATALOGUE_DATASETS[catalogue]
    return load_stage(stage).dataset(dataset).instructions


def openclipart_retrieval(
    embedder: Embedder,
    pairs: pd.DataFrame,
    ks=(1, 5, 10),
    dims: tuple[int | None, ...] = (None,),
    encodings: tuple[str, ...] = ("float",),
) -> dict:
    """Text->image and image->text recall@k over one split (each row is a caption/drawing pair).

    With several Matryoshka `dims`, returns {dim: report}, each from the same full-size vectors;
    with compact `encodings` (`model_code.compact`), {(dim, encoding): report}, both sides scored
    as their codes rank them.
    """
    return retrieval_reports(*pair_vectors(embedder, pairs), ks, dims, encodings)


def retrieval_reports(
    text: np.ndarray,
    image: np.ndarray,
    ks=(1, 5, 10),
    dims: tuple[int | None, ...] = (None,),
    encodings: tuple[str, ...] = ("float",),
) -> dict:
    """`openclipart_retrieval` from the pairs' vectors (`pair_vectors`)."""
    reports = {
        key: cross_modal_report(
            prefix(text, dim, encoding), prefix(image, dim, encoding), _fitting(ks, len(text))
        )
        for key, dim, encoding in _cuts(dims, encodings)
    }
    return reports[None] if len(reports) == 1 and None in reports else reports


def pair_vectors(embedder: Embedder, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each pair's caption (as a query) and drawing (as a target) embedded, in row order."""
    items = openclipart_items(pairs)
    captions, drawings = [caption_of(i) for i in items], [drawing_of(i) for i in items]
    instructions = catalogue_instructions("openclipart")
    text = embedder.embed(captions, side="query", instruction=instructions["query"]).vectors
    image = embedder.embed(drawings, instruction=instructions["target"]).vectors
    return text, image


def _cuts(dims, encodings) -> list[tuple]:
    """(report key, dim, encoding) per size and encoding: keyed by dim for float alone."""
    if tuple(encodings) == ("float",):
        return [(dim, dim, "float") for dim in dims]
    return [((dim, encoding), dim, encoding) for dim in dims for encoding in encodings]


def prefix(vectors: np.ndarray, dim: int | None, encoding: str = "float") -> np.ndarray:
    """The Matryoshka prefix of unit vectors, re-normalised (the vectors themselves for None or
    the full width), as its `encoding`'s codes rank it (`model_code.compact.roundtrip`)."""
    if encoding != "float":
        return compact.roundtrip(vectors, encoding, dim)
    if dim is None or dim >= vectors.shape[1]:
        return vectors
    return truncate(torch.from_numpy(vectors), dim).numpy()


def frozen_ridge_baseline(
    embedder: Embedder,
    train: pd.DataFrame,
    test: pd.DataFrame,
    alpha: float = RIDGE_ALPHA,
    ks=(1, 5, 10),
) -> dict:
    """The frozen-encoder baseline: pooled vision-tower features mapped into the frozen text
    space by ridge regression fitted on the train split, evaluated on the test split."""
    return ridge_report(embedder, fit_ridge(embedder, train, alpha), test, ks)


def fit_ridge(embedder: Embedder, train: pd.DataFrame, alpha: float = RIDGE_ALPHA) -> Ridge:
    """Ridge regression from pooled vision-tower features to the frozen caption vectors."""
    features = image_features(embedder, openclipart_items(train))
    return Ridge(alpha=alpha).fit(features, caption_vectors(embedder, train))


def ridge_report(embedder: Embedder, ridge: Ridge, pairs: pd.DataFrame, ks=(1, 5, 10)) -> dict:
    """Text<->image recall with each drawing represented by its ridge-mapped vision features."""
    mapped = ridge.predict(image_features(embedder, openclipart_items(pairs)))
    mapped /= np.linalg.norm(mapped, axis=1, keepdims=True)
    return cross_modal_report(
        caption_vectors(embedder, pairs), mapped.astype(np.float32), _fitting(ks, len(pairs))
    )


def caption_vectors(embedder: Embedder, pairs: pd.DataFrame) -> np.ndarray:
    """Each pair's caption as a query, with the instruction its data set trains with."""
    captions = [caption_of(item) for item in openclipart_items(pairs)]
    instruction = catalogue_instructions("openclipart")["query"]
    return embedder.embed(captions, side="query", instruction=instruction, progress=False).vectors


@torch.inference_mode()
def image_features(embedder: Embedder, items: list[Item], batch_size: int = 32) -> np.ndarray:
    """Mean-pooled vision-tower features of each item's image (no Perceiver, no fuser)."""
    processor, vision = embedder.processor, embedder.model.vision
    features = []
    for start in range(0, len(items), batch_size):
        rows = items[start : start + batch_size]
        pixels = [processor.prepare(drawing_of(i)).frames[0] for i in rows]
        tokens = vision.tower_features(torch.stack(pixels).to(embedder.device))
        features.append(tokens.mean(1).cpu().numpy())
    return np.concatenate(features)


def movie_vectors(embedder: Embedder, items: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Every movie of the catalogue embedded as a target item."""
    instruction = catalogue_instructions("movielens")["target"]
    result = embedder.embed(movielens_items(items), instruction=instruction)
    return result.ids, result.vectors


def user_contexts(sequences: pd.DataFrame, split: str, window: int) -> tuple[list, list, list]:
    """Per user: the last `window` items before the held-out one, the target, every item before it
    (the items excluded from the ranking)."""
    from model_code.cre.interest_mining import evaluation_contexts

    examples = evaluation_contexts(sequences, window, split)
    everything = max(len(h) for h in sequences["history"]) + 1
    seen = [e.context for e in evaluation_contexts(sequences, everything, split)]
    return [e.context for e in examples], [e.target for e in examples], seen


@torch.inference_mode()
def movielens_next_item(
    embedder: Embedder,
    tables: dict[str, pd.DataFrame],
    split: str = "test",
    window: int = 10,
    ks=(10,),
    dims: tuple[int | None, ...] = (None,),
    encodings: tuple[str, ...] = ("float",),
) -> dict:
    """HR@k / NDCG@k of ranking ALL movies for each user's held-out positive; the user vector is
    the model's sequence pooler over the last `window` items before it (at full size; users and
    items are then cut to each Matryoshka size of `dims` and coded in each of `encodings`, keyed
    as `openclipart_retrieval` keys them)."""
    return next_item_reports(user_vectors(embedder, tables, split, window), ks, dims, encodings)


def next_item_reports(
    users: Users,
    ks=(10,),
    dims: tuple[int | None, ...] = (None,),
    encodings: tuple[str, ...] = ("float",),
) -> dict:
    """`movielens_next_item` from the users' and movies' vectors (`user_vectors`)."""
    reports = {
        key: next_item_report(
            prefix(users.vectors, dim, encoding),
            prefix(users.movies, dim, encoding),
            users.targets,
            users.seen,
            ks,
        )
        for key, dim, encoding in _cuts(dims, encodings)
    }
    return reports[None] if len(reports) == 1 and None in reports else reports


@dataclass
class Users:
    """The held-out users of a split: their vectors, their context (the last `window` items
    before the held-out one), target and seen items as rows of `movies` (every movie,
    embedded as a target; ids in `movie_ids`)."""

    movie_ids: list[str]
    movies: np.ndarray
    vectors: np.ndarray
    contexts: list[list[int]]
    targets: np.ndarray
    seen: list[np.ndarray]


@torch.inference_mode()
def user_vectors(embedder: Embedder, tables, split: str = "test", window: int = 10) -> Users:
    """Each held-out user as the model's sequence pooler over their context (unit vectors)."""
    ids, vectors = movie_vectors(embedder, tables["items"])
    index = {item_id: row for row, item_id in enumerate(ids)}
    contexts, targets, seen = user_contexts(tables["sequences"], split, window)
    rows = [[index[i] for i in context] for context in contexts]
    users = embedder.model.eval().pool_sequences(torch.from_numpy(vectors), rows)
    return Users(
        ids,
        vectors,
        users.numpy().astype(np.float32),
        rows,
        np.array([index[t] for t in targets]),
        [np.array([index[i] for i in s]) for s in seen],
    )


def score_baseline(scores: np.ndarray, item_ids: list[str], tables, split="test", ks=(10,)):
    """Next-item metrics for a baseline given a [users, items] score matrix (users in
    `sequences` order) or one score per item (the same ranking for every user)."""
    index = {item_id: row for row, item_id in enumerate(item_ids)}
    _, targets, seen = user_contexts(tables["sequences"], split, window=1)
    n_users = len(targets)
    matrix = np.broadcast_to(scores, (n_users, len(item_ids))) if scores.ndim == 1 else scores
    return score_ranking_report(
        np.ascontiguousarray(matrix, dtype=np.float64),
        np.array([index[t] for t in targets]),
        [np.array([index[i] for i in s]) for s in seen],
        ks,
    )


def evaluate_model(model_dir, split: str = "test") -> dict:
    """Every held-out metric of an exported model (its trained sequence pooler included)."""
    return evaluate_splits(model_dir, (split,))[split]


def evaluate_splits(
    model_dir, splits=("validation", "test"), precision: str = "fp32"
) -> dict[str, dict]:
    """`evaluate_model` on each split, the model loaded once (in `precision`,
    `model_code.precision`): {split: metrics}."""
    _, vectors = embed_splits(model_dir, splits, precision)
    return {split: split_metrics(found) for split, found in vectors.items()}


@dataclass
class SplitVectors:
    """One held-out split as the model embeds it: its openclipart pairs (`pairs`, in the order
    of `text` and `image`) and its MovieLens users."""

    pairs: pd.DataFrame
    text: np.ndarray
    image: np.ndarray
    users: Users


def embed_splits(
    model_dir, splits=("validation", "test"), precision: str = "fp32"
) -> tuple[Embedder, dict[str, SplitVectors]]:
    """The model (in `precision`) and each split embedded by it, for metrics and pictures."""
    from model_code.data.movielens import load_movielens
    from model_code.data.openclipart import load_openclipart

    unknown = [split for split in splits if split not in ("validation", "test")]
    if unknown:
        raise ValueError(f"split must be 'validation' or 'test', got {unknown[0]!r}")
    embedder = Embedder.from_pretrained(model_dir, precision=precision)
    embedder.model.cache_tower_features(feature_cache_dir())
    pairs, tables = load_openclipart(), load_movielens()
    vectors = {}
    for split in splits:
        held_out = pairs[pairs["split"] == split].sort_values("id").reset_index(drop=True)
        text, image = pair_vectors(embedder, held_out)
        vectors[split] = SplitVectors(held_out, text, image, user_vectors(embedder, tables, split))
    return embedder, vectors


def split_metrics(vectors: SplitVectors) -> dict[str, float]:
    """Every held-out metric of one split: `openclipart/...` and `movielens/...`."""
    retrieval = retrieval_reports(vectors.text, vectors.image)
    movies = next_item_reports(vectors.users)
    return {f"openclipart/{k}": v for k, v in retrieval.items()} | {
        f"movielens/{k}": v for k, v in movies.items()
    }
