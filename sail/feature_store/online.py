"""Which published versions are online, and which one a query reads when it names none.

Every version has views (and so online tables) of its own (`feature_repo/features.py`):

- `bring_online(version)` recreates the version's online tables empty, loads its
  Parquet files into them and reads every entity back before the version counts as online
  (`publish` ends with it; a retired version comes back the same way, a rollback);
- `replace_online(version)` swaps an online version's rows for its re-published ones, staged in
  files and tables of their own (`staged_name`) and read back first: readers see the old rows or
  the new, never an empty or mixed table (`sail.feature_store.online_tables.swap_in`);
- `retire(keep)` takes every online version not in `keep` offline: its views and online tables
  are dropped, its Parquet files and codebooks stay;
- `set_default(version)` names the version that `sail.feature_store.query` reads by default;
- `follow(served, default)` makes the catalogue match what the endpoint serves: every served
  version online, `default` (the stable one) the default, every other version retired. The deploy
  step calls it after a rollout, `sail model promote|rollback` after moving the endpoint.

Every change holds the store's lock (`sail.feature_store.lock`): one at a time, and a crashed
holder never keeps it. published.json records all of it (`sail.feature_store.repo`). Every
change applies the views of exactly the online versions and deletes every other registered view
(a retired version's, a re-publish's staged ones, or the unversioned views of a store published
before versions had their own), so a run that stopped half way is tidied by the next one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from sail.feature_store.location import store_dir
from sail.feature_store.lock import store_lock
from sail.feature_store.online_tables import copy_rows, swap_in
from sail.feature_store.repo import (
    definitions,
    features_module,
    open_store,
    read_state,
    write_state,
)

logger = logging.getLogger(__name__)

STAGED_SUFFIX = "__next"  # an online version's re-published rows, before they are swapped in
READ_BACK_CHUNK = 1000


class NotPublished(LookupError):
    """An item or user the online store does not hold, or a version that is not online."""


class IncompleteLoad(RuntimeError):
    """Loading left fewer online entities than the version's files hold."""


def staged_name(version: str) -> str:
    """The name an online version's re-published files and views carry until swapped in."""
    return f"{version}{STAGED_SUFFIX}"


def online_versions(state: dict) -> list[str]:
    """The versions whose rows are online, oldest first."""
    records = state["versions"]
    online = [version for version, record in records.items() if record.get("online")]
    return sorted(online, key=lambda version: records[version]["event_timestamp"])


def describe(state: dict) -> str:
    """`online: 3, 4 (default 3)`, or that nothing is online."""
    online = online_versions(state)
    if not online:
        return "no version is online"
    return f"online: {', '.join(online)} (default {state.get('default') or 'none'})"


def check_online(state: dict, version: str, home: Path | str | None = None) -> dict:
    """The version's record; NotPublished, naming what is online, when its rows are not."""
    record = state["versions"].get(version)
    if record is None or not record.get("online"):
        status = "was never published" if record is None else "is not online"
        raise NotPublished(
            f"model version {version} {status} in {store_dir(home)} ({describe(state)})"
        )
    return record


def bring_online(version: str, home: Path | str | None = None, *, store=None) -> dict[str, int]:
    """Put the version's published rows online (its tables recreated first, so they hold
    exactly its Parquet files' rows, all read back before it counts as online); it becomes the
    default when there is none. A version already online is left as it is (`replace_online`
    reloads one). Returns the entities read back per view (none for a version left as it is)."""
    store = store or open_store(home)
    with store_lock(store):
        state = read_state(home)
        record = state["versions"].get(version)
        if record is None:
            raise NotPublished(f"model version {version} was never published in {store_dir(home)}")
        if record.get("online"):
            return {}
        _check_files(home, record, version)
        _apply(store, home, _records(state, add=version), recreate=[version])
        phase(version, "applied")
        loaded = _load(store, home, record, version)
        record["online"] = True
        record.pop("retired", None)
        state["default"] = state.get("default") or version
        write_state(state, home)
    return loaded


def replace_online(
    version: str, record: dict, home: Path | str | None = None, *, store=None
) -> dict:
    """Swap an online version's rows for its re-published ones without readers seeing them half
    done. `record` is the re-publish's published.json record; `publish` wrote its files under
    `staged_name(version)`. The staged views are applied beside the live ones, loaded and read
    back; then every view's table is swapped in, all in one transaction, the staged files are
    renamed over the version's and the record is written. A crash before the swap leaves the old
    rows serving (the next change drops the staged views). The re-publish must keep the
    version's size and views. Returns the entities read back per view."""
    store = store or open_store(home)
    staged = staged_name(version)
    with store_lock(store):
        state = read_state(home)
        live = check_online(state, version, home)
        _check_same_shape(version, live, record)
        _check_files(home, record, staged)
        _apply(store, home, {**_records(state), staged: record}, recreate=[staged])
        phase(staged, "applied")
        loaded = _load(store, home, record, staged)
        swap_in(
            store, {_view_name(view, staged): _view_name(view, version) for view in record["rows"]}
        )
        phase(version, "swapped in")
        _move_files(home, record, staged, version)
        state["versions"][version] = {**record, "online": True}
        write_state(state, home)
        phase(version, "recorded")
        _apply(store, home, _records(state))  # unregisters the staged views (no tables left)
    return loaded


def _check_same_shape(version: str, live: dict, record: dict) -> None:
    before = (int(live["dim"]), sorted(live["rows"]), live.get("codes", []))
    if before != (int(record["dim"]), sorted(record["rows"]), record.get("codes", [])):
        raise ValueError(
            f"model version {version} is online with size {live['dim']}, views "
            f"{sorted(live['rows'])} and codes {live.get('codes', [])}; a re-publish must keep "
            f"them (got {record['dim']}, {sorted(record['rows'])}, {record.get('codes', [])}): "
            "publish a new version, or retire this one first"
        )


def retire(keep: Collection[str], home: Path | str | None = None, *, store=None) -> list[str]:
    """Take every online version not in `keep` offline (its online rows dropped); return them.
    The default version must be kept."""
    store = store or open_store(home)
    with store_lock(store):
        state = read_state(home)
        default = state.get("default")
        if default is not None and default not in keep:
            raise ValueError(f"the default version {default} must stay online; keep it or move it")
        retired = [version for version in online_versions(state) if version not in keep]
        if not retired:
            return []
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for version in retired:  # recorded first: a crash below leaves views the next apply drops
            state["versions"][version].update(online=False, retired=now)
        write_state(state, home)
        logger.info("retiring model versions %s from the online store", ", ".join(retired))
        _apply(store, home, _records(state))
    return retired


@dataclass
class CatalogueChange:
    """What `follow` changed."""

    default: tuple[str | None, str | None]  # before, after
    brought_online: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    unpublished: list[str] = field(default_factory=list)  # served, but never published here

    def summary(self) -> str:
        """`default 3 -> 4, brought online: 4, retired: 3` (or `unchanged (default 4)`)."""
        before, after = self.default
        parts = [f"default {before} -> {after}"] if before != after else []
        for label, versions in (
            ("brought online", self.brought_online),
            ("retired", self.retired),
            ("served but never published here", self.unpublished),
        ):
            if versions:
                parts.append(f"{label}: {', '.join(versions)}")
        return ", ".join(parts) or f"unchanged (default {after})"


def follow(
    served: Collection[str], default: str, home: Path | str | None = None, *, store=None
) -> CatalogueChange:
    """Every served version online (from its files, when it was retired), `default` the default,
    every other version retired. A served version that was never published here is reported,
    not invented: queries embedded by it are refused until it is published."""
    store = store or open_store(home)
    with store_lock(store):
        state = read_state(home)
        before = state.get("default")
        published = [version for version in served if version in state["versions"]]
        change = CatalogueChange((before, before))
        change.unpublished = [version for version in served if version not in state["versions"]]
        for version in published:
            if version not in online_versions(state):
                bring_online(version, home, store=store)
                change.brought_online.append(version)
                state = read_state(home)
        if default in published:
            set_default(default, home, store=store)
        elif before is not None and before not in served:
            set_default(None, home, store=store)
        change.default = (before, read_state(home).get("default"))
        change.retired = retire(published, home, store=store)
    return change


def set_default(version: str | None, home: Path | str | None = None, *, store=None) -> str | None:
    """Make an online version the one queries read by default (None: no default); return the
    previous default."""
    with store_lock(store or open_store(home)):
        state = read_state(home)
        if version is not None:
            check_online(state, version, home)
        previous, state["default"] = state.get("default"), version
        write_state(state, home)
    return previous


def _view_name(view: str, version: str) -> str:
    return features_module().view_name(view, version)


def _records(state: dict, add: str | None = None) -> dict[str, dict]:
    names = [*online_versions(state), *([add] if add else [])]
    return {name: state["versions"][name] for name in dict.fromkeys(names)}


def _apply(store, home, versions: dict[str, dict], recreate: Collection[str] = ()) -> None:
    """Register exactly the views of `versions` (name -> record): every other registered view is
    deleted (its online table dropped), and so are those of the names in `recreate`, which are
    then applied empty."""
    objects = definitions(home, versions)
    registered = {view.name: view for view in store.list_feature_views()}
    stale = [
        view
        for name, view in registered.items()
        if name not in objects or features_module().version_of(name) in recreate
    ]
    if stale:
        logger.info("dropping the online tables of %s", ", ".join(view.name for view in stale))
        store.apply([], objects_to_delete=stale, partial=False)
    store.apply(list(objects.values()))


def _load(store, home, record: dict, name: str) -> dict[str, int]:
    """Write the files of `name` (a version, or its staged re-publish) into its views' empty
    online tables (`copy_rows`) and read every entity back: the entities found per view;
    IncompleteLoad when one is missing."""
    for view, path in _files(home, record, name).items():
        feature_view = store.get_feature_view(_view_name(view, name))
        copy_rows(store, feature_view, pq.read_table(path))
    phase(name, "materialized")
    found = _count_online(store, home, record, name)
    for view, count in found.items():
        expected = record["rows"][view]
        if count != expected:
            raise IncompleteLoad(
                f"{_view_name(view, name)} holds {count} of the {expected} entities of its file "
                "after loading; the version was not switched"
            )
    phase(name, "read back")
    return found


def _count_online(store, home, record: dict, name: str) -> dict[str, int]:
    """Per view, how many of the entities in `name`'s files its online view returns."""
    found = {}
    for view, path in _files(home, record, name).items():
        key = "user_id" if view == "user_interest" else "item_id"
        ids = pq.read_table(path, columns=[key]).column(0).to_pylist()
        found[view] = 0
        for start in range(0, len(ids), READ_BACK_CHUNK):
            rows = [{key: value} for value in ids[start : start + READ_BACK_CHUNK]]
            values = store.get_online_features(
                features=[f"{_view_name(view, name)}:model_version"], entity_rows=rows
            ).to_dict()["model_version"]
            found[view] += sum(value is not None for value in values)
    return found


def phase(name: str, step: str) -> None:
    """Log a step of a change to the store; the record carries `phase` (`make hostile` kills a
    publish at each one)."""
    logger.info("model version %s: %s", name, step, extra={"phase": step})


def _check_files(home, record: dict, name: str) -> None:
    """The Parquet files of `name` (a version, or its staged re-publish) must be there."""
    missing = [str(path) for path in _files(home, record, name).values() if not path.is_file()]
    if missing:
        raise NotPublished(f"model version {name}'s files are gone: {', '.join(missing)}")


def _files(home, record: dict, name: str) -> dict[str, Path]:
    module = features_module()
    return {view: module.version_file(store_dir(home), view, name) for view in record["rows"]}


def _move_files(home, record: dict, staged: str, version: str) -> None:
    """The staged files renamed over the version's (each rename atomic)."""
    targets = _files(home, record, version)
    for view, path in _files(home, record, staged).items():
        os.replace(path, targets[view])
