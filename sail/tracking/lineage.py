"""What a run records about what it ran with: its resolved configuration, as flat params and a
JSON artifact, and the data snapshot it read, as an MLflow dataset input."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset

from sail.tracking.runs import current_run_id, log_new_params

DATA_NAME = "sail-data"
DIGEST_LENGTH = 12  # of the fingerprint's hex digits, as the dataset's digest


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """`{"a": {"b": 1}}` -> `{"a.b": "1"}`. A list of mappings that all have a `name` (data
    sets) is keyed by name; other lists and scalars become their JSON text."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        elif _named_entries(value):
            for entry in value:
                rest = {k: v for k, v in entry.items() if k != "name"}
                flat.update(flatten(rest, f"{name}.{entry['name']}."))
        else:
            flat[name] = value if isinstance(value, str) else json.dumps(value)
    return flat


def log_config(name: str, config: Mapping[str, Any], run_id: str | None = None) -> None:
    """Log a resolved configuration in `run_id` (default: the active run): every setting as a
    param `<name>.<key>` (those the run already has are kept as they are: params are immutable)
    and the whole of it as the artifact `config/<name>.json`."""
    run_id = current_run_id(run_id)
    log_new_params(run_id, flatten(config, f"{name}."))
    mlflow.MlflowClient().log_dict(run_id, dict(config), f"config/{name}.json")


def data_input(data_dir: str | Path | None = None) -> MetaDataset | None:
    """The ingested data folder (default: the step's, $SAIL_DATA_DIR) as an MLflow dataset (name
    `sail-data@<snapshot>`, digest from its fingerprint); None without a folder or without
    `snapshot.json` in it."""
    found = _snapshot_dataset(data_dir)
    return found[0] if found else None


def log_data_input(data_dir: str | Path | None, context: str) -> MetaDataset | None:
    """Record the data folder (as `data_input` finds it) as an input of the active run (what
    `context`, e.g. the step, did with it), with the snapshot's full fingerprint and origin as
    input tags; returns the dataset, or None when there is nothing to record."""
    found = _snapshot_dataset(data_dir)
    if found is None:
        return None
    dataset, snapshot = found
    tags = {
        "sail.data_fingerprint": snapshot["fingerprint"],
        "sail.data_snapshot": snapshot["snapshot"],
        "sail.snapshot_uri": snapshot.get("snapshot_uri") or "packaged sources",
    }
    mlflow.log_input(dataset, context=context, tags=tags)
    return dataset


def _snapshot_dataset(data_dir: str | Path | None) -> tuple[MetaDataset, dict] | None:
    """The folder's dataset and its `snapshot.json`, read once."""
    from model_code.data.ingest import read_snapshot
    from model_code.paths import DATA_ENV

    data_dir = data_dir or os.environ.get(DATA_ENV)
    if not data_dir:
        return None
    snapshot = read_snapshot(Path(data_dir))
    if not snapshot.get("fingerprint"):
        return None
    digest = snapshot["fingerprint"].split(":")[-1][:DIGEST_LENGTH]
    with warnings.catch_warnings():  # mlflow registers the local source twice and says so
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str(Path(data_dir).resolve()))
    name = f"{DATA_NAME}@{snapshot['snapshot']}"
    return MetaDataset(source, name=name, digest=digest), snapshot


def _named_entries(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, Mapping) and isinstance(v.get("name"), str) for v in value)
        and len({v["name"] for v in value}) == len(value)
    )
