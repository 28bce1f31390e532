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
from mlflow.entities import Param, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from sail.tracking.store import configure, experiment_id

PIPELINE_RUN_TAG = "sail.pipeline_run_id"
GIT_COMMIT_TAG = "sail.git_commit"
ROLE_TAG = "sail.role"
STEP_TAG = "sail.step"
MAX_PARAM_LENGTH = 6000


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
) -> str:
    """Open (or reopen, on a retry) the parent run of a pipeline run; returns its run id.

    Tags: `sail.pipeline_run_id`, `sail.role=pipeline` and `sail.git_commit` when known. Params
    already logged on a reopened run are kept as they are (mlflow params are immutable). A new
    run starts at `started` (epoch seconds, default now).
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
        tags = {PIPELINE_RUN_TAG: pipeline_run_id, ROLE_TAG: "pipeline"}
        if commit := git_commit():
            tags[GIT_COMMIT_TAG] = commit
        run = client.create_run(
            experiment_id(),
            start_time=int(started * 1000) if started is not None else None,
            tags=tags,
            run_name=f"pipeline-{pipeline_run_id}",
        )
    new = [
        Param(str(k), str(v)[:MAX_PARAM_LENGTH])
        for k, v in params.items()
        if str(k) not in run.data.params
    ]
    for start in range(0, len(new), 100):
        client.log_batch(run.info.run_id, params=new[start : start + 100])
    return run.info.run_id


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
    for key in (PIPELINE_RUN_TAG, GIT_COMMIT_TAG):
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
