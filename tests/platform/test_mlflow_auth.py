"""MLflow's basic-auth app as the manifests run it: a real server on 127.0.0.1 (sqlite stores), the
users made by the mlflow-users Job's own script, then who may register and move aliases.

Needs MLflow's auth extra (Flask-WTF), which the basic-auth app imports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.platform.test_manifests import KUBECTL, one, render

pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs mlflow[auth] (Flask-WTF)")
# about 7 s for the server alone on an idle machine, much more on a busy one
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed"),
]

ADMIN = ("admin", "test-admin-password")
PIPELINE = ("sail-pipeline", "test-pipeline-password")
READER = ("sail-serving", "test-reader-password")
API = "/api/2.0/mlflow"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The server's URL, with the Job's users created; stopped afterwards."""
    root = tmp_path_factory.mktemp("mlflow-auth")
    ini = root / "basic_auth.ini"
    ini.write_text(
        f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{root}/auth.db\n"
    )
    port = _free_port()
    env = os.environ | {
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN[0],
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret-key",
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{root}/mlflow.db",
        "MLFLOW_ARTIFACTS_DESTINATION": str(root / "artifacts"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth"]
        + ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=(root / "server.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if requests.get(f"{url}/health", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            assert process.poll() is None, "mlflow server exited"
            time.sleep(0.5)
        job = one(render("base"), "Job", "mlflow-users")["spec"]["template"]["spec"]
        (container,) = job["containers"]
        script = container["args"][0]
        users = {
            "MLFLOW_TRACKING_URI": url,
            "MLFLOW_TRACKING_USERNAME": ADMIN[0],
            "MLFLOW_TRACKING_PASSWORD": ADMIN[1],
            "SAIL_MLFLOW_PIPELINE_USERNAME": PIPELINE[0],
            "SAIL_MLFLOW_PIPELINE_PASSWORD": PIPELINE[1],
            "SAIL_MLFLOW_READER_USERNAME": READER[0],
            "SAIL_MLFLOW_READER_PASSWORD": READER[1],
        }
        for _ in range(2):  # the second run finds the users and resets their passwords
            done = subprocess.run(
                [sys.executable, "-c", script], env=os.environ | users, capture_output=True
            )
            assert done.returncode == 0, done.stderr.decode()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def call(url: str, auth, path: str, body: dict) -> requests.Response:
    return requests.post(f"{url}{API}/{path}", json=body, auth=auth, timeout=30)


def test_only_the_pipeline_logs_registers_and_moves_aliases(server):
    name = "sail-embedding"
    assert call(server, None, "experiments/create", {"name": name}).status_code == 401
    assert (
        call(server, ("nobody", "wrong"), "experiments/create", {"name": name}).status_code == 401
    )
    experiment = call(server, PIPELINE, "experiments/create", {"name": name}).json()
    run = {"experiment_id": experiment["experiment_id"]}
    assert call(server, READER, "runs/create", run).status_code == 403
    run_id = call(server, PIPELINE, "runs/create", run).json()["run"]["info"]["run_id"]
    assert call(server, None, "registered-models/create", {"name": name}).status_code == 401
    assert call(server, PIPELINE, "registered-models/create", {"name": name}).status_code == 200
    version = {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}
    for who, status in ((None, 401), (READER, 403), (PIPELINE, 200)):
        assert call(server, who, "model-versions/create", version).status_code == status, who
    alias = {"name": name, "alias": "champion", "version": "1"}
    for who, status in ((None, 401), (READER, 403), (PIPELINE, 200)):
        assert call(server, who, "registered-models/alias", alias).status_code == status, who
    got = requests.get(
        f"{server}{API}/registered-models/alias",
        params={"name": name, "alias": "champion"},
        auth=READER,
        timeout=30,
    )
    assert got.status_code == 200 and got.json()["model_version"]["version"] == "1"
    renamed = {"name": name, "new_name": "other"}
    assert call(server, READER, "registered-models/rename", renamed).status_code == 403
