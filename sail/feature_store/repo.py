"""The Feast repository in `feature_repo/`, opened for one feature store folder.

The store folder (`sail.feature_store.location.store_dir`) holds the local registry, online
database, offline Parquet files and publish state. `feature_repo/feature_store.yaml` is a
template with `${SAIL_FEATURE_STORE}`; `open_store(home)` renders it with the absolute folder into
`<store>/feature_store.yaml` and opens Feast there. The feature definitions come from
`feature_repo/features.py` (`definitions(store, versions)`). The Feast repository folder is
`$SAIL_FEATURE_REPO` when set (an installed copy), else the checkout's; `$SAIL_FEAST_CONFIG` names
a folder whose feature_store.yaml replaces the local default.

`<store>/published.json` records what has been published (`publish`) and which versions are
online (`sail.feature_store.online`):

    {"default": "3", "versions": {"3": {"online": true, "dim": 128, "event_timestamp": "...",
                                        "rows": {"item_embedding": 4570, ...}, ...}, ...}}

`default` is the version read when a query names none.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import yaml

from sail.feature_store.local_postgres import socket_dir
from sail.feature_store.location import store_dir

CONFIG_ENV = "SAIL_FEAST_CONFIG"
STORE_PLACEHOLDER = "${SAIL_FEATURE_STORE}"
SOCKET_PLACEHOLDER = "${SAIL_POSTGRES_SOCKET}"
CHECK_TIMEOUT_S = 20
CONFIG_FILE = "feature_store.yaml"
STATE_FILE = "published.json"


def feature_repo_dir() -> Path:
    """The Feast repository folder (feature_store.yaml template and features.py)."""
    override = os.environ.get("SAIL_FEATURE_REPO")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "feature_repo"


@cache
def _features_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("sail_feature_repo_features", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def features_module() -> ModuleType:
    """`feature_repo/features.py`, imported once per process."""
    return _features_module(feature_repo_dir() / "features.py")


def definitions(home: Path | str | None, versions: dict[str, dict]) -> dict:
    """The entities and the views of `versions` (version -> published.json record) for
    `home`, by name."""
    return features_module().definitions(store_dir(home), versions)


def _substitute(value, values: dict[str, str]):
    if isinstance(value, dict):
        return {key: _substitute(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, values) for item in value]
    if isinstance(value, str):
        for placeholder, text in values.items():
            value = value.replace(placeholder, text)
        return value
    return value


def render_config(home: Path | str | None = None) -> Path:
    """Write the template with the absolute store folder (and, when it names one, the socket of
    the store's local PostgreSQL server, started for it) into it; return that folder."""
    target_dir = store_dir(home)
    text = (feature_repo_dir() / CONFIG_FILE).read_text()
    values = {STORE_PLACEHOLDER: str(target_dir)}
    if SOCKET_PLACEHOLDER in text:
        values[SOCKET_PLACEHOLDER] = socket_dir(target_dir)
    rendered = yaml.safe_dump(_substitute(yaml.safe_load(text), values), sort_keys=False)
    target = target_dir / CONFIG_FILE
    if not target.is_file() or target.read_text() != rendered:
        write_atomic(target, rendered.encode())
    return target_dir


def open_store(home: Path | str | None = None):
    """A `feast.FeatureStore` on the rendered local config of `home`, or on the folder named by
    `$SAIL_FEAST_CONFIG` (a production feature_store.yaml, feature_repo/production.yaml.example)."""
    from feast import FeatureStore

    override = os.environ.get(CONFIG_ENV)
    return FeatureStore(repo_path=override or str(render_config(home)))


class FeatureStoreUnavailable(RuntimeError):
    """The feature store's registry or online store cannot be reached or written."""


def check_store(home: Path | str | None = None, timeout: float = CHECK_TIMEOUT_S) -> None:
    """Raise FeatureStoreUnavailable, naming the registry, when the store does not answer a
    registry listing within `timeout` seconds (or its local folder cannot be written)."""
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as Timeout

    if not os.environ.get(CONFIG_ENV):
        folder = store_dir(home)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomic(folder / ".write-check", b"")
        except OSError as error:
            raise FeatureStoreUnavailable(f"feature store folder {folder}: {error}") from error
    try:
        store = open_store(home)
    except Exception as error:  # a config Feast cannot load, a store client not installed
        where = os.environ.get(CONFIG_ENV) or store_dir(home)
        raise FeatureStoreUnavailable(f"feature store config in {where}: {error}") from error
    registry = store.config.registry.path
    pool = ThreadPoolExecutor(max_workers=1)
    listing = pool.submit(store.list_feature_views)
    try:
        listing.result(timeout=timeout)
    except Timeout:
        raise FeatureStoreUnavailable(
            f"the feature store registry at {registry} did not answer within {timeout:g} s"
        ) from None
    except Exception as error:
        if not _missing_registry(error):
            raise FeatureStoreUnavailable(
                f"the feature store registry at {registry} is not reachable: {error}"
            ) from error
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _missing_registry(error: Exception) -> bool:
    """A registry that does not exist yet (nothing applied): publishing creates it."""
    from feast.errors import FeatureViewNotFoundException

    return isinstance(error, FileNotFoundError | FeatureViewNotFoundException)


def read_state(home: Path | str | None = None) -> dict:
    """What has been published in `home` (empty when nothing has).

    A store published before versions had views of their own (`"online": "<version>"`, one set
    of unversioned views) reads as that version published but not online: publishing or
    bringing a version online drops the old views."""
    path = store_dir(home) / STATE_FILE
    if not path.is_file():
        return {"default": None, "versions": {}}
    state = json.loads(path.read_text())
    if "online" in state:
        del state["online"]
        state["default"] = None
        for record in state["versions"].values():
            record["online"] = False
    return state


def write_state(state: dict, home: Path | str | None = None) -> None:
    write_atomic(store_dir(home) / STATE_FILE, (json.dumps(state, indent=2) + "\n").encode())


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a hidden temporary name next to `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
