"""Where MLflow keeps runs, models and artifacts: by default a sqlite store under SAIL_HOME."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

from model_code.paths import sail_home

EXPERIMENT = "sail-embedding"
ENV_URI = "MLFLOW_TRACKING_URI"
REACH_TIMEOUT_S = 10.0


def local_tracking_uri(home: Path | None = None) -> str:
    """The local store: `sqlite:///<SAIL_HOME>/mlflow/mlflow.db`."""
    root = Path(home).resolve() if home is not None else sail_home()
    return f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"


def local_artifact_root(home: Path | None = None) -> Path:
    """Artifacts of the local store: `<SAIL_HOME>/mlflow/artifacts`."""
    root = Path(home).resolve() if home is not None else sail_home()
    return root / "mlflow" / "artifacts"


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The URI to use: the argument, else $MLFLOW_TRACKING_URI, else the local store."""
    return tracking_uri or os.environ.get(ENV_URI) or local_tracking_uri()


def check_reachable(uri: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """Raise TrackingUnavailable, naming `uri`, when the http(s) tracking server there does not
    answer within `timeout` seconds (other stores are files or databases: nothing to reach)."""
    from sail.tracking.server import TrackingUnavailable, answers

    if not uri:
        raise TrackingUnavailable("no tracking URI given (set MLFLOW_TRACKING_URI)")
    if urlparse(uri).scheme in ("http", "https") and not answers(uri, timeout):
        raise TrackingUnavailable(
            f"the MLflow tracking server at {uri} is not reachable (no answer from {uri}/health "
            f"within {timeout:g} s); start it or fix {ENV_URI}"
        )


def connect(tracking_uri: str | None = None) -> str:
    """Point mlflow's tracking and registry at the store (see `resolve_tracking_uri`)."""
    uri = resolve_tracking_uri(tracking_uri)
    artifacts = _sqlite_artifacts(uri)
    if artifacts is not None:
        artifacts.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def configure(tracking_uri: str | None = None, experiment: str = EXPERIMENT) -> str:
    """Point mlflow (tracking and registry) at the store and make `experiment` the active one.

    An explicit `tracking_uri` wins over $MLFLOW_TRACKING_URI, which wins over the local store.
    On a sqlite store the experiment gets an explicit artifact location (`artifacts/<experiment>`
    beside the database: under SAIL_HOME for the local store), so mlflow never writes `./mlruns`
    into the working directory. Returns the URI.
    """
    uri = connect(tracking_uri)
    artifacts = _sqlite_artifacts(uri)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    if client.get_experiment_by_name(experiment) is None:
        location = (artifacts / experiment).as_uri() if artifacts is not None else None
        try:
            client.create_experiment(experiment, artifact_location=location)
        except MlflowException as error:  # another process created it first
            if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
    mlflow.set_experiment(experiment)
    return uri


def experiment_id(experiment: str = EXPERIMENT) -> str:
    """The id of `experiment` in the configured store (call `configure` first)."""
    found = mlflow.MlflowClient().get_experiment_by_name(experiment)
    if found is None:
        raise LookupError(f"experiment {experiment!r} not found at {mlflow.get_tracking_uri()}")
    return found.experiment_id


def _sqlite_artifacts(uri: str) -> Path | None:
    """Artifact folder for a sqlite store: `artifacts/` beside the database; None otherwise."""
    if not uri.startswith("sqlite:///"):
        return None  # remote servers choose their own; a file store keeps them in its folder
    db_path = Path(unquote(urlparse(uri).path[1:]))
    return (db_path if db_path.is_absolute() else Path.cwd() / db_path).parent / "artifacts"
