"""Lineage in MLflow: resolved configs as flat params, the data snapshot as a dataset input."""

from __future__ import annotations

import json

import mlflow
import pytest

from sail.tracking.lineage import data_input, flatten, log_config, log_data_input
from sail.tracking.store import configure


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    configure(uri)  # this store's experiment becomes the active one
    yield
    while mlflow.active_run():
        mlflow.end_run()


def test_flatten_keys_data_sets_by_name_and_keeps_lists_as_json():
    config = {
        "lr": 5e-05,
        "freeze": ["vision"],
        "datasets": [
            {"name": "openclipart", "losses": {"infonce": 1.0}, "patterns": ["text->vision"]},
            {"name": "groups", "temperature": 0.05},
        ],
        "empty": {},
        "note": "plain text",
    }
    assert flatten(config, "stage.") == {
        "stage.lr": "5e-05",
        "stage.freeze": '["vision"]',
        "stage.datasets.openclipart.losses.infonce": "1.0",
        "stage.datasets.openclipart.patterns": '["text->vision"]',
        "stage.datasets.groups.temperature": "0.05",
        "stage.empty": "{}",
        "stage.note": "plain text",
    }
    same_names = [{"name": "a", "x": 1}, {"name": "a", "x": 2}]
    assert flatten({"d": same_names}) == {"d": json.dumps(same_names)}


def test_log_config_writes_params_and_the_artifact_and_keeps_logged_values(store):
    with mlflow.start_run() as run:
        log_config("stage", {"lr": 0.1, "datasets": [{"name": "a", "weight": 0.7}]})
        log_config("stage", {"lr": 0.2})  # a second call never fails on an immutable param
    params = mlflow.get_run(run.info.run_id).data.params
    assert params == {"stage.lr": "0.1", "stage.datasets.a.weight": "0.7"}
    saved = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/config/stage.json")
    assert saved == {"lr": 0.2}


def test_the_data_snapshot_becomes_a_dataset_input(store, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    assert data_input(folder) is None  # prepared without ingest: nothing to record
    snapshot = {"snapshot": "2026-11-29", "snapshot_uri": "s3://b/2026-11-29", "fingerprint": ""}
    snapshot["fingerprint"] = "sha256:" + "ab12" * 16
    (folder / "snapshot.json").write_text(json.dumps(snapshot))
    with mlflow.start_run() as run:
        dataset = log_data_input(folder, context="train_content1")
    assert (dataset.name, dataset.digest) == ("sail-data@2026-11-29", "ab12ab12ab12")
    (recorded,) = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    tags = {tag.key: tag.value for tag in recorded.tags}
    assert tags["mlflow.data.context"] == "train_content1"
    assert tags["sail.data_fingerprint"] == snapshot["fingerprint"]
    assert tags["sail.snapshot_uri"] == "s3://b/2026-11-29"
    assert json.loads(recorded.dataset.source)["uri"] == str(folder.resolve())
