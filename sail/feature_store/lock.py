"""One change to a feature store at a time: an advisory lock in its PostgreSQL online database.

`store_lock(store, timeout_s=600)` is held while `publish`, `bring_online`, `retire`,
`set_default` and `follow` change the store (its tables, registry and published.json), so two
pipeline runs, or a publish and a promotion, never interleave.

The lock belongs to the connection that took it (`pg_try_advisory_lock`): a holder that crashes or
is killed loses its connection, and the server releases the lock at once, so a crashed publish
never keeps it. A process already holding it may take it again (a publish brings its version
online under the same lock). Waiting longer than `timeout_s` raises StoreBusy, which names the
holder (its client, process and since when).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator

from sail.feature_store.online_tables import connect

POLL_S = 0.25
_held = threading.local()  # this thread's lock depth per store project


class StoreBusy(RuntimeError):
    """Another process is changing the feature store."""


def lock_key(project: str) -> int:
    """The advisory lock's 64-bit key for a Feast project."""
    digest = hashlib.sha256(f"sail-embedding feature store {project}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def store_lock(store, timeout_s: float = 600.0) -> Iterator[None]:
    """Hold the store's change lock (see the module doc)."""
    project = store.config.project
    depths = _held.__dict__.setdefault("depths", {})
    if depths.get(project):
        depths[project] += 1
        try:
            yield
        finally:
            depths[project] -= 1
        return
    key = lock_key(project)
    with connect(store) as connection:
        connection.execute(
            "SELECT set_config('application_name', %s, false)",
            [f"sail publish lock, pid {os.getpid()} on {socket.gethostname()}"[:63]],
        )
        deadline = time.monotonic() + timeout_s
        while not connection.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]:
            if time.monotonic() > deadline:
                raise StoreBusy(
                    f"the feature store {project} is being changed by {_holder(connection, key)}; "
                    f"waited {timeout_s:g} s"
                )
            time.sleep(POLL_S)
        depths[project] = 1
        try:
            yield
        finally:
            depths[project] = 0
            connection.execute("SELECT pg_advisory_unlock(%s)", [key])


def _holder(connection, key: int) -> str:
    """Who holds the lock: `'sail publish lock, pid 12 on host' (backend 345) since 12:00:01`."""
    row = connection.execute(
        """
        SELECT a.application_name, a.pid, a.backend_start
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted
          AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1
        """,
        [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
    ).fetchone()
    if row is None:
        return "another process (it has just let go)"
    name, backend, since = row
    return f"'{name}' (backend {backend}) since {since:%Y-%m-%d %H:%M:%S %Z}"
