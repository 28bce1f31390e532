"""Feast's SQLite online store with working vector search on Python 3.11 (the local default).

`feature_store.yaml` names `sail.feature_store.sqlite_vec_store.VecSqliteOnlineStore`; this module
is the one place that works around what feast 0.67's `sqlite` store gets wrong outside Python 3.10:

1. The sqlite-vec extension is loaded only on Python 3.10, and this Python's stdlib `sqlite3` is
   built without `enable_load_extension`. Feast's sqlite module is therefore imported here with
   `sqlite3` bound to `pysqlite3` (pysqlite3-binary: the same DB-API, with extension loading), so
   its connections, datetime adapters and error classes all come from one library. The swap of
   `sys.modules["sqlite3"]` lasts only for that import: the rest of the process keeps the stdlib
   module. The store then loads sqlite-vec whenever `vector_enabled` is set.
2. With `vector_enabled`, feast packs every list-valued feature of every view as a float32 blob of
   the view's vector length (512 when the view declares no vector field), which fails for an
   `Array(Int64)` feature such as the semantic-ID codes. Views without a vector-index field are
   written as if vectors were off (their `vector_value` column stays NULL; nothing searches them).
3. Every search copies the view's vectors into one shared `vec_table` with their rowids and never
   empties it, so the second search in a database fails with "UNIQUE constraint failed on
   vec_table primary key" (and a table built for another vector length would be reused). The
   table is dropped before each search, so feast rebuilds it from the current rows.

Searches rank by sqlite-vec's default L2 distance, which orders unit vectors exactly as cosine.
Everything else (tables, upserts keyed by (entity, feature), reads) is feast's own code.
"""

from __future__ import annotations

import importlib
import sys
from typing import Literal

import pysqlite3.dbapi2 as pysqlite3

_FEAST_SQLITE = "feast.infra.online_stores.sqlite"


def _import_feast_sqlite():
    """Feast's sqlite online store module, imported with `sqlite3` bound to pysqlite3."""
    if _FEAST_SQLITE not in sys.modules:
        saved = sys.modules.get("sqlite3")
        sys.modules["sqlite3"] = pysqlite3
        try:
            importlib.import_module(_FEAST_SQLITE)
        finally:
            if saved is None:
                del sys.modules["sqlite3"]
            else:
                sys.modules["sqlite3"] = saved
    module = sys.modules[_FEAST_SQLITE]
    if module.sqlite3 is not pysqlite3:
        raise RuntimeError(
            f"{_FEAST_SQLITE} was imported before {__name__}, with the stdlib sqlite3 (which "
            f"cannot load sqlite-vec); import {__name__} first"
        )
    return module


_feast_sqlite = _import_feast_sqlite()

from feast.utils import _get_feature_view_vector_field_metadata  # noqa: E402

STORE_TYPE = f"{__name__}.VecSqliteOnlineStore"


class VecSqliteOnlineStoreConfig(_feast_sqlite.SqliteOnlineStoreConfig):
    """The `sqlite` store's settings (`path`, `vector_enabled`, ...) under this store's type."""

    type: Literal["sail.feature_store.sqlite_vec_store.VecSqliteOnlineStore"] = STORE_TYPE


class VecSqliteOnlineStore(_feast_sqlite.SqliteOnlineStore):
    """Feast's SQLite online store, with sqlite-vec loaded on any Python (see the module doc)."""

    def _get_conn(self, config):
        if not self._conn:
            self._conn = _feast_sqlite._initialize_conn(
                self._get_db_path(config), bool(config.online_store.vector_enabled)
            )
        return self._conn

    def online_write_batch(self, config, table, data, progress):
        if (
            config.online_store.vector_enabled
            and _get_feature_view_vector_field_metadata(table) is None
        ):
            plain = config.model_copy()
            plain._online_store = config.online_store.model_copy(update={"vector_enabled": False})
            config = plain
        super().online_write_batch(config, table, data, progress)

    def retrieve_online_documents_v2(self, config, table, *args, **kwargs):
        conn = self._get_conn(config)
        with conn:
            conn.execute("DROP TABLE IF EXISTS vec_table")
        return super().retrieve_online_documents_v2(config, table, *args, **kwargs)
