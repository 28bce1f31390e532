"""The Feast objects of the SAIL-Embedding feature store: entities, Parquet sources, feature views.

`definitions(store, dim)` builds them for one feature store folder and one published Matryoshka
size; that is what `sail.feature_store` applies. The module-level objects below are the same
definitions for the Feast CLI (`SAIL_FEATURE_STORE=/abs/path feast -c feature_repo apply`), built
for the store `sail.feature_store.location.store_dir()` names and the size of the version that is
online there (`published.json`), else `$SAIL_FEATURE_DIM`, else 128.

Every view reads a folder `<store>/offline/<view>/` of Parquet files, one per
published model version (`<model_version>.parquet`); each file's rows share one
`event_timestamp`, fixed per version (see docs/feature-store.md). The TTL is 0 (no expiry): an
embedding stays valid until another version replaces it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.data_source import DataSource
from feast.types import Array, Float32, Int64, String

from sail.feature_store.location import store_dir

DEFAULT_DIM = 128
ITEM_EMBEDDING = "item_embedding"
ITEM_SEMANTIC_ID = "item_semantic_id"
USER_INTEREST = "user_interest"
VIEWS = (ITEM_EMBEDDING, ITEM_SEMANTIC_ID, USER_INTEREST)
TIMESTAMP = "event_timestamp"
NO_EXPIRY = timedelta(0)


def offline_dir(store: Path, view: str) -> Path:
    """The folder of Parquet files (one per model version) behind a feature view."""
    return Path(store) / "offline" / view


def file_source(store: Path, view: str) -> FileSource:
    """The local default source of a view: its Parquet folder in the store folder."""
    return FileSource(
        name=f"{view}_source",
        path=str(offline_dir(store, view)),
        file_format=ParquetFormat(),
        timestamp_field=TIMESTAMP,
    )


def _embedding_field(dim: int, description: str) -> Field:
    """A unit-vector feature of `dim` floats, vector-indexed for cosine search."""
    return Field(
        name="embedding",
        dtype=Array(Float32),
        vector_index=True,
        vector_length=dim,
        vector_search_metric="cosine",
        description=description,
    )


def definitions(
    store: Path,
    dim: int = DEFAULT_DIM,
    source: Callable[[Path, str], DataSource] = file_source,
) -> dict[str, Entity | FeatureView]:
    """The entities and feature views for one feature store folder, with `dim`-long vectors.

    `source(store, view)` gives each view's batch source: the Parquet folder by default, a
    warehouse table in production (docs/feature-store.md).
    """
    item = Entity(
        name="item",
        join_keys=["item_id"],
        value_type=ValueType.STRING,
        description="A catalogue item, by its data set's own id ('50', 'oc-0a1b2c3d4e5f').",
    )
    user = Entity(
        name="user",
        join_keys=["user_id"],
        value_type=ValueType.STRING,
        description="A MovieLens user, by the data set's id ('1' ... '943').",
    )
    tags = {"embedding_dim": str(dim)}
    item_embedding = FeatureView(
        name=ITEM_EMBEDDING,
        entities=[item],
        ttl=NO_EXPIRY,
        schema=[
            _embedding_field(
                dim, "Unit-length target-side embedding (Matryoshka prefix, renormalised)."
            ),
            Field(name="model_version", dtype=String),
            Field(name="catalogue", dtype=String, description="movielens or openclipart"),
            Field(name="title", dtype=String, description="The item's title, for display."),
        ],
        source=source(store, ITEM_EMBEDDING),
        description="Item embeddings of the published model version; vector-searchable.",
        tags=tags,
    )
    item_semantic_id = FeatureView(
        name=ITEM_SEMANTIC_ID,
        entities=[item],
        ttl=NO_EXPIRY,
        schema=[
            Field(name="codes", dtype=Array(Int64), description="Residual k-means code per level."),
            Field(name="semantic_id", dtype=String, description="The codes joined by '-'."),
            Field(name="model_version", dtype=String),
        ],
        source=source(store, ITEM_SEMANTIC_ID),
        description="Semantic IDs: residual k-means codes of the published item embeddings.",
        tags=tags,
    )
    user_interest = FeatureView(
        name=USER_INTEREST,
        entities=[user],
        ttl=NO_EXPIRY,
        schema=[
            # Vector-typed like the items' (nothing searches this view: a user's vector is
            # the query that searches item_embedding).
            _embedding_field(dim, "The model's sequence pooler over the user's latest positives."),
            Field(name="model_version", dtype=String),
            Field(name="history_length", dtype=Int64, description="The user's positives in all."),
        ],
        source=source(store, USER_INTEREST),
        description="User-interest embeddings in the item embedding space of the same version.",
        tags=tags,
    )
    return {
        "item": item,
        "user": user,
        ITEM_EMBEDDING: item_embedding,
        ITEM_SEMANTIC_ID: item_semantic_id,
        USER_INTEREST: user_interest,
    }


def _online_dim(store: Path) -> int:
    """The size of the version that is online in `store`, else $SAIL_FEATURE_DIM, else 128."""
    state = store / "published.json"
    if state.is_file():
        published = json.loads(state.read_text())
        online = published.get("online")
        if online in published.get("versions", {}):
            return int(published["versions"][online]["dim"])
    return int(os.environ.get("SAIL_FEATURE_DIM", DEFAULT_DIM))


_cli = definitions(store_dir(), _online_dim(store_dir()))
item = _cli["item"]
user = _cli["user"]
item_embedding = _cli[ITEM_EMBEDDING]
item_semantic_id = _cli[ITEM_SEMANTIC_ID]
user_interest = _cli[USER_INTEREST]
