"""Reading the published version: nearest items by vector search, and online features.

`similar(item_id, k)` searches the online store's `item_embedding` vectors with the item's own
online embedding (`FeatureStore.retrieve_online_documents_v2`; pgvector's cosine distance in the
PostgreSQL online store). Only the ids of the hits are taken from that response: in feast 0.67
its feature columns (distance included) are not aligned with its id column when the hits are not
in id order, whatever the store (`FeatureStore._retrieve_from_online_store_v2` fills the feature
columns through `utils._get_unique_entities_from_values`, which orders the hits by entity, and
keeps the id column in the store's order; no upstream issue found as of feast 0.67.0). The hits'
embeddings are then read with `get_online_features` and scored by cosine here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sail.feature_store.location import store_dir
from sail.feature_store.repo import open_store, read_state

ITEM_FEATURES = (
    "item_embedding:embedding",
    "item_embedding:model_version",
    "item_embedding:catalogue",
    "item_embedding:title",
    "item_semantic_id:codes",
    "item_semantic_id:semantic_id",
)
USER_FEATURES = (
    "user_interest:embedding",
    "user_interest:model_version",
    "user_interest:history_length",
)


class NotPublished(LookupError):
    """An item or user the online store does not hold, or nothing published at all."""


@dataclass(frozen=True)
class Neighbour:
    """A similar item: its id, cosine similarity to the query item, catalogue and title."""

    item_id: str
    score: float
    catalogue: str | None = None
    title: str | None = None


def similar(
    item_id: str, k: int = 10, home: Path | str | None = None, *, store=None
) -> list[Neighbour]:
    """The `k` online items most similar to `item_id` (itself excluded), best first.

    Raises NotPublished for an item the online store does not hold.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    store = store or _store(home)
    item_id = str(item_id)
    vector = _read(store, ["item_embedding:embedding"], "item_id", [item_id])["embedding"][0]
    if vector is None:
        raise NotPublished(_unknown(item_id, home))
    hits = store.retrieve_online_documents_v2(
        features=["item_embedding:embedding"],
        query=[float(x) for x in vector],
        top_k=k + 1,
        distance_metric="cosine",
    ).to_dict()["item_id"]
    candidates = [hit for hit in dict.fromkeys(hits) if hit != item_id]
    if not candidates:
        return []
    found = _read(store, ITEM_FEATURES[:4], "item_id", candidates)
    found = found[found["embedding"].notna()]
    query_vector = np.asarray(vector, dtype=np.float32)
    scores = [_cosine(query_vector, np.asarray(v, dtype=np.float32)) for v in found["embedding"]]
    ranked = sorted(
        zip(found["item_id"], scores, found["catalogue"], found["title"], strict=True),
        key=lambda row: (-row[1], row[0]),
    )
    return [
        Neighbour(hit, round(score, 6), catalogue, title)
        for hit, score, catalogue, title in ranked[:k]
    ]


def online_features(
    item_ids: Sequence[str] | None = None,
    user_ids: Sequence[str] | None = None,
    home: Path | str | None = None,
    *,
    store=None,
) -> pd.DataFrame:
    """Online features of items (embedding, model_version, catalogue, codes, semantic_id) or
    of users (embedding, model_version, history_length): one row per id, in order.

    Pass exactly one of `item_ids` and `user_ids`. Embeddings and codes are numpy arrays; the
    features of an id the online store does not hold are None.
    """
    if (item_ids is None) == (user_ids is None):
        raise ValueError("pass exactly one of item_ids and user_ids")
    store = store or _store(home)
    if item_ids is not None:
        return _read(store, ITEM_FEATURES, "item_id", item_ids)
    return _read(store, USER_FEATURES, "user_id", user_ids)


def item_features(item_ids: Sequence[str], home: Path | str | None = None) -> pd.DataFrame:
    """`online_features(item_ids=...)`."""
    return online_features(item_ids=item_ids, home=home)


def user_features(user_ids: Sequence[str], home: Path | str | None = None) -> pd.DataFrame:
    """`online_features(user_ids=...)`."""
    return online_features(user_ids=user_ids, home=home)


def _store(home: Path | str | None):
    if read_state(home).get("online") is None:
        raise NotPublished(f"nothing is published in {store_dir(home)}; run publish first")
    return open_store(home)


def _read(store, features: Sequence[str], key: str, ids: Sequence[str]) -> pd.DataFrame:
    ids = [str(value) for value in ids]
    response = store.get_online_features(
        features=list(features), entity_rows=[{key: value} for value in ids]
    ).to_dict()
    frame = pd.DataFrame({key: ids})
    for name in (feature.split(":", 1)[1] for feature in features):
        values = response[name]
        if name in ("embedding", "codes"):
            dtype = np.float32 if name == "embedding" else np.int64
            values = [None if v is None else np.asarray(v, dtype=dtype) for v in values]
        frame[name] = pd.Series(values, dtype=object)
    return frame


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def _unknown(item_id: str, home: Path | str | None) -> str:
    state = read_state(home)
    version = state.get("online")
    record = state["versions"].get(version, {}) if version else {}
    catalogues = ", ".join(
        f"{name} ({count:,} items)" for name, count in record.get("catalogues", {}).items()
    )
    return (
        f"item {item_id} is not in the online store; published catalogues: "
        f"{catalogues or 'none'} (model_version {version})"
    )
