"""Fixtures for the component tests: real data prepared small, the services a pod is given (a
private MLflow store, a feature store folder, the cache folder), a pipeline run id, artifacts."""

from __future__ import annotations

import pytest
from kfp import dsl


@pytest.fixture
def home(prepared_home, tmp_path, monkeypatch):
    """SAIL_HOME with the data prepared; the step environment a pod gets from the cluster: an
    MLflow store and a feature store of this test's own, the session's caches, run id run-1."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("SAIL_FEATURE_STORE", str(tmp_path / "feature_store"))
    monkeypatch.setenv("SAIL_CACHE_DIR", str(prepared_home / "cache"))
    monkeypatch.setenv("SAIL_PIPELINE_RUN_ID", "run-1")
    return prepared_home


@pytest.fixture
def in_run(monkeypatch):
    """in_run("run-2"): the steps called next belong to pipeline run `run-2`."""
    return lambda run_id: monkeypatch.setenv("SAIL_PIPELINE_RUN_ID", run_id)


@pytest.fixture
def artifact(tmp_path):
    """artifact(dsl.Model, "name") -> an artifact object whose path lies in the test's folder."""

    def make(kind: type[dsl.Artifact], name: str, **metadata) -> dsl.Artifact:
        made = kind(uri=str(tmp_path / "artifacts" / name), metadata=dict(metadata))
        (tmp_path / "artifacts").mkdir(exist_ok=True)
        return made

    return make


@pytest.fixture
def data(home):
    """The prepared data as the Dataset artifact an ingest step hands on."""
    return dsl.Dataset(uri=str(home / "data"), metadata={"fingerprint": "sha256:abc"})


@pytest.fixture(scope="session")
def trained_tiny(prepared_home, tmp_path_factory):
    """A tiny content1 training folder (2 steps on the real data), as a Model artifact's path."""
    from model_code.training.run import train_stage

    out = tmp_path_factory.mktemp("trained-tiny")
    train_stage("tiny", "content1", out, steps=2, batch_size=4, synthetic=False)
    return out
