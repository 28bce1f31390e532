"""Publishing a model version to the feature store: embeddings, Semantic IDs, user interests.

`publish(model_dir, model_version)` embeds the whole prepared catalogues, fits Semantic-ID
codebooks on the published item vectors, pools every MovieLens user's latest positives into a
user-interest vector, writes one Parquet file per view for the version (item vectors with their
int8 and binary codes, `model_code.compact`), applies the Feast
definitions and loads the version into the online store (`online_tables.copy_rows`).

The version's rows go online beside those of the versions already online (each version has
views of its own, `sail.feature_store.online`); the first version published becomes the default
that queries read, later ones become it when promoted (`sail model promote`, or a deploy that
puts all traffic on them).

Idempotent by construction (docs/feature-store.md):

- A version's rows carry ONE `event_timestamp`, chosen at its first publish (now, and later than
  every earlier version's) and reused by every re-publish (from published.json, else from the
  version's existing Parquet). Re-publishing writes the same files with the same timestamps.
- The version's online tables hold exactly this publish's rows, whatever an earlier publish of
  the version left: a version not online yet gets its tables recreated empty and filled from its
  files; an online version's re-publish is written to staged files and tables and swapped in
  whole (`sail.feature_store.online.replace_online`), so readers never see it half done.

The embedding happens first; every change to the store then holds its lock
(`sail.feature_store.lock`), so publishes, promotions and rollbacks take turns.
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from model_code.compact import encode
from model_code.data.catalogue import CATALOGUES, movielens_items, openclipart_items
from model_code.model import truncate
from sail.feature_store.location import resolve_home, store_dir
from sail.feature_store.lock import store_lock
from sail.feature_store.online import (
    bring_online,
    phase,
    replace_online,
    staged_name,
)
from sail.feature_store.repo import (
    features_module,
    open_store,
    read_state,
    write_atomic,
    write_state,
)

logger = logging.getLogger(__name__)

# A version names its views and so its online tables (`sail_embedding_item_semantic_id__<v>_ek`
# must fit PostgreSQL's 63-character identifiers).
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,23}")
VERSION_SPACING = timedelta(seconds=1)  # between versions' timestamps
COMPACT_CODES = ("int8", "binary")  # published beside each item's float vector


@dataclass
class PublishReport:
    """What one publish wrote: Parquet rows and online entities per view, files, timings."""

    model_version: str
    dim: int
    event_timestamp: datetime
    catalogues: dict[str, int]
    rows: dict[str, int]
    online_rows: dict[str, int]
    files: dict[str, Path]
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A flat, JSON-ready summary; its numbers (counts, seconds) are ready to log as metrics:
        `items/<catalogue>`, `rows/<view>`, `online_rows/<view>`, `seconds`, `seconds/<step>`."""
        summary: dict = {
            "model_version": self.model_version,
            "dim": self.dim,
            "event_timestamp": self.event_timestamp.isoformat(),
            "seconds": self.seconds,
        }
        for prefix, values in (
            ("items", self.catalogues),
            ("rows", self.rows),
            ("online_rows", self.online_rows),
            ("seconds", self.timings),
            ("files", {view: str(path) for view, path in self.files.items()}),
        ):
            summary.update({f"{prefix}/{key}": value for key, value in values.items()})
        return summary


def publish(
    model_dir: Path,
    model_version: str,
    dim: int = 128,
    catalogues: Sequence[str] = ("movielens", "openclipart"),
    batch_size: int = 32,
    home: Path | str | None = None,
    *,
    window: int = 10,
    levels: int = 3,
    codebook_size: int = 64,
    limit: int | Mapping[str, int] | None = None,
) -> PublishReport:
    """Publish `model_dir` as `model_version` into the feature store of `home` (its
    `feature_store/`, catalogues from its `data/`); without `home`, the store `store_dir()` names
    and the catalogues of `data_dir()`.

    `dim` is the published Matryoshka size; `window` the number of latest positives pooled per
    user (the evaluation's default); `levels` x `codebook_size` the Semantic-ID codebooks.
    User-interest vectors need the MovieLens catalogue; without it no user rows are published.
    `limit` (quick runs, tests) keeps the first items of each catalogue (an int) or of the named
    ones (a mapping); users are then pooled over their published items only, and a user with
    none is left out. One change to the store at a time (its lock). Re-publishing a version
    replaces its rows; an online version's must keep its size and catalogues' views.
    """
    from model_code.embed import Embedder
    from model_code.paths import feature_cache_dir

    started = time.perf_counter()
    _check_version(model_version)
    catalogues = _check_catalogues(catalogues)
    limits = _check_limit(limit, catalogues)
    embedder = Embedder.from_pretrained(Path(model_dir))
    embedder.model.cache_tower_features(feature_cache_dir())  # drawings the stages saw
    dim = embedder.model.config.check_dim(dim)

    timings: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[name], mark = round(now - mark, 3), now

    vectors, ids, labels, titles = _embed_catalogues(embedder, catalogues, home, batch_size, limits)
    lap("embed")
    published = truncate(torch.from_numpy(vectors), dim).numpy()
    tables = {
        "item_embedding": _item_embedding_table(ids, published, labels, titles, model_version)
    }
    codebooks, tables["item_semantic_id"] = _semantic_id_table(
        ids, published, model_version, levels, codebook_size
    )
    lap("semantic_ids")
    if "movielens" in catalogues:
        movies = [row for row, label in enumerate(labels) if label == "movielens"]
        item_rows = {ids[row]: position for position, row in enumerate(movies)}
        tables["user_interest"] = _user_interest_table(
            embedder, home, vectors[movies], item_rows, dim, window, model_version
        )
        lap("user_interest")

    store = open_store(home)
    with store_lock(store):
        state = read_state(home)
        previous = state["versions"].get(model_version)
        live = bool(previous and previous.get("online"))
        timestamp = _event_timestamp(home, state, model_version)
        record = _version_record(previous, dim, timestamp, catalogues, labels, tables)
        name = staged_name(model_version) if live else model_version
        for view, table in tables.items():
            _write_parquet(home, view, name, table, timestamp)
        phase(name, "files written")
        lap("parquet")
        if live:
            online_rows = replace_online(model_version, record, home, store=store)
        else:
            state["versions"][model_version] = record
            write_state(state, home)
            phase(model_version, "recorded")
            online_rows = bring_online(model_version, home, store=store)
        write_atomic(codebooks_path(home, model_version), codebooks)  # those of the online codes
        lap("feast")
    return PublishReport(
        model_version=model_version,
        dim=dim,
        event_timestamp=timestamp.to_pydatetime(),
        catalogues={name: labels.count(name) for name in catalogues},
        rows={view: table.num_rows for view, table in tables.items()},
        online_rows=online_rows,
        files={view: _parquet_path(home, view, model_version) for view in tables},
        seconds=round(time.perf_counter() - started, 3),
        timings=timings,
    )


def _check_version(model_version: str) -> None:
    if not isinstance(model_version, str) or not VERSION_PATTERN.fullmatch(model_version):
        raise ValueError(
            f"model_version must be 1-24 letters, digits, '_' or '-' (starting with a letter "
            f"or digit), got {model_version!r}"
        )


def _check_catalogues(catalogues: Sequence[str]) -> list[str]:
    if isinstance(catalogues, str):
        catalogues = [catalogues]
    unknown = [name for name in catalogues if name not in CATALOGUES]
    if unknown or not catalogues:
        raise ValueError(f"catalogues must name some of {list(CATALOGUES)}, got {catalogues!r}")
    return list(dict.fromkeys(catalogues))


def _event_timestamp(home: Path, state: dict, model_version: str) -> pd.Timestamp:
    """The version's fixed timestamp: recorded, else in its Parquet, else now (after all others)."""
    record = state["versions"].get(model_version)
    if record is not None:
        return pd.Timestamp(record["event_timestamp"])
    for view in features_module().VIEWS:
        path = _parquet_path(home, view, model_version)
        if path.is_file():
            column = pq.read_table(path, columns=["event_timestamp"]).column(0)
            if len(column):
                return pd.Timestamp(column[0].as_py())
    now = pd.Timestamp(datetime.now(UTC)).floor("s")
    earlier = [pd.Timestamp(r["event_timestamp"]) for r in state["versions"].values()]
    return max([now, *(t + VERSION_SPACING for t in earlier)])


def _check_limit(limit, catalogues: list[str]) -> dict[str, int | None]:
    if limit is None or isinstance(limit, int):
        limits = dict.fromkeys(catalogues, limit)
    else:
        unknown = [name for name in limit if name not in CATALOGUES]
        if unknown:
            raise ValueError(f"limit names unknown catalogues {unknown}")
        limits = {name: limit.get(name) for name in catalogues}
    if any(n is not None and n < 1 for n in limits.values()):
        raise ValueError(f"limits must be at least 1, got {limit!r}")
    return limits


def _catalogue_items(name: str, home: Path, limit: int | None):
    """The prepared catalogue as items (the first `limit` when given), read under `home`."""
    from model_code.data.movielens import load_movielens
    from model_code.data.openclipart import load_openclipart

    data = _data_root(home)
    if name == "movielens":
        frame = load_movielens(data / "movielens")["items"]
        return movielens_items(frame.iloc[:limit])
    return openclipart_items(load_openclipart(root=data / "openclipart").iloc[:limit])


def _embed_catalogues(embedder, catalogues, home: Path, batch_size: int, limits: dict):
    """Full-size target vectors of every item of the catalogues, their ids, catalogues, titles."""
    from model_code.evaluation.suite import catalogue_instructions

    vectors, ids, labels, titles = [], [], [], []
    for name in catalogues:
        items = _catalogue_items(name, home, limits[name])
        # the target instruction the evaluation suite embeds the catalogue with
        instruction = catalogue_instructions(name)["target"]
        logger.info("embedding %d %s items", len(items), name)
        result = embedder.embed(
            items, side="target", batch_size=batch_size, progress=True, instruction=instruction
        )
        vectors.append(result.vectors)
        ids.extend(result.ids)
        labels.extend([name] * len(result.ids))
        titles.extend(item.title for item in items)
    if len(set(ids)) != len(ids):
        raise ValueError("item ids repeat across the catalogues; they must be unique")
    return np.concatenate(vectors), ids, labels, titles


def _vector_column(vectors: np.ndarray, value_type: pa.DataType) -> pa.Array:
    """Rows of a 2-D array as a list<value_type> column."""
    flat = pa.array(np.ascontiguousarray(vectors).reshape(-1), type=value_type)
    offsets = pa.array(np.arange(0, vectors.size + 1, vectors.shape[1]), type=pa.int32())
    return pa.ListArray.from_arrays(offsets, flat)


def _item_embedding_table(ids, vectors, labels, titles, model_version) -> pa.Table:
    """The item rows: float vectors and their compact codes (views read the codes their version
    publishes, `_version_record`)."""
    features = features_module()
    codes = {
        features.code_feature(code): pa.array(
            [row.tobytes() for row in encode(vectors, code)], pa.binary()
        )
        for code in COMPACT_CODES
    }
    return pa.table(
        {
            "item_id": pa.array(ids, pa.string()),
            "embedding": _vector_column(vectors, pa.float32()),
            **codes,
            "model_version": pa.array([model_version] * len(ids), pa.string()),
            "catalogue": pa.array(labels, pa.string()),
            "title": pa.array(titles, pa.string()),
        }
    )


def _semantic_id_table(ids, vectors, model_version, levels, codebook_size):
    """Codes of residual k-means codebooks fitted on the published vectors, and the codebooks
    in `ResidualCodebooks.save`'s layout (bytes, written with the version's files)."""
    from model_code.semantic_ids import encode, fit_residual_kmeans

    codebooks = fit_residual_kmeans(vectors, levels=levels, codebook_size=codebook_size)
    codes = encode(codebooks, vectors)
    buffer = io.BytesIO()
    np.savez(buffer, **{f"level_{i}": c for i, c in enumerate(codebooks.codebooks)})
    return buffer.getvalue(), pa.table(
        {
            "item_id": pa.array(ids, pa.string()),
            "codes": _vector_column(codes, pa.int64()),
            "semantic_id": pa.array(["-".join(map(str, row)) for row in codes], pa.string()),
            "model_version": pa.array([model_version] * len(ids), pa.string()),
        }
    )


@torch.inference_mode()
def _user_interest_table(embedder, home, movie_vectors, item_rows, dim, window, model_version):
    """Every user's latest `window` positives pooled by the model's sequence pooler.

    The positives come from the evaluation's contexts (`user_contexts` for the test split: every
    item before the held-out test item) with the test item appended: online, everything the user
    liked so far counts. Items that are not published (a `limit`) are left out.
    """
    from model_code.data.movielens import load_movielens
    from model_code.evaluation.suite import user_contexts

    sequences = load_movielens(_data_root(home) / "movielens")["sequences"]
    _, targets, seen = user_contexts(sequences, "test", window)
    users, contexts, lengths = [], [], []
    for user, before, target in zip(sequences["user_id"], seen, targets, strict=True):
        positives = [*before, target]
        context = [item_rows[item] for item in positives if item in item_rows][-window:]
        if context:
            users.append(str(user))
            contexts.append(context)
            lengths.append(len(positives))
    pooled = embedder.model.eval().pool_sequences(torch.from_numpy(movie_vectors), contexts)
    vectors = truncate(pooled.float(), dim).numpy()
    return pa.table(
        {
            "user_id": pa.array(users, pa.string()),
            "embedding": _vector_column(vectors, pa.float32()),
            "model_version": pa.array([model_version] * len(users), pa.string()),
            "history_length": pa.array(lengths, pa.int64()),
        }
    )


def _data_root(home: Path | str | None) -> Path:
    """The prepared data: `<home>/data` for an explicit home, else `data_dir()` (a step's
    input Dataset, or SAIL_HOME/data)."""
    from model_code.paths import data_dir

    return resolve_home(home) / "data" if home is not None else data_dir()


def codebooks_path(home: Path | str | None, model_version: str) -> Path:
    """The version's Semantic-ID codebooks (`model_code.semantic_ids.ResidualCodebooks.load`)."""
    return store_dir(home) / "codebooks" / f"{model_version}.npz"


def _parquet_path(home: Path, view: str, model_version: str) -> Path:
    return features_module().version_file(store_dir(home), view, model_version)


def _write_parquet(home, view, model_version, table: pa.Table, timestamp) -> Path:
    """The version's file of `view`, every row at `timestamp`, written atomically."""
    stamps = pa.array([timestamp.to_pydatetime()] * table.num_rows, pa.timestamp("us", tz="UTC"))
    table = table.append_column("event_timestamp", stamps)
    path = _parquet_path(home, view, model_version)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_atomic(path, sink.getvalue().to_pybytes())
    return path


def _version_record(previous, dim, timestamp, catalogues, labels, tables) -> dict:
    """The version's published.json record; `online` stays as it was until `bring_online`."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    live = bool((previous or {}).get("online"))
    return {
        "online": live,
        "dim": dim,
        # a live re-publish keeps its views' features: codes only where it had them
        "codes": list(previous.get("codes", ())) if live else list(COMPACT_CODES),
        "event_timestamp": timestamp.isoformat(),
        "catalogues": {name: labels.count(name) for name in catalogues},
        "rows": {view: table.num_rows for view, table in tables.items()},
        "first_published": (previous or {}).get("first_published", now),
        "last_published": now,
    }
