"""The Feast repository in `feature_repo/`, opened for one SAIL_HOME.

`feature_repo/feature_store.yaml` is a template with `${SAIL_HOME}`; `open_store(home)` renders it
with the absolute home into `<home>/feature_store/feature_store.yaml` and opens Feast there. The
feature definitions come from `feature_repo/features.py` (`definitions(home, dim)`). The Feast
repository folder is `$SAIL_FEATURE_REPO` when set (an installed copy), else the checkout's;
`$SAIL_FEAST_CONFIG` names a folder whose feature_store.yaml replaces the local default.

`<home>/feature_store/published.json` records what has been published (written by `publish`):

    {"online": "v3", "versions": {"v3": {"dim": 128, "event_timestamp": "...", ...}}}
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

from model_code.paths import sail_home

# Before anything imports feast's sqlite module: it must bind pysqlite3 (see the module).
from sail.feature_store import sqlite_vec_store  # noqa: F401

HOME_PLACEHOLDER = "${SAIL_HOME}"
CONFIG_FILE = "feature_store.yaml"
STATE_FILE = "published.json"


def feature_repo_dir() -> Path:
    """The Feast repository folder (feature_store.yaml template and features.py)."""
    override = os.environ.get("SAIL_FEATURE_REPO")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "feature_repo"


def resolve_home(home: Path | str | None = None) -> Path:
    """`home` as an absolute path; SAIL_HOME (`model_code.paths.sail_home`) when None."""
    return Path(home).resolve() if home is not None else sail_home()


def store_dir(home: Path | str | None = None) -> Path:
    """Everything of the feature store lives here: config, registry, online DB, Parquet."""
    return resolve_home(home) / "feature_store"


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


def definitions(home: Path | str | None, dim: int) -> dict:
    """The entities and feature views for `home` with `dim`-long vectors, by name."""
    return features_module().definitions(resolve_home(home), dim)


def _substitute(value, home: str):
    if isinstance(value, dict):
        return {key: _substitute(item, home) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, home) for item in value]
    if isinstance(value, str):
        return value.replace(HOME_PLACEHOLDER, home)
    return value


def render_config(home: Path | str | None = None) -> Path:
    """Write the template with the absolute home into the store folder; return that folder."""
    target_dir = store_dir(home)
    template = yaml.safe_load((feature_repo_dir() / CONFIG_FILE).read_text())
    rendered = yaml.safe_dump(_substitute(template, str(resolve_home(home))), sort_keys=False)
    target = target_dir / CONFIG_FILE
    if not target.is_file() or target.read_text() != rendered:
        write_atomic(target, rendered.encode())
    return target_dir


def open_store(home: Path | str | None = None):
    """A `feast.FeatureStore` on the rendered local config of `home`, or on the folder named by
    `$SAIL_FEAST_CONFIG` (a production feature_store.yaml, feature_repo/production.yaml.example)."""
    from feast import FeatureStore

    override = os.environ.get("SAIL_FEAST_CONFIG")
    return FeatureStore(repo_path=override or str(render_config(home)))


def read_state(home: Path | str | None = None) -> dict:
    """What has been published in `home` (empty when nothing has)."""
    path = store_dir(home) / STATE_FILE
    if not path.is_file():
        return {"online": None, "versions": {}}
    return json.loads(path.read_text())


def write_state(state: dict, home: Path | str | None = None) -> None:
    write_atomic(store_dir(home) / STATE_FILE, (json.dumps(state, indent=2) + "\n").encode())


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a hidden temporary name next to `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
