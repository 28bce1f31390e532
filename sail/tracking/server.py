"""A local MLflow tracking server: what `make run`, `make ui` and `make serve` talk to over HTTP.

`mlflow server` on 127.0.0.1 with a sqlite backend and a served artifact store
(`--artifacts-destination`), both under one folder (`$SAIL_HOME/mlflow`), so clients reach runs,
models and artifacts only through the URI, as pods reach the cluster's server.
`tracking_service()` gives the configured server, else starts the local one for a block;
`python -m sail.tracking.server` runs the local one in the foreground (the UI).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from model_code.paths import sail_home

ENV_URI = "MLFLOW_TRACKING_URI"
READY_TIMEOUT_S = 90
# No telemetry, and no job runner (its worker processes serve GenAI jobs this store never has).
SERVER_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
STOP_TIMEOUT_S = 20
PR_SET_PDEATHSIG = 1


class TrackingUnavailable(RuntimeError):
    """The tracking server does not answer, or could not be started."""


def store_dir() -> Path:
    """The local server's backend and artifacts: $SAIL_HOME/mlflow."""
    return sail_home() / "mlflow"


def server_command(root: Path, port: int, workers: int = 1) -> list[str]:
    """`mlflow server` for the store under `root` on 127.0.0.1:`port`."""
    root = Path(root).resolve()
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--serve-artifacts",
    ]


@contextmanager
def local_server(root: Path | None = None, port: int | None = None) -> Iterator[str]:
    """Start the local server (store under `root`, default `store_dir()`), yield its URI once it
    answers, and stop it afterwards. Its log is `<root>/server.log`."""
    root = Path(root or store_dir()).resolve()
    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    uri = f"http://127.0.0.1:{port}"
    log_path = root / "server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            server_command(root, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_stop_with_parent,
            env={**os.environ, **SERVER_ENV},
        )
    try:
        wait_until_ready(uri, process, log_path)
        yield uri
    finally:
        stop(process)


@contextmanager
def tracking_service() -> Iterator[str]:
    """The tracking server to talk to: $MLFLOW_TRACKING_URI when set (a team's server), else the
    local server, started for the block with $MLFLOW_TRACKING_URI pointing at it."""
    configured = os.environ.get(ENV_URI)
    if configured:
        yield configured
        return
    with local_server() as uri:
        os.environ[ENV_URI] = uri
        try:
            yield uri
        finally:
            os.environ.pop(ENV_URI, None)


def wait_until_ready(uri: str, process: subprocess.Popen, log_path: Path) -> None:
    """Poll `/health` until the server answers; raise naming the log when it exits or hangs."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TrackingUnavailable(
                f"mlflow server exited with {process.returncode} before answering; see {log_path}"
            )
        if answers(uri, timeout=2):
            return
        time.sleep(0.5)
    stop(process)
    raise TrackingUnavailable(f"mlflow server at {uri} did not answer in {READY_TIMEOUT_S} s")


def answers(uri: str, timeout: float = 5) -> bool:
    """Whether an MLflow server answers `/health` at `uri`."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL it when it lingers."""
    if process.poll() is not None:
        return
    group = os.getpgid(process.pid)
    os.killpg(group, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(group, signal.SIGKILL)
        process.wait()


def _stop_with_parent() -> None:
    """In the server's process, before it runs: SIGTERM when the process that started it dies,
    however it dies (a SIGKILL, a host's SIGTERM that skips our cleanup), so no server outlives
    its run. Linux only (prctl PR_SET_PDEATHSIG); elsewhere a no-op."""
    with suppress(AttributeError, OSError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    """Run the local server in the foreground until interrupted (`make ui`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--root", type=Path, default=None, help="default $SAIL_HOME/mlflow")
    args = parser.parse_args(argv)
    root = Path(args.root or store_dir()).resolve()
    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    os.environ.update(SERVER_ENV)
    os.execv(sys.executable, server_command(root, args.port, workers=2))


if __name__ == "__main__":
    main()
