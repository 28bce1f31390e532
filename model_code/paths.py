"""Where local state lives: under SAIL_HOME (default `.sail/` in the working directory)."""

import os
from pathlib import Path


def sail_home() -> Path:
    """The root of local state (MLflow store, Feast files, pipeline root, prepared data)."""
    return Path(os.environ.get("SAIL_HOME", ".sail")).resolve()


def data_dir() -> Path:
    """Prepared data sets live here, one folder per data set."""
    return sail_home() / "data"


def feature_cache_dir(home: Path | None = None) -> Path:
    """Frozen vision-tower features shared by training stages, evaluations and publishing."""
    return Path(home or sail_home()) / "cache" / "tower-features"
