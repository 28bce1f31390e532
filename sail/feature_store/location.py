"""Which folder is the feature store: light enough for processes that never open Feast.

`<home>/feature_store` for an explicit `home`, else $SAIL_FEATURE_STORE, else
`$SAIL_HOME/feature_store`. A pipeline step gets the variable from its environment, as a pod gets
it from the cluster's ConfigMap.
"""

from __future__ import annotations

import os
from pathlib import Path

from model_code.paths import sail_home

STORE_ENV = "SAIL_FEATURE_STORE"


def resolve_home(home: Path | str | None = None) -> Path:
    """`home` as an absolute path; SAIL_HOME (`model_code.paths.sail_home`) when None."""
    return Path(home).resolve() if home is not None else sail_home()


def store_dir(home: Path | str | None = None) -> Path:
    """Everything of the feature store lives here: config, registry, online DB, Parquet."""
    if home is None and (override := os.environ.get(STORE_ENV)):
        return Path(override).resolve()
    return resolve_home(home) / "feature_store"
