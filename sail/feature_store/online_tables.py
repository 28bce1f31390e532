"""What Feast has no API for in the PostgreSQL online store: its connection, a view's table, and
swapping one view's table in for another's in one transaction.

- `connect(store)`: a new psycopg connection to the store's online database, opened the way
  Feast opens its own (`feast.infra.utils.postgres.connection_utils`, from the store's config).
- `table_name(store, view)`: the online table of a feature view, `<project>_<view>`.
- `swap_in(store, {staged: live, ...})`: in one transaction, each `live` view's table is dropped
  and its `staged` view's renamed to it, with its indexes. PostgreSQL's DDL is transactional,
  so a reader's query sees the old tables' rows or the new ones', never neither nor a mix: it
  waits while the swap holds its locks. Each pair must have the same schema (same features,
  same vector length).
"""

from __future__ import annotations

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
