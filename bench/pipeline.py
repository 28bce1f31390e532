"""Pipeline suite: the latest FINISHED pipeline run in the MLflow store, timed per step, and the
quality figures it recorded (the `evaluate` step's test metrics, the champion's metric tags).

Total is the parent run's start to end. The parent run starts when the first step's scope
began and is closed by the exit handler; each nested step run spans its step's scope (from the
component function's first line, imports of the step's libraries included). Orchestration
overhead = total - the sum of the nested runs: process start-up, kfp's executor and bookkeeping
between steps; the first step's process start-up falls outside total.

`sail.pipeline.local.summarize` reads the latest pipeline run whatever its status (and rounds
step times); this suite needs the latest FINISHED one, so it runs its own query.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from sail.pipeline.steps import MODEL_NAME

TEST_PREFIX = "test/"


def tracking_store(tracking_uri: str | None = None):
    """(MlflowClient, URI) on the store, or (None, URI) when the local store does not exist
    (no side effects: an absent local store is not created)."""
    import mlflow

    from sail.tracking.store import connect, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).is_file():
        return None, uri
    connect(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri), uri


def latest_finished(client):
    """The newest parent run tagged `sail.role=pipeline` whose status is FINISHED, or None."""
    from sail.tracking.runs import ROLE_TAG
    from sail.tracking.store import EXPERIMENT

    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{ROLE_TAG}` = 'pipeline' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def step_runs(client, parent) -> list:
    """The parent's nested runs (tag `mlflow.parentRunId`), oldest first."""
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
        order_by=["attributes.start_time ASC"],
    )


def timings(parent, steps: list) -> dict:
    """Seconds per step, the total and the orchestration overhead."""
    seconds = {
        step.info.run_name: round((step.info.end_time - step.info.start_time) / 1000, 2)
        for step in steps
        if step.info.end_time
    }
    total = (parent.info.end_time - parent.info.start_time) / 1000
    busy = sum(seconds.values())
    return {
        "steps": seconds,
        "total_s": round(total, 2),
        "sum_of_steps_s": round(busy, 2),
        "overhead_s": round(total - busy, 2),
        "overhead_share": round((total - busy) / total, 4) if total > 0 else None,
    }


def quality(client, steps: list) -> dict:
    """`evaluate`'s test metrics by data set (the model's, and the frozen baselines' as
    "<data set> (frozen baseline)"), and the metrics recorded on the champion version."""
    from sail.tracking.registry import version_by_alias, version_metrics

    table: dict[str, dict[str, float]] = {}
    for step in steps:
        if step.info.run_name != "evaluate":
            continue
        for key, value in step.data.metrics.items():
            if key.startswith(TEST_PREFIX) and key.count("/") >= 3:
                row, dataset, metric = key[len(TEST_PREFIX) :].split("/", 2)
                label = dataset if row == "model" else f"{dataset} (frozen baseline)"
                table.setdefault(label, {})[metric] = value
    champion = version_by_alias(MODEL_NAME, "champion")
    return {
        "test_metrics": table,
        "champion": {
            "version": champion,
            "metrics": version_metrics(MODEL_NAME, champion) if champion else {},
        },
    }


def publish_record(client, steps: list) -> dict | None:
    """The `publish` step's `publish.json` (rows and seconds per publishing step), if any."""
    for step in steps:
        if step.info.run_name == "publish":
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    path = client.download_artifacts(step.info.run_id, "publish.json", tmp)
                except Exception:  # no artifact logged (an older run)
                    return None
                return json.loads(Path(path).read_text())
    return None


def run(tracking_uri: str | None = None, smoke: bool = False) -> dict:
    """The pipeline suite's figures; `status: skipped` when there is no finished run."""
    client, uri = tracking_store(tracking_uri)
    parent = latest_finished(client) if client is not None else None
    if parent is None:
        return {"status": "skipped", "reason": f"no FINISHED pipeline run in {uri}"}
    steps = step_runs(client, parent)
    return {
        "run_id": parent.info.run_id,
        "run_name": parent.info.run_name,
        "tracking_uri": uri,
        "started_ms": parent.info.start_time,
        **timings(parent, steps),
        "quality": quality(client, steps),
        "publish": publish_record(client, steps),
    }
