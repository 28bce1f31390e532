"""Reading one published version: nearest items by vector search, and online features.

Every read names a model version (default: the store's default version, `published.json`) and
reads that version's views only (`feature_repo/features.py`), so a query vector is only ever
compared with item vectors of the model that embedded it. `search(vector, model_version)` refuses
a vector of a version whose rows are not online (`VersionMismatch`).

`search` ranks the version's `item_embedding` rows by pgvector's cosine distance
(`FeatureStore.retrieve_online_documents_v2` in the PostgreSQL online store). Only the ids of the
hits are taken from that response: in feast 0.67 its feature columns (distance included) are not
aligned with its id column when the hits are not in id order, whatever the store
(`FeatureStore._retrieve_from_online_store_v2` fills the feature columns through
`utils._get_unique_entities_from_values`, which orders the hits by entity, and keeps the id column
in the store's order; no upstream issue found as of feast 0.67.0). The hits' embeddings are then
read with `get_online_features` and scored by cosine here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sail.feature_store.location import store_dir
from sail.feature_store.online import NotPublished, check_online, describe
from sail.feature_store.repo import features_module, open_store, read_state

__all__ = ["NotPublished", "VersionMismatch", "search", "similar", "online_features"]

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


ARRAY_TYPES = {"embedding": np.float32, "codes": np.int64}
CODE_DTYPES = {"int8": np.int8, "binary": np.uint8}  # per compact encoding (model_code.compact)


class VersionMismatch(LookupError):
    """A query vector of a model version whose rows are not online: its neighbours would come
    from another model's space."""


@dataclass(frozen=True)
class Neighbour:
    """A similar item: its id, cosine similarity to the query item, catalogue and title."""

    item_id: str
    score: float
    catalogue: str | None = None
    title: str | None = None


def similar(
    item_id: str,
    k: int = 10,
    home: Path | str | None = None,
    *,
    version: str | None = None,
    store=None,
) -> list[Neighbour]:
    """The `k` items of `version` (default: the default version) most similar to `item_id`
    (itself excluded), best first. NotPublished for an item the version's rows do not hold."""
    _check_k(k)
    state, version = _version(home, version)
    store = store or open_store(home)
    item_id = str(item_id)
    vector = _read(store, version, ["item_embedding:embedding"], "item_id", [item_id])
    if vector["embedding"][0] is None:
        raise NotPublished(_unknown(item_id, state, version))
    return _nearest(store, version, vector["embedding"][0], k, exclude=item_id)


def search(
    vector: Sequence[float] | np.ndarray,
    model_version: str,
    k: int = 10,
    home: Path | str | None = None,
    *,
    store=None,
) -> list[Neighbour]:
    """The `k` items nearest to `vector`, which `model_version` embedded, among that version's
    rows, best first. A vector longer than the published size is cut to its Matryoshka prefix.

    VersionMismatch when the version's rows are not online (the other versions' rows are in
    another space, so they are never searched instead)."""
    _check_k(k)
    state = read_state(home)
    model_version = str(model_version)
    record = state["versions"].get(model_version)
    if record is None or not record.get("online"):
        status = "not published" if record is None else "not online"
        raise VersionMismatch(
            f"the query was embedded by model version {model_version}, whose rows are {status} "
            f"in {store_dir(home)} ({describe(state)}); other versions' rows are in another "
            "space and are not searched"
        )
    query = np.asarray(vector, dtype=np.float32).reshape(-1)
    if query.size < record["dim"]:
        raise ValueError(
            f"the query vector has {query.size} values; model version {model_version} "
            f"publishes {record['dim']}"
        )
    query = query[: record["dim"]]
    return _nearest(store or open_store(home), model_version, query, k)


def _nearest(store, version: str, vector, k: int, exclude: str | None = None) -> list[Neighbour]:
    """The version's top k rows by cosine to `vector` (`exclude` left out)."""
    embedding = _feature(version, "item_embedding:embedding")
    hits = store.retrieve_online_documents_v2(
        features=[embedding],
        query=[float(x) for x in vector],
        top_k=k + (exclude is not None),
        distance_metric="cosine",
    ).to_dict()["item_id"]
    candidates = [hit for hit in dict.fromkeys(hits) if hit != exclude]
    if not candidates:
        return []
    found = _read(store, version, ITEM_FEATURES[:4], "item_id", candidates)
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
    version: str | None = None,
    store=None,
    compact: bool = False,
) -> pd.DataFrame:
    """Online features of items (embedding, model_version, catalogue, title, codes,
    semantic_id; with `compact`, also `embedding_int8` / `embedding_binary` where the version
    published compact codes) or of users (embedding, model_version, history_length) in `version`
    (default: the default version): one row per id, in order.

    Pass exactly one of `item_ids` and `user_ids`. Embeddings and codes are numpy arrays (the
    compact ones int8 and packed uint8 bits, `model_code.compact`); the features of an id the
    version's rows do not hold are None.
    """
    if (item_ids is None) == (user_ids is None):
        raise ValueError("pass exactly one of item_ids and user_ids")
    state, version = _version(home, version)
    store = store or open_store(home)
    if item_ids is not None:
        codes = state["versions"][version].get("codes", []) if compact else []
        extra = tuple(f"item_embedding:{features_module().code_feature(c)}" for c in codes)
        return _read(store, version, ITEM_FEATURES + extra, "item_id", item_ids)
    return _read(store, version, USER_FEATURES, "user_id", user_ids)


def item_features(item_ids: Sequence[str], home: Path | str | None = None) -> pd.DataFrame:
    """`online_features(item_ids=...)`."""
    return online_features(item_ids=item_ids, home=home)


def user_features(user_ids: Sequence[str], home: Path | str | None = None) -> pd.DataFrame:
    """`online_features(user_ids=...)`."""
    return online_features(user_ids=user_ids, home=home)


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def _version(home: Path | str | None, version: str | None) -> tuple[dict, str]:
    """The state and the version to read: the one given, else the default; it must be online."""
    state = read_state(home)
    if not state["versions"]:
        raise NotPublished(f"nothing is published in {store_dir(home)}; run publish first")
    if version is None:
        version = state.get("default")
        if version is None:
            raise NotPublished(
                f"no default version in {store_dir(home)} ({describe(state)}); name a version"
            )
    check_online(state, str(version), home)
    return state, str(version)


def _feature(version: str, reference: str) -> str:
    """`item_embedding:embedding` of `version`: `item_embedding__3:embedding`."""
    view, name = reference.split(":", 1)
    return f"{features_module().view_name(view, version)}:{name}"


def _read(store, version: str, features: Sequence[str], key: str, ids) -> pd.DataFrame:
    ids = [str(value) for value in ids]
    response = store.get_online_features(
        features=[_feature(version, feature) for feature in features],
        entity_rows=[{key: value} for value in ids],
    ).to_dict()
    frame = pd.DataFrame({key: ids})
    code_types = {
        features_module().code_feature(encoding): dtype for encoding, dtype in CODE_DTYPES.items()
    }  # bytes features
    for name in (feature.split(":", 1)[1] for feature in features):
        values = response[name]
        if name in ARRAY_TYPES:
            values = [None if v is None else np.asarray(v, dtype=ARRAY_TYPES[name]) for v in values]
        elif name in code_types:
            values = [None if v is None else np.frombuffer(v, code_types[name]) for v in values]
        frame[name] = pd.Series(values, dtype=object)
    return frame


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def _unknown(item_id: str, state: dict, version: str) -> str:
    record = state["versions"][version]
    catalogues = ", ".join(
        f"{name} ({count:,} items)" for name, count in record.get("catalogues", {}).items()
    )
    return (
        f"item {item_id} is not in the online store; published catalogues: "
        f"{catalogues or 'none'} (model_version {version})"
    )
