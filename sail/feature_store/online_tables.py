"""What Feast has no API for in the PostgreSQL online store: its connection, a view's table,
loading a view's rows in bulk, and swapping one view's table in for another's in one transaction.

- `connect(store)`: a new psycopg connection to the store's online database, opened the way
  Feast opens its own (`feast.infra.utils.postgres.connection_utils`, from the store's config).
- `table_name(store, view)`: the online table of a feature view, `<project>_<view>`.
- `copy_rows(store, view, table)`: a view's rows (an Arrow table of its file) written into its
  empty online table with one COPY. Feast's own writer (`online_write_batch`) upserts one
  statement per (entity, feature): about 4,500 rows/s here, and its materialize reads the file
  through Dask first. The rows are converted by Feast (`feast.utils._convert_arrow_to_proto`, as
  materialize converts them) and laid out in the columns, encodings and timestamps that
  `PostgreSQLOnlineStore.online_write_batch` writes (feast 0.67), so Feast reads them as its own
  (tests/platform/test_feature_store.py compares the two byte for byte).
- `swap_in(store, {staged: live, ...})`: in one transaction, each `live` view's table is dropped
  and its `staged` view's renamed to it, with its indexes. PostgreSQL's DDL is transactional,
  so a reader's query sees the old tables' rows or the new ones', never neither nor a mix: it
  waits while the swap holds its locks. Each pair must have the same schema (same features,
  same vector length).
"""

from __future__ import annotations

import pyarrow as pa
from psycopg import sql

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
    the view's online table, which must be empty; returns the entities written."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.helpers import _to_naive_utc, extract_text_and_num
    from feast.utils import _convert_arrow_to_proto

    config = store.config
    join_keys = {entity.name: entity.dtype.to_value_type() for entity in view.entity_columns}
    batches = table.combine_chunks().to_batches()
    rows = [row for batch in batches for row in _convert_arrow_to_proto(batch, view, join_keys)]
    name = table_name(store, view.name)
    vectors = _list_texts(table, view) if config.online_store.vector_enabled else {}
    with connect(store) as connection, connection.transaction():
        with_num = _has_column(connection, name, "value_num")
        columns = ["entity_key", "feature_name", "value", "value_text"]
        columns += ["value_num"] * with_num + ["vector_value", "event_ts", "created_ts"]
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with connection.cursor().copy(statement) as copy:
            for index, (entity_key, values, timestamp, created) in enumerate(rows):
                key = serialize_entity_key(
                    entity_key,
                    entity_key_serialization_version=config.entity_key_serialization_version,
                )
                timestamp = _to_naive_utc(timestamp)
                created = None if created is None else _to_naive_utc(created)
                for feature, value in values.items():
                    text, number = extract_text_and_num(value, with_num)
                    vector = vectors[feature][index] if feature in vectors else None
                    copy.write_row(
                        [key, feature, value.SerializeToString(), text]
                        + [number] * with_num
                        + [vector, timestamp, created]
                    )
    return len(rows)


def _list_texts(table: pa.Table, view) -> dict[str, list[str | None]]:
    """Per list feature of `view`, each row's value as Feast's `get_list_val_str` writes it to
    the pgvector column (`[0.5, -0.25]`: the values' Python floats or ints), from the column at
    once rather than from each row's protobuf."""
    texts = {}
    for field in view.features:
        column = table.column(field.name)
        if pa.types.is_list(column.type):
            texts[field.name] = [None if v is None else str(v) for v in column.to_pylist()]
    return texts


def _has_column(connection, table: str, column: str) -> bool:
    found = connection.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
        (table, column),
    )
    return found.fetchone() is not None


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
