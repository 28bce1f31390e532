"""A publish killed at each of its steps, while readers poll the store.

A store of its own (the real PostgreSQL online store, the real data prepared small) gets v1 from
the tiny model. Then, per case, a publish runs in a process of its own and SIGKILLs itself at one
step (a logging handler on the step records `sail.feature_store.online.phase` logs), while a
thread here reads a few of v1's items and users in a loop:

- a new version, v2, killed at each step: readers read the default, v1, and must always see its
  rows; v2 must not be online after the kill;
- a re-publish of the online v1 by another model (weights nudged), killed at each step: every read
  must see v1's old rows or the new ones, never an empty or mixed read; killed before the swap,
  the old rows serve.

After each kill the store's lock must be free at once (its holder died). Last, the re-publish
runs to the end: the new rows serve and no staged table is left.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hostile.section import Context, Section

DIM = 32
LIMIT = {"movielens": 120, "openclipart": 8}
ITEMS, USERS = ["1", "50", "120"], ["1", "2", "5"]
POLL_S = 0.005  # between reads: a reader loop that leaves the publish some CPU
NEW_VERSION_STEPS = ["files written", "recorded", "applied", "materialized", "read back"]
SWAP = "swapped in"  # a re-publish killed from here on has its new rows serving
REPUBLISH_STEPS = ["files written", "applied", "materialized", "read back", SWAP, "recorded"]

# A process that imports the publish code once, then forks one child per case (a fork costs
# milliseconds, an import of torch and feast tens of seconds). A child publishes and SIGKILLs
# itself when the step it was given is logged; the parent prints the child's exit status.
PUBLISHER = """
import json, logging, os, signal, sys
from pathlib import Path
from sail.feature_store.publish import publish

class KillAt(logging.Handler):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def emit(self, record):
        if getattr(record, "phase", None) == self.step:
            os.kill(os.getpid(), signal.SIGKILL)

print("ready", flush=True)
for line in sys.stdin:
    model_dir, version, home, step, dim, limit = line.rstrip("\\n").split("\\t")
    pid = os.fork()
    if pid == 0:
        os.dup2(2, 1)  # what feast prints goes to the log, not to the parent's answers
        log = logging.getLogger("sail.feature_store.online")
        log.setLevel(logging.INFO)
        log.addHandler(KillAt(step))
        try:
            limit = json.loads(limit)
            publish(Path(model_dir), version, dim=int(dim), home=Path(home), limit=limit)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


def run(context: Context) -> list[Section]:
    """Every kill, then the completed re-publish (see the module doc)."""
    from sail.feature_store.publish import publish

    began = time.perf_counter()
    work = context.folder("publish")
    home = work / "home"
    (home / "data").parent.mkdir(parents=True, exist_ok=True)
    if not (home / "data").exists():
        (home / "data").symlink_to(context.home / "data")
    other = _nudged_model(context.model_dir, work / "other-model")
    first = publish(context.model_dir, "v1", dim=DIM, home=home, limit=LIMIT)
    old = _rows(first.files)
    section = Section(
        "A publish killed at each step",
        ["publish", "killed at", "reads during", "readers saw", "after the kill", "lock", "holds"],
        note=(
            "v1 is online (the tiny model, 128 items, 3 users read). A publish in a process of its "
            "own SIGKILLs itself at each step while a thread reads v1. A new version (v2) must "
            "never disturb v1's rows nor be online after the kill; a re-publish of v1 by another "
            "model must show the old rows or the new, never empty or mixed, and the old rows "
            "while it is killed before the swap. The store's lock must be free right after each "
            "kill. Last, the re-publish runs to the end."
        ),
    )
    with _Publisher(work / "publisher.log") as publisher:
        steps = NEW_VERSION_STEPS[:2] if context.quick else NEW_VERSION_STEPS
        for step in steps:
            _kill_case(section, publisher, home, context.model_dir, "v2", step, old)
        steps = REPUBLISH_STEPS[-3:] if context.quick else REPUBLISH_STEPS
        for step in steps:
            _kill_case(section, publisher, home, other, "v1", step, old)
    _completed(section, home, other, old)
    section.seconds = round(time.perf_counter() - began, 1)
    return [section]


def _kill_case(section, publisher, home, model_dir, version, step, old) -> None:
    """One publish killed at `step`; what the readers saw and what serves after."""
    from sail.feature_store.repo import read_state

    with _Readers(home, old) as readers:
        status = publisher.publish(model_dir, version, home, step)
    killed = status == -9
    after = _which(home, None, old)
    lock_seconds = _lock_wait(home)
    state = read_state(home)["versions"]
    seen = readers.summary()
    label = "new version v2" if version == "v2" else "re-publish of v1"
    if version == "v2":
        v2_online = bool(state.get("v2", {}).get("online"))
        held = killed and set(readers.seen) == {"old"} and after == "old" and not v2_online
        after_text = f"v1 {after}; v2 {'online' if v2_online else 'not online'}"
    else:
        swapped = REPUBLISH_STEPS.index(step) >= REPUBLISH_STEPS.index(SWAP)
        allowed = {"old", "new"} if swapped else {"old"}
        held = killed and set(readers.seen) <= allowed and after == ("new" if swapped else "old")
        after_text = f"v1 {after}"
    held = held and lock_seconds < 1
    if not killed:
        after_text += f" (the publish exited {status}; see {publisher.log})"
    section.add(
        label,
        step,
        len(readers.seen),
        seen,
        after_text,
        f"free in {lock_seconds:.2f} s",
        "yes" if held else "NO",
        ok=held,
    )


def _completed(section, home, model_dir, old) -> None:
    """The re-publish of v1 by the other model, run to the end, watched."""
    from sail.feature_store.publish import publish

    with _Readers(home, old) as readers:
        report = publish(model_dir, "v1", dim=DIM, home=home, limit=LIMIT)
    after = _which(home, None, old)
    leftovers = _staged_leftovers(home)
    held = (
        set(readers.seen) <= {"old", "new"}
        and after == "new"
        and not leftovers
        and report.online_rows == report.rows
    )
    section.add(
        "re-publish of v1",
        "not killed",
        len(readers.seen),
        readers.summary(),
        f"v1 new; staged tables left: {len(leftovers)}",
        "",
        "yes" if held else "NO",
        ok=held,
    )


class _Publisher:
    """The forking publisher process (PUBLISHER) for the block's duration."""

    def __init__(self, log: Path):
        self.log = log

    def __enter__(self) -> _Publisher:
        self._log = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", PUBLISHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the publisher did not start; see {self.log}")
        return self

    def publish(self, model_dir: Path, version: str, home: Path, step: str) -> int:
        """Publish in a fresh fork that kills itself at `step`; its exit status (-9: killed)."""
        fields = [str(model_dir), version, str(home), step, str(DIM), json.dumps(LIMIT)]
        self.process.stdin.write("\t".join(fields) + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self._log.close()


class _Readers:
    """A thread reading v1's chosen items and users until the block ends; `seen` holds one
    verdict per read ('old', 'new', 'empty', 'mixed' or 'error: <type>')."""

    def __init__(self, home: Path, old: dict):
        self.home, self.old = home, old
        self.seen: list[str] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> _Readers:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def _read(self) -> None:
        from sail.feature_store.repo import open_store

        store = open_store(self.home)
        while not self._done.is_set():
            try:
                self.seen.append(_which(self.home, store, self.old))
            except Exception as error:  # a table gone under the reader
                self.seen.append(f"error: {type(error).__name__}")
            time.sleep(POLL_S)

    def summary(self) -> str:
        counts = pd.Series(self.seen, dtype=object).value_counts()
        return ", ".join(f"{name} {count}" for name, count in counts.items()) or "no reads"


def _which(home: Path, store, old: dict) -> str:
    """One read of the items, then one of the users, of v1: 'old' when every vector is v1's
    first rows, 'new' when none is, 'empty' when one is missing, else 'mixed'."""
    from sail.feature_store.query import online_features

    verdicts = set()
    for kind, ids in (("items", ITEMS), ("users", USERS)):
        frame = online_features(
            **{"item_ids" if kind == "items" else "user_ids": ids},
            home=home,
            version="v1",
            store=store,
        )
        rows = set()
        for key, vector in zip(ids, frame["embedding"], strict=True):
            if vector is None:
                rows.add("empty")
            else:
                rows.add("old" if np.array_equal(vector, old[kind][key]) else "new")
        verdicts.add(rows.pop() if len(rows) == 1 else "mixed")
    return verdicts.pop() if len(verdicts) == 1 else "mixed"


def _rows(files: dict[str, Path]) -> dict:
    """The chosen items' and users' vectors in a publish's files."""
    items = pd.read_parquet(files["item_embedding"]).set_index("item_id")["embedding"]
    users = pd.read_parquet(files["user_interest"]).set_index("user_id")["embedding"]
    return {"items": {i: items[i] for i in ITEMS}, "users": {u: users[u] for u in USERS}}


def _lock_wait(home: Path) -> float:
    """Seconds to take the store's lock right after a kill."""
    from sail.feature_store.lock import store_lock
    from sail.feature_store.repo import open_store

    store = open_store(home)
    began = time.perf_counter()
    with store_lock(store, timeout_s=30):
        return time.perf_counter() - began


def _staged_leftovers(home: Path) -> list[str]:
    """Staged views still registered and staged tables still in the online database."""
    from sail.feature_store.online import STAGED_SUFFIX
    from sail.feature_store.online_tables import connect
    from sail.feature_store.repo import open_store

    store = open_store(home)
    views = [view.name for view in store.list_feature_views() if STAGED_SUFFIX in view.name]
    with connect(store) as connection:
        tables = [
            name
            for (name,) in connection.execute("SELECT tablename FROM pg_tables").fetchall()
            if STAGED_SUFFIX in name
        ]
    return views + tables


def _nudged_model(model_dir: Path, target: Path) -> Path:
    """The model with every weight nudged (seeded): other vectors, same size and views."""
    import torch

    from model_code.factory import load_pretrained, save_pretrained

    if target.is_dir():
        return target
    model, processor = load_pretrained(model_dir)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return save_pretrained(model, processor, target)
