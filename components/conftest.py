"""Fixtures for the component tests: real data prepared small, a private MLflow store, artifacts."""

from __future__ import annotations

import pytest
from kfp import dsl


@pytest.fixture
def home(prepared_home, tmp_path, monkeypatch):
    """SAIL_HOME with the data prepared, and an MLflow store of this test's own."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return prepared_home


@pytest.fixture
def artifact(tmp_path):
    """artifact(dsl.Model, "name") -> an artifact object whose path lies in the test's folder."""

    def make(kind: type[dsl.Artifact], name: str, **metadata) -> dsl.Artifact:
        made = kind(uri=str(tmp_path / "artifacts" / name), metadata=dict(metadata))
        (tmp_path / "artifacts").mkdir(exist_ok=True)
        return made

    return make


@pytest.fixture(scope="session")
def trained_tiny(prepared_home, tmp_path_factory):
    """A tiny content1 training folder (2 steps on the real data), as a Model artifact's path."""
    from model_code.training.run import train_stage

    out = tmp_path_factory.mktemp("trained-tiny")
    train_stage("tiny", "content1", out, steps=2, batch_size=4, synthetic=False)
    return out
