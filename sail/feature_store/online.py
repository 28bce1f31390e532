"""Which published versions are online, and which one a query reads when it names none.

Every version has views (and so online tables) of its own (`feature_repo/features.py`):

- `bring_online(version)` recreates the version's online tables empty and materializes its
  Parquet files into them (`publish` ends with it; a retired version comes back the same way,
  a rollback);
- `retire(keep)` takes every online version not in `keep` offline: its views and online tables
  are dropped, its Parquet files and codebooks stay;
- `set_default(version)` names the version that `sail.feature_store.query` reads by default;
- `follow(served, default)` makes the catalogue match what the endpoint serves: every served
  version online, `default` (the stable one) the default, every other version retired. The deploy
  step calls it after a rollout, `sail model promote|rollback` after moving the endpoint.

published.json records all of it (`sail.feature_store.repo`). Every change applies the views of
exactly the online versions and deletes every other registered view (a retired version's, or the
unversioned views of a store published before versions had their own), so a run that stopped half
way is tidied by the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from sail.feature_store.location import store_dir
from sail.feature_store.repo import (
    definitions,
    features_module,
    open_store,
    read_state,
    write_state,
)

logger = logging.getLogger(__name__)

# Materializing reads [t, t + window], both ends included: the version's rows, all stamped t.
MATERIALIZE_WINDOW = timedelta(milliseconds=1)


class NotPublished(LookupError):
    """An item or user the online store does not hold, or a version that is not online."""


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


def bring_online(version: str, home: Path | str | None = None, *, store=None) -> dict:
    """Put the version's published rows online (its tables recreated first, so they hold
    exactly its Parquet files' rows); it becomes the default when there is none. Returns the
    state as written."""
    state = read_state(home)
    record = state["versions"].get(version)
    if record is None:
        raise NotPublished(f"model version {version} was never published in {store_dir(home)}")
    _check_files(home, version, record)
    store = store or open_store(home)
    versions = _records(state, add=version)
    _apply(store, home, versions, recreate=version)
    start = pd.Timestamp(record["event_timestamp"]).to_pydatetime()
    store.materialize(
        start_date=start,
        end_date=start + MATERIALIZE_WINDOW,
        feature_views=[_view_name(view, version) for view in record["rows"]],
    )
    record["online"] = True
    record.pop("retired", None)
    state["default"] = state.get("default") or version
    write_state(state, home)
    return state


def retire(keep: Collection[str], home: Path | str | None = None, *, store=None) -> list[str]:
    """Take every online version not in `keep` offline (its online rows dropped); return them.
    The default version must be kept."""
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
    _apply(store or open_store(home), home, _records(state))
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
    state = read_state(home)
    before = state.get("default")
    published = [version for version in served if version in state["versions"]]
    change = CatalogueChange((before, before))
    change.unpublished = [version for version in served if version not in state["versions"]]
    for version in published:
        if version not in online_versions(state):
            state = bring_online(version, home, store=store)
            change.brought_online.append(version)
    if default in published:
        set_default(default, home)
    elif before is not None and before not in served:
        set_default(None, home)
    change.default = (before, read_state(home).get("default"))
    change.retired = retire(published, home, store=store)
    return change


def set_default(version: str | None, home: Path | str | None = None) -> str | None:
    """Make an online version the one queries read by default (None: no default); return the
    previous default."""
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


def _apply(store, home, versions: dict[str, dict], recreate: str | None = None) -> None:
    """Register exactly the views of `versions`: every other registered view is deleted (its
    online table dropped), and so are `recreate`'s own views, which are then applied empty."""
    objects = definitions(home, versions)
    registered = {view.name: view for view in store.list_feature_views()}
    stale = [
        view
        for name, view in registered.items()
        if name not in objects or (recreate and features_module().version_of(name) == recreate)
    ]
    if stale:
        logger.info("dropping the online tables of %s", ", ".join(view.name for view in stale))
        store.apply([], objects_to_delete=stale, partial=False)
    store.apply(list(objects.values()))


def _check_files(home, version: str, record: dict) -> None:
    """The version's Parquet files must still be there (a local store's offline folders)."""
    module = features_module()
    missing = [
        str(path)
        for view in record["rows"]
        if not (path := module.version_file(store_dir(home), view, version)).is_file()
    ]
    if missing:
        raise NotPublished(f"model version {version}'s files are gone: {', '.join(missing)}")
