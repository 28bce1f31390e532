"""The Feast objects of the SAIL-Embedding feature store: entities, Parquet sources, feature views.

Every published model version has its own three views, `item_embedding__<version>`,
`item_semantic_id__<version>` and `user_interest__<version>` (`view_name`), so each has its own
online table: a vector search over one version's table ranks that version's rows only, and the
rows of several versions are online side by side during a canary (docs/feature-store.md).

`definitions(store, versions)` builds the entities and the views of the versions given (model
version -> published Matryoshka size) for one feature store folder; that is what
`sail.feature_store` applies. The module-level objects below are the same definitions for the Feast
CLI (`SAIL_FEATURE_STORE=/abs/path feast -c feature_repo apply`), built for the store
`sail.feature_store.location.store_dir()` names and the versions online there (`published.json`).

A version's view reads its own Parquet file, `<store>/offline/<view>/<model_version>.parquet`,
whose rows share one `event_timestamp`, fixed per version. The TTL is 0 (no expiry): a row stays
valid until its version is retired.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.data_source import DataSource
from feast.types import Array, Bytes, Float32, Int64, String

from sail.feature_store.location import store_dir

ITEM_EMBEDDING = "item_embedding"
ITEM_SEMANTIC_ID = "item_semantic_id"
USER_INTEREST = "user_interest"
VIEWS = (ITEM_EMBEDDING, ITEM_SEMANTIC_ID, USER_INTEREST)
SEPARATOR = "__"  # between a view and its version in a versioned view's name
TIMESTAMP = "event_timestamp"
NO_EXPIRY = timedelta(0)


def offline_dir(store: Path, view: str) -> Path:
    """The folder of Parquet files (one per model version) behind a feature view."""
    return Path(store) / "offline" / view


def view_name(view: str, model_version: str) -> str:
    """The feature view holding one version's rows of `view`: `item_embedding__3`."""
    return f"{view}{SEPARATOR}{model_version}"


def version_of(name: str) -> str | None:
    """The model version of a versioned view's name; None for any other name."""
    view, separator, version = name.partition(SEPARATOR)
    return version if separator and view in VIEWS and version else None


def version_file(store: Path, view: str, model_version: str) -> Path:
    """The Parquet file of one version's rows of `view`."""
    return offline_dir(store, view) / f"{model_version}.parquet"


def file_source(store: Path, view: str, model_version: str) -> FileSource:
    """The local default source of a version's view: its Parquet file in the store folder."""
    return FileSource(
        name=f"{view_name(view, model_version)}_source",
        path=str(version_file(store, view, model_version)),
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


def entities() -> dict[str, Entity]:
    """The join keys every version's views share."""
    return {
        "item": Entity(
            name="item",
            join_keys=["item_id"],
            value_type=ValueType.STRING,
            description="A catalogue item, by its data set's own id ('50', 'oc-0a1b2c3d4e5f').",
        ),
        "user": Entity(
            name="user",
            join_keys=["user_id"],
            value_type=ValueType.STRING,
            description="A MovieLens user, by the data set's id ('1' ... '943').",
        ),
    }


CODE_DESCRIPTIONS = {
    "int8": "The embedding as int8 codes, one byte a value (model_code.compact).",
    "binary": "The embedding's sign bits, 8 a byte, first value first (model_code.compact).",
}


def code_feature(encoding: str) -> str:
    """The item_embedding feature holding one compact code: `embedding_int8`."""
    return f"embedding_{encoding}"


def _schemas(dim: int, codes: Collection[str] = ()) -> dict[str, tuple[str, list[Field], str]]:
    """Per view: its entity, its features besides `model_version`, its description. `codes`:
    the compact encodings published beside the float item embeddings (bytes features)."""
    return {
        ITEM_EMBEDDING: (
            "item",
            [
                _embedding_field(
                    dim, "Unit-length target-side embedding (Matryoshka prefix, renormalised)."
                ),
                *(
                    Field(name=code_feature(code), dtype=Bytes, description=CODE_DESCRIPTIONS[code])
                    for code in codes
                ),
                Field(name="catalogue", dtype=String, description="movielens or openclipart"),
                Field(name="title", dtype=String, description="The item's title, for display."),
            ],
            "Item embeddings; vector-searchable",
        ),
        ITEM_SEMANTIC_ID: (
            "item",
            [
                Field(name="codes", dtype=Array(Int64), description="Residual k-means codes."),
                Field(name="semantic_id", dtype=String, description="The codes joined by '-'."),
            ],
            "Semantic IDs: residual k-means codes of the item embeddings",
        ),
        USER_INTEREST: (
            "user",
            [
                # Vector-typed like the items' (nothing searches this view: a user's vector is
                # the query that searches the same version's item embeddings).
                _embedding_field(dim, "The model's sequence pooler over the user's positives."),
                Field(name="history_length", dtype=Int64, description="The user's positives."),
            ],
            "User-interest embeddings in the item space of the same version",
        ),
    }


def version_views(
    store: Path,
    model_version: str,
    dim: int,
    entities: Mapping[str, Entity],
    source: Callable[[Path, str, str], DataSource] = file_source,
    views: Collection[str] = VIEWS,
    codes: Collection[str] = (),
) -> dict[str, FeatureView]:
    """One version's views (those in `views`; `dim`-long vectors, and the compact `codes`), by
    name."""
    built = [
        FeatureView(
            name=view_name(view, model_version),
            entities=[entities[entity]],
            ttl=NO_EXPIRY,
            schema=[*schema, Field(name="model_version", dtype=String)],
            source=source(store, view, model_version),
            description=f"{description} (model version {model_version}).",
            tags={"embedding_dim": str(dim), "model_version": model_version},
        )
        for view, (entity, schema, description) in _schemas(dim, codes).items()
        if view in views
    ]
    return {view.name: view for view in built}


def definitions(
    store: Path,
    versions: Mapping[str, Mapping],
    source: Callable[[Path, str, str], DataSource] = file_source,
) -> dict[str, Entity | FeatureView]:
    """The entities and the views of every version in `versions` for one feature store folder,
    by name. `versions` maps a model version to its record in published.json: its size (`dim`),
    the views it published (the keys of `rows`) and its compact codes (`codes`, none before
    they were published).

    `source(store, view, model_version)` gives each view's batch source: the version's Parquet
    file by default, a warehouse table in production (docs/feature-store.md).
    """
    shared = entities()
    objects: dict[str, Entity | FeatureView] = dict(shared)
    for version, record in versions.items():
        views = list(record["rows"])
        dim, codes = int(record["dim"]), record.get("codes", ())
        objects.update(version_views(store, version, dim, shared, source, views, codes))
    return objects


def _online_versions(store: Path) -> dict[str, dict]:
    """The records of the versions online in `store` (published.json)."""
    state = store / "published.json"
    if not state.is_file():
        return {}
    versions = json.loads(state.read_text()).get("versions", {})
    return {name: record for name, record in versions.items() if record.get("online")}


# The Feast CLI collects the definitions from this module's attributes.
globals().update(definitions(store_dir(), _online_versions(store_dir())))
