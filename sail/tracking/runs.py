"""Pipeline runs: one parent MLflow run per pipeline run, one nested run per step.

Steps run in separate processes (Kubeflow components), so a step attaches to its parent by id:
nothing relies on mlflow's in-process active-run stack.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Param, RunStatus, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from sail.tracking.store import configure, experiment_id

PIPELINE_RUN_TAG = "sail.pipeline_run_id"
GIT_COMMIT_TAG = "sail.git_commit"
ROLE_TAG = "sail.role"
STEP_TAG = "sail.step"
MAX_PARAM_LENGTH = 6000
MAX_KEY_LENGTH = 250
MAX_PARAMS_PER_BATCH = 100


def git_commit() -> str | None:
    """The source commit: $SAIL_GIT_COMMIT (set in images), else HEAD of the source checkout this
    package runs from (none when installed as a wheel), else None."""
    if commit := os.environ.get("SAIL_GIT_COMMIT"):
        return commit
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / "pyproject.toml").is_file():
        return None
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def start_pipeline_run(
    pipeline_run_id: str,
    params: dict[str, Any],
    tracking_uri: str | None = None,
    started: float | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Open (or reopen, on a retry) the parent run of a pipeline run; returns its run id.

    Tags: `sail.pipeline_run_id`, `sail.role=pipeline` and the git commit when known. Params
    already logged on a reopened run are kept as they are (mlflow params are immutable). A new
    run starts at `started` (epoch seconds, default now); `run_name` (re)names it and `tags`
    are set on it.
    """
    configure(tracking_uri)
    client = mlflow.MlflowClient()
    existing = client.search_runs(
        [experiment_id()],
        filter_string=(
            f"tags.`{PIPELINE_RUN_TAG}` = '{_quote(pipeline_run_id)}' "
            f"and tags.`{ROLE_TAG}` = 'pipeline'"
        ),
        max_results=1,
    )
    if existing:
        run = existing[0]
        client.update_run(run.info.run_id, status="RUNNING")
    else:
        identity = {PIPELINE_RUN_TAG: pipeline_run_id, ROLE_TAG: "pipeline"}
        if commit := git_commit():
            identity[GIT_COMMIT_TAG] = identity[MLFLOW_GIT_COMMIT] = commit
        run = client.create_run(
            experiment_id(),
            start_time=int(started * 1000) if started is not None else None,
            tags=identity,
            run_name=run_name or f"pipeline-{pipeline_run_id}",
        )
    more = {**(tags or {}), **({MLFLOW_RUN_NAME: run_name} if run_name else {})}
    if more:
        client.log_batch(run.info.run_id, tags=[RunTag(k, str(v)) for k, v in more.items()])
    log_new_params(run.info.run_id, params)
    return run.info.run_id


def log_new_params(run_id: str, params: dict[str, Any]) -> None:
    """Log the params the run does not have yet (values cut to MLflow's limits); those it has are
    kept as they are, since MLflow params are immutable."""
    client = mlflow.MlflowClient()
    logged = client.get_run(run_id).data.params
    new = [
        Param(str(k)[:MAX_KEY_LENGTH], str(v)[:MAX_PARAM_LENGTH])
        for k, v in params.items()
        if str(k)[:MAX_KEY_LENGTH] not in logged
    ]
    for start in range(0, len(new), MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=new[start : start + MAX_PARAMS_PER_BATCH])


@contextmanager
def step_run(
    parent_run_id: str,
    step_name: str,
    tracking_uri: str | None = None,
    started: float | None = None,
) -> Iterator[str]:
    """Open a nested run `step_name` under the parent, active in this process; yields its id.

    The run is created with the `mlflow.parentRunId` tag (and the parent's pipeline run id), so
    it works from any process; `started` (epoch seconds, default now) is its start time. It ends
    FINISHED, FAILED when the block raises, KILLED when interrupted.
    """
    configure(tracking_uri)
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_run_id)
    tags = {MLFLOW_PARENT_RUN_ID: parent_run_id, MLFLOW_RUN_NAME: step_name, STEP_TAG: step_name}
    tags[ROLE_TAG] = "step"
    for key in (PIPELINE_RUN_TAG, GIT_COMMIT_TAG, MLFLOW_GIT_COMMIT):
        if key in parent.data.tags:
            tags[key] = parent.data.tags[key]
    start_time = int(started * 1000) if started is not None else None
    child = client.create_run(
        parent.info.experiment_id, start_time=start_time, tags=tags, run_name=step_name
    )
    run_id = child.info.run_id
    mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None)
    try:
        yield run_id
    except Exception:
        mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
        raise
    except BaseException:  # interrupted
        mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
        raise
    mlflow.end_run(RunStatus.to_string(RunStatus.FINISHED))


def finish_pipeline_run(
    parent_run_id: str, status: str = "FINISHED", tracking_uri: str | None = None
) -> None:
    """Close the parent run: FINISHED, FAILED or KILLED."""
    status = status.upper()
    if status not in ("FINISHED", "FAILED", "KILLED"):
        raise ValueError(f"unknown run status {status!r}; use FINISHED, FAILED or KILLED")
    configure(tracking_uri)
    mlflow.MlflowClient().set_terminated(parent_run_id, status=status)


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def current_run_id(run_id: str | None = None) -> str:
    """`run_id`, else the active run's id; raises when there is neither."""
    if run_id:
        return run_id
    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("no MLflow run: pass run_id or log inside `step_run(...)`")
    return active.info.run_id
