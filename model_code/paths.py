"""Where local state lives: under SAIL_HOME (default `.sail/` in the working directory).

Two locations can be set apart from SAIL_HOME, as a pipeline step on a cluster needs them:
`SAIL_DATA_DIR` (the prepared data, e.g. the folder of a KFP Dataset artifact) and `SAIL_CACHE_DIR`
(caches that are pure functions of their inputs, e.g. a cache volume shared by steps).
"""

import os
from pathlib import Path

DATA_ENV = "SAIL_DATA_DIR"
CACHE_ENV = "SAIL_CACHE_DIR"


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
