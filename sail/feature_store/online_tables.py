"""What Feast has no API for in the PostgreSQL online store: its connection, a view's table,
loading a view's rows in bulk, and swapping one view's table in for another's in one transaction.

- `connect(store)`: a new psycopg connection to the store's online database, opened the way
  Feast opens its own (`feast.infra.utils.postgres.connection_utils`, from the store's config).
- `table_name(store, view)`: the online table of a feature view, `<project>_<view>`.
- `copy_rows(store, view, table)`: a view's rows (an Arrow table of its file) written into its
  empty online table with one COPY. Feast's own writer (`online_write_batch`) upserts one
  statement per (entity, feature), and its materialize reads the file through Dask first
  (`make bench` compares the two, docs/benchmarks.md). The rows are converted by Feast
  (`feast.utils._convert_arrow_to_proto`, as materialize converts them) and laid out in the
  columns, encodings and timestamps that `PostgreSQLOnlineStore.online_write_batch` writes (feast
  0.67), so Feast reads them as its own (tests/platform/test_feature_store.py compares the two
  byte for byte).
- `swap_in(store, {staged: live, ...})`: in one transaction, each `live` view's table is dropped
  and its `staged` view's renamed to it, with its indexes. PostgreSQL's DDL is transactional,
  so a reader's query sees the old tables' rows or the new ones', never neither nor a mix: it
  waits while the swap holds its locks. Each pair must have the same schema (same features,
  same vector length).
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
from psycopg import sql
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types import TypeInfo

SWAP_LOCK_TIMEOUT = "10s"  # how long the swap waits for readers' locks before it gives up
INDEX_SUFFIXES = ("_ek", "_fts_idx")  # the indexes Feast creates on a view's table


def connect(store):
    """A new connection (autocommit) to `store`'s PostgreSQL online database."""
    from feast.infra.utils.postgres.connection_utils import _get_conn

    config = store.config.online_store
    if config.type != "postgres":
        raise ValueError(f"the online store must be PostgreSQL (type: postgres), not {config.type}")
    connection = _get_conn(config)
    connection.autocommit = True
    return connection


def table_name(store, view: str) -> str:
    """The online table that Feast keeps `view`'s rows in."""
    return f"{store.config.project}_{view}"


def copy_rows(store, view, table: pa.Table) -> int:
    """Write `table` (rows of feature view `view`, with its join key and `event_timestamp`) into
    the view's online table, which must be empty; returns the entities written.

    The COPY is binary: pgvector's `vector` column takes each vector's float32 bytes straight
    from the Arrow column (`_VectorDumper`), where Feast formats every value as text; a
    `bytea` vector column (a view without a vector field) gets Feast's text, encoded."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.helpers import extract_text_and_num
    from feast.utils import _convert_arrow_to_proto

    config = store.config
    join_keys = {entity.name: entity.dtype.to_value_type() for entity in view.entity_columns}
    table = table.combine_chunks()
    rows = [row for b in table.to_batches() for row in _convert_arrow_to_proto(b, view, join_keys)]
    name = table_name(store, view.name)
    with connect(store) as connection, connection.transaction():
        types = _column_types(connection, name)
        with_num = "value_num" in types
        columns = ["entity_key", "feature_name", "value", "value_text"]
        columns += ["value_num"] * with_num + ["vector_value", "event_ts", "created_ts"]
        vectors = {}
        if config.online_store.vector_enabled:
            vectors = _list_values(table, view, as_vectors=types["vector_value"] == "vector")
            _register_vector(connection)
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with connection.cursor().copy(statement) as copy:
            copy.set_types([types[column] for column in columns])
            for index, (entity_key, values, timestamp, created) in enumerate(rows):
                key = serialize_entity_key(
                    entity_key,
                    entity_key_serialization_version=config.entity_key_serialization_version,
                )
                timestamp = _utc(timestamp)
                created = None if created is None else _utc(created)
                for feature, value in values.items():
                    text, number = extract_text_and_num(value, with_num)
                    vector = vectors[feature][index] if feature in vectors else None
                    copy.write_row(
                        [key, feature, value.SerializeToString(), text]
                        + [number] * with_num
                        + [vector, timestamp, created]
                    )
    return len(rows)


def _utc(moment: datetime) -> datetime:
    """A timestamp for a `timestamptz` column: Feast's naive UTC, made explicit (a binary COPY
    takes aware datetimes only; Feast's text path leaves the zone to the session, UTC here)."""
    from feast.infra.online_stores.helpers import _to_naive_utc

    return _to_naive_utc(moment).replace(tzinfo=UTC)


def _list_values(table: pa.Table, view, as_vectors: bool) -> dict[str, list]:
    """Per list feature of `view`, each row's value for the vector column: a float32 array for
    pgvector, else the bytes of Feast's `get_list_val_str` text (`[3, 5, 9]`)."""
    values = {}
    for field in view.features:
        column = table.column(field.name).combine_chunks()
        if not pa.types.is_list(column.type):
            continue
        if as_vectors:
            flat = column.values.to_numpy(zero_copy_only=False).astype(np.float32)
            offsets = column.offsets.to_numpy()
            nulls = column.is_null().to_numpy(zero_copy_only=False)
            values[field.name] = [
                None if nulls[i] else flat[offsets[i] : offsets[i + 1]] for i in range(len(column))
            ]
        else:
            values[field.name] = [
                None if v is None else str(v).encode() for v in column.to_pylist()
            ]
    return values


class _VectorDumper(Dumper):
    """pgvector's binary input: dimensions and a reserved field (int16 each), then the values
    as big-endian float32."""

    format = Format.BINARY

    def dump(self, obj) -> bytes:
        vector = np.asarray(obj, dtype=">f4")
        return struct.pack(">HH", vector.size, 0) + vector.tobytes()


def _register_vector(connection) -> None:
    """Teach `connection` pgvector's type, with the binary dumper for numpy arrays."""
    info = TypeInfo.fetch(connection, "vector")
    if info is None:
        raise ValueError("the online database has no pgvector type: CREATE EXTENSION vector")
    info.register(connection)
    dumper = type("VectorDumper", (_VectorDumper,), {"oid": info.oid})
    connection.adapters.register_dumper(np.ndarray, dumper)


def _column_types(connection, table: str) -> dict[str, str]:
    """Each column of `table` and its type's name (`bytea`, `vector`, `timestamp`, ...)."""
    found = connection.execute(
        "SELECT column_name, udt_name FROM information_schema.columns WHERE table_name = %s",
        (table,),
    )
    return dict(found.fetchall())


def swap_in(store, pairs: dict[str, str]) -> None:
    """Replace each live view's online table by its staged view's (`pairs`: staged -> live), all
    in one transaction, atomically for readers (see the module doc)."""
    with connect(store) as connection, connection.transaction():
        connection.execute(
            sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(SWAP_LOCK_TIMEOUT))
        )
        for staged, live in pairs.items():
            old, new = table_name(store, live), table_name(store, staged)
            connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(old)))
            connection.execute(
                sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                    sql.Identifier(new), sql.Identifier(old)
                )
            )
            for suffix in INDEX_SUFFIXES:
                connection.execute(
                    sql.SQL("ALTER INDEX IF EXISTS {} RENAME TO {}").format(
                        sql.Identifier(new + suffix), sql.Identifier(old + suffix)
                    )
                )
