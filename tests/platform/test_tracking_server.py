"""The local MLflow tracking server: reached over HTTP, stopped after, never outliving its run."""

import os
import signal
import subprocess
import sys
import time

import mlflow

from sail.tracking.server import answers, local_server, tracking_service

STARTS_AND_WAITS = """
import sys, time
from sail.tracking.server import local_server
with local_server(sys.argv[1]) as uri:
    print(uri, flush=True)
    time.sleep(600)
"""


def test_runs_and_artifacts_go_through_the_server_and_it_stops_after(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with local_server(tmp_path / "mlflow") as uri:
        assert answers(uri) and uri.startswith("http://127.0.0.1:")
        client = mlflow.MlflowClient(tracking_uri=uri)
        run = client.create_run(client.create_experiment("e"))
        (tmp_path / "note.txt").write_text("hello")
        client.log_artifact(run.info.run_id, str(tmp_path / "note.txt"))
        assert client.get_experiment(run.info.experiment_id).artifact_location.startswith(
            "mlflow-artifacts:"
        )
    assert not answers(uri, timeout=2)
    assert list((tmp_path / "mlflow" / "artifacts").rglob("note.txt"))  # the served store
    assert (tmp_path / "mlflow" / "mlflow.db").is_file()


def test_a_configured_server_is_used_as_it_is(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    with tracking_service() as uri:
        assert uri == "http://mlflow.example:5000"


def test_the_server_stops_when_its_starter_is_killed(tmp_path):
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTS_AND_WAITS, str(tmp_path / "mlflow")],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    uri = starter.stdout.readline().strip()
    assert answers(uri)
    os.killpg(starter.pid, signal.SIGKILL)  # no cleanup runs in the starter
    starter.wait()
    deadline = time.monotonic() + 30
    while answers(uri, timeout=1) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not answers(uri, timeout=1)
