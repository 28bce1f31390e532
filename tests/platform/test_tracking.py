"""MLflow store, pipeline/step runs, the training callback and evaluation reports (real sqlite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest

from sail.tracking.callback import MlflowTrainingCallback
from sail.tracking.names import metric_name
from sail.tracking.reports import log_evaluation
from sail.tracking.runs import finish_pipeline_run, start_pipeline_run, step_run
from sail.tracking.store import EXPERIMENT, configure, local_artifact_root, local_tracking_uri

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One sqlite store for the module, named by $MLFLOW_TRACKING_URI (tests use own run ids)."""
    root = tmp_path_factory.mktemp("tracking")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAIL_HOME", str(root / "home"))
        uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri
        while mlflow.active_run() is not None:
            mlflow.end_run()


def _download(run_id: str, path: str, dst: Path) -> Path:
    return Path(
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=dst)
    )


def test_local_store_lives_under_sail_home(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("SAIL_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    uri = configure()
    assert uri == local_tracking_uri() == f"sqlite:///{tmp_path / 'home' / 'mlflow' / 'mlflow.db'}"
    experiment = mlflow.MlflowClient().get_experiment_by_name(EXPERIMENT)
    assert experiment.artifact_location == (local_artifact_root() / EXPERIMENT).as_uri()
    with step_run(start_pipeline_run("p-local", {}), "step") as run_id:
        mlflow.log_text("hello", "note.txt")
    assert (local_artifact_root() / EXPERIMENT / run_id / "artifacts" / "note.txt").is_file()
    assert not (tmp_path / "mlruns").exists()
    assert configure(f"sqlite:///{tmp_path / 'other.db'}").endswith("other.db")  # argument wins


def test_parent_and_nested_steps_from_separate_processes(store, tmp_path):
    parent = start_pipeline_run("pipe-1", {"preset": "tiny", "steps": 3})
    assert start_pipeline_run("pipe-1", {"preset": "tiny", "extra": 1}) == parent  # a retry
    script = textwrap.dedent(
        f"""
        import mlflow
        from sail.tracking.runs import step_run
        with step_run({parent!r}, "prepare") as run_id:
            mlflow.log_metric("rows", 42)
        print(run_id)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=os.environ, timeout=120
    )
    assert done.returncode == 0, done.stderr
    prepare_id = done.stdout.strip().splitlines()[-1]
    with step_run(parent, "train") as train_id:
        assert mlflow.active_run().info.run_id == train_id
        mlflow.log_metric("loss", 1.5)
    with pytest.raises(RuntimeError, match="boom"), step_run(parent, "evaluate"):
        raise RuntimeError("boom")
    finish_pipeline_run(parent, "FINISHED")

    client = mlflow.MlflowClient()
    children = client.search_runs(
        [client.get_run(parent).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent}'",
    )
    by_name = {run.info.run_name: run for run in children}
    assert set(by_name) == {"prepare", "train", "evaluate"}
    assert by_name["prepare"].info.run_id == prepare_id
    assert by_name["prepare"].data.metrics == {"rows": 42.0}
    assert by_name["train"].info.run_id == train_id
    assert {run.data.tags["sail.pipeline_run_id"] for run in children} == {"pipe-1"}
    assert by_name["train"].info.status == "FINISHED"
    assert by_name["evaluate"].info.status == "FAILED"
    parent_run = client.get_run(parent)
    assert parent_run.info.status == "FINISHED"
    assert parent_run.data.params == {"preset": "tiny", "steps": "3", "extra": "1"}
    assert parent_run.data.tags["sail.pipeline_run_id"] == "pipe-1"
    assert len(parent_run.data.tags.get("sail.git_commit", "0" * 40)) == 40
    assert mlflow.active_run() is None
    with pytest.raises(ValueError, match="unknown run status"):
        finish_pipeline_run(parent, "DONE")


def test_callback_logs_batched_metrics_and_loss_plot(store, tmp_path):
    parent = start_pipeline_run("pipe-2", {})
    client = mlflow.MlflowClient()
    with step_run(parent, "train") as run_id:
        callback = MlflowTrainingCallback(stage="content1", flush_every=3)
        for step in range(1, 8):
            dataset = "openclipart" if step % 2 else "groups"
            callback.on_step(
                {
                    "step": step,
                    "dataset": dataset,
                    "loss": 2.0 / step,
                    "infonce": 1.5 / step,
                    **({"micl": 0.5 / step} if dataset == "groups" else {}),
                    "lr": 1e-4,
                    "temperature/openclipart": 0.05,
                    "temperature/groups": 0.07,
                }
            )
            if step == 4:  # three steps were flushed, the fourth waits in the buffer
                assert len(client.get_metric_history(run_id, "loss")) == 3
        callback.on_checkpoint(tmp_path / "ckpt", 7)
        assert len(client.get_metric_history(run_id, "loss")) == 7
        callback.on_end({"steps": 7, "final_loss": 2.0 / 7, "out_dir": tmp_path})
    run = client.get_run(run_id)
    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(1, 8))
    assert history[-1].value == pytest.approx(2.0 / 7)
    assert [m.step for m in client.get_metric_history(run_id, "micl")] == [2, 4, 6]
    assert [m.step for m in client.get_metric_history(run_id, "loss/groups")] == [2, 4, 6]
    assert run.data.metrics["temperature/openclipart"] == pytest.approx(0.05)
    assert run.data.metrics["summary/final_loss"] == pytest.approx(2.0 / 7)
    assert "dataset" not in run.data.metrics and "summary/out_dir" not in run.data.metrics
    assert run.data.tags["sail.last_checkpoint"].startswith("7: ")
    assert run.data.tags["sail.progress"] == "7 steps"  # no total (on_start) nor ETA given
    png = _download(run_id, "plots/loss_content1.png", tmp_path / "dl")
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_callback_flushes_by_steps_or_time_and_tags_progress(store, monkeypatch):
    now = [0.0]
    monkeypatch.setattr("sail.tracking.callback.monotonic", lambda: now[0])
    parent = start_pipeline_run("pipe-4", {})
    client = mlflow.MlflowClient()
    with step_run(parent, "train") as run_id:
        callback = MlflowTrainingCallback(stage="content1", flush_every=4, flush_seconds=5)
        callback.on_start({"stage": "content1", "steps": 600, "start_step": 0})

        def step(n: int, seconds_left: float) -> list[int]:
            row = {"step": n, "dataset": "openclipart", "loss": 1.0 / n, "lr": 1e-4}
            row.update(samples_per_second=32.0, seconds_left=seconds_left, elapsed_seconds=n)
            callback.on_step(row)
            return [m.step for m in client.get_metric_history(run_id, "loss")]

        def tag() -> str | None:
            return client.get_run(run_id).data.tags.get("sail.progress")

        assert step(1, 250.0) == step(2, 250.0) == step(3, 250.0) == []
        assert tag() is None
        assert step(4, 250.0) == [1, 2, 3, 4]  # flush_every steps, long before the end
        assert tag() == "4/600 steps, ETA 4m10s"
        now[0] = 4.9
        assert step(5, 3725.0) == [1, 2, 3, 4]
        now[0] = 9.9  # over flush_seconds since the last write, only two steps waiting
        assert step(6, 3725.0) == [1, 2, 3, 4, 5, 6]
        assert tag() == "6/600 steps, ETA 1h02m"
        step(7, 9.4)
        callback.flush()
        assert tag() == "7/600 steps, ETA 9s"
    pace = client.get_metric_history(run_id, "samples_per_second")
    assert [(m.step, m.value) for m in pace] == [(n, 32.0) for n in range(1, 8)]
    assert client.get_metric_history(run_id, "seconds_left")[-1].value == pytest.approx(9.4)
    assert set(callback.curves) == {"loss"}  # pace and time are no loss curves


def test_callback_needs_a_run(store):
    with pytest.raises(RuntimeError, match="no MLflow run"):
        MlflowTrainingCallback()


def test_log_evaluation_writes_metrics_table_and_chart(store, tmp_path):
    parent = start_pipeline_run("pipe-3", {})
    results = {
        "sail": {"t2i/R@10": 0.18, "i2t/R@10": 0.2},
        "ridge": {"t2i/R@10": 0.49, "i2t/R@10": 0.45},
    }
    with step_run(parent, "evaluate") as run_id:
        flat = log_evaluation(results, "openclipart")
        with pytest.raises(ValueError, match="not a number"):
            log_evaluation({"sail": {"R@10": "high"}}, "bad")
    metrics = mlflow.MlflowClient().get_run(run_id).data.metrics
    assert metrics == flat
    assert metrics["openclipart/sail/t2i/R_10"] == pytest.approx(0.18)
    assert metrics["openclipart/ridge/i2t/R_10"] == pytest.approx(0.45)
    folder = _download(run_id, "evaluation", tmp_path / "dl")
    assert json.loads((folder / "openclipart.json").read_text()) == results
    table = (folder / "openclipart.md").read_text()
    assert "| model | i2t/R@10 | t2i/R@10 |" in table and "| sail | 0.2000 | 0.1800 |" in table
    assert (folder / "openclipart.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("temperature/openclipart", "temperature/openclipart"),
        ("t2i R@10", "t2i R_10"),
        ("/a//b/../c:", "a/b/c_"),
        ("hr@10 (ml)", "hr_10 _ml_"),
    ],
)
def test_metric_names_are_mlflow_safe(raw, clean):
    assert metric_name(raw) == clean
