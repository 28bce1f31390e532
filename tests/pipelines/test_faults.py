"""Faults a step must survive or report plainly: services that do not answer, a missing
environment, a step killed half-way."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sail.feature_store.repo import FeatureStoreUnavailable, check_store
from sail.pipeline import steps
from sail.tracking.server import TrackingUnavailable, free_port


def _open_step() -> None:
    with steps.tracked("validate_data"):
        pass


def test_an_unreachable_tracking_server_is_named_within_seconds(monkeypatch):
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("SAIL_PIPELINE_RUN_ID", "run-1")
    began = time.monotonic()
    with pytest.raises(TrackingUnavailable, match=f"tracking server at {uri} is not reachable"):
        _open_step()
    assert time.monotonic() - began < 30


def test_a_step_without_its_environment_says_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(steps.StepEnvironmentError, match="MLFLOW_TRACKING_URI is not set"):
        _open_step()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("SAIL_PIPELINE_RUN_ID", raising=False)
    with pytest.raises(steps.StepEnvironmentError, match="SAIL_PIPELINE_RUN_ID is not set"):
        _open_step()


def test_a_feature_store_that_cannot_be_written_is_named(monkeypatch):
    monkeypatch.delenv("SAIL_FEAST_CONFIG", raising=False)
    monkeypatch.setenv("SAIL_FEATURE_STORE", "/proc/sail-feature-store")
    began = time.monotonic()
    with pytest.raises(FeatureStoreUnavailable, match="/proc/sail-feature-store"):
        check_store()
    assert time.monotonic() - began < 30


def test_an_unreachable_feature_store_registry_is_named(monkeypatch, tmp_path):
    registry = "sqlite:////proc/sail/registry.db"
    config = tmp_path / "feast"
    config.mkdir()
    (config / "feature_store.yaml").write_text(
        "project: sail_embedding\nprovider: local\n"
        f"registry:\n  registry_type: sql\n  path: {registry}\n"
        f"online_store:\n  type: sqlite\n  path: {tmp_path / 'online.db'}\n"
        "entity_key_serialization_version: 3\n"
    )
    monkeypatch.setenv("SAIL_FEAST_CONFIG", str(config))
    began = time.monotonic()
    with pytest.raises(FeatureStoreUnavailable, match=registry):
        check_store()
    assert time.monotonic() - began < 30


STEPS = 30  # a checkpoint at step 5 (CHECKPOINT_EVERY), 25 steps to kill it in
CHECKPOINT_EVERY = 5
TRAIN = f"""
import sys
from pathlib import Path
from sail.pipeline import steps
overrides = {{"checkpoint_every": {CHECKPOINT_EVERY}}}
print(steps.train("tiny", "content1", int(sys.argv[2]), Path(sys.argv[1]), overrides=overrides))
"""


def _train(out: Path, steps_: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", TRAIN, str(out), str(steps_)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_a_killed_training_step_resumes_and_never_leaves_half_an_artifact(prepared_home, tmp_path):
    """SIGKILL after the first checkpoint (step 5): no model at the artifact path; the re-run
    resumes from the checkpoint and puts the whole run folder there."""
    env = {
        **os.environ,
        "SAIL_DATA_DIR": str(prepared_home / "data"),
        "SAIL_CACHE_DIR": str(prepared_home / "cache"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "SAIL_PIPELINE_RUN_ID": "run-1",
        "SAIL_PROGRESS": "0",
    }
    env.pop("MASTER_PORT", None)
    out = tmp_path / "model"
    checkpoint = Path(f"{out}.partial") / "checkpoints" / "latest"
    first = _train(out, STEPS, env)
    deadline = time.monotonic() + 600
    while not checkpoint.is_file() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert checkpoint.is_file(), first.stdout.read()
    assert not out.exists()  # the next step would find nothing, not half a model
    second = _train(out, STEPS, env)
    output, _ = second.communicate(timeout=900)
    assert second.returncode == 0, output
    assert "'resumed': True" in output
    assert (out / "model" / "config.json").is_file() and not Path(f"{out}.partial").exists()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, STEPS + 1))
