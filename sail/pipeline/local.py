"""Running the pipeline on one machine, in the cluster's shape.

kfp.local's SubprocessRunner executes the same pipeline function a cluster runs, each step in its
own process and its own scratch home (`sail.pipeline.isolation`). What the steps share is what
pods share: KFP artifacts under the pipeline root, the services (a real `mlflow server` on
127.0.0.1 started for the run and stopped after it, the feature store folder) and the named
caches, all given to the steps through the environment as a cluster's ConfigMap would.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from model_code.paths import CACHE_ENV, DATA_ENV, cache_dir, sail_home
from sail.pipeline.profiles import PROFILES

ALIASES = ("champion", "challenger")


@dataclass
class LocalRun:
    """What a local run left behind, for the summary printed at the end."""

    pipeline_root: Path
    seconds: float
    pipeline_run_id: str
    parent_run_id: str | None
    status: str | None
    step_seconds: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=dict)
    snapshot: str | None = None
    tracking_uri: str = ""
    gate: str | None = None  # this run's version and the gate's verdict with its reason
    no_champion: str | None = None  # why there is no champion, when there is none

    @property
    def orchestration_seconds(self) -> float:
        """Wall time outside the steps' own work: process starts, imports, KFP bookkeeping."""
        return self.seconds - sum(self.step_seconds.values())


def pipeline_arguments(
    preset: str,
    profile: str,
    tolerance: float,
    dim: int | None,
    data_uri: str = "",
    data_limit: int = 0,
    baseline_margin: float = 0.01,
    stage_overrides: dict | None = None,
) -> dict:
    """The pipeline's full parameter set for a profile, checked before anything runs. `dim` (the
    Matryoshka size published to Feast) defaults to 128, or the preset's largest if smaller;
    `stage_overrides` ({STAGE: {KEY: VALUE}}) replace settings of the stage configs."""
    from model_code.config import PRESETS, load_preset
    from sail.pipeline.arguments import check_arguments
    from sail.pipeline.cluster import DEFAULT_PACKAGE

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {sorted(PROFILES)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {list(PRESETS)}")
    arguments = {
        "preset": preset,
        "data_uri": data_uri,
        "data_limit": data_limit,
        "gate_tolerance": tolerance,
        "baseline_margin": baseline_margin,
        "publish_dim": dim or min(128, load_preset(preset).embed_dim),
        **{f"{stage}_steps": count for stage, count in PROFILES[profile].items()},
        "stage_overrides": stage_overrides or {},
    }
    return check_arguments(DEFAULT_PACKAGE, arguments)


def run_locally(
    preset: str = "mini",
    profile: str = "full",
    tolerance: float = 0.01,
    dim: int | None = None,
    *,
    data_uri: str = "",
    data_limit: int = 0,
    baseline_margin: float = 0.01,
    stage_overrides: dict | None = None,
    audit_dir: Path | None = None,
) -> LocalRun:
    """Run the whole pipeline here against the tracking server $MLFLOW_TRACKING_URI names, else a
    local one started for the run (stopped after); raises when a step fails (earlier artifacts
    stay). With `audit_dir`, every step records the paths it touched there
    (`sail.pipeline.isolation.find_sharing` reads them)."""
    from kfp import local

    from pipelines.sail_pipeline import sail_pipeline
    from sail.tracking.server import tracking_service

    arguments = pipeline_arguments(
        preset,
        profile,
        tolerance,
        dim,
        data_uri,
        data_limit,
        baseline_margin,
        stage_overrides,
    )
    root = pipeline_root()
    root.mkdir(parents=True, exist_ok=True)
    run_id = f"local-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    with (
        tracking_service() as tracking_uri,
        step_environment(tracking_uri, run_id, audit_dir),
    ):
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
        began = time.time()
        try:
            sail_pipeline(**arguments)
        finally:
            seconds = time.time() - began
        return summarize(tracking_uri, run_id, root, seconds)


def pipeline_root() -> Path:
    """Where kfp.local keeps every run's artifacts: $SAIL_HOME/pipeline-root."""
    return sail_home() / "pipeline-root"


def shared_roots() -> list[Path]:
    """What the steps of a local run may share besides services reached by URI: the artifacts,
    the feature store folder (with its PostgreSQL server's data, and the server's lock and socket
    folder), and the named caches (docs/pipeline.md lists them)."""
    from sail.feature_store.local_postgres import RUNTIME_DIR
    from sail.feature_store.location import store_dir
    from sail.pipeline.isolation import library_caches

    return [pipeline_root(), store_dir(), RUNTIME_DIR, cache_dir(), *library_caches()]


@contextmanager
def step_environment(
    tracking_uri: str, run_id: str, audit_dir: Path | None = None
) -> Iterator[None]:
    """What each step process inherits, as a pod gets it from the cluster: the tracking URI, the
    run id, the cache and feature store folders (absolute, from this SAIL_HOME)."""
    from sail.feature_store.location import STORE_ENV, store_dir
    from sail.pipeline.isolation import AUDIT_ENV, RUN_CACHES
    from sail.pipeline.steps import RUN_ID_ENV
    from sail.tracking.store import ENV_URI

    settings = {
        ENV_URI: tracking_uri,
        RUN_ID_ENV: run_id,
        CACHE_ENV: str(cache_dir()),
        STORE_ENV: str(store_dir()),
        AUDIT_ENV: str(audit_dir.resolve()) if audit_dir else None,
        DATA_ENV: None,  # data enters through the DAG
        # feast.metrics points this at a new temporary folder on import and every process
        # inheriting it writes there: each step gets its own (under its scratch) instead
        "PROMETHEUS_MULTIPROC_DIR": None,
        "PROMETHEUS_MULTIPROCESS_DIR": None,
        **{name: str(cache_dir() / folder) for name, folder in RUN_CACHES.items()},
    }
    saved = {name: os.environ.get(name) for name in settings}
    _apply(settings)
    try:
        yield
    finally:
        _apply(saved)


def _apply(settings: dict[str, str | None]) -> None:
    for name, value in settings.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def summarize(tracking_uri: str, run_id: str, root: Path, seconds: float) -> LocalRun:
    """The pipeline run in the MLflow store: its steps' times, snapshot and the model aliases."""
    import mlflow

    from sail.pipeline.steps import MODEL_NAME
    from sail.tracking.registry import rejection, version_by_alias, version_of_pipeline_run
    from sail.tracking.runs import PIPELINE_RUN_TAG, ROLE_TAG
    from sail.tracking.store import configure, experiment_id

    configure(tracking_uri)
    client = mlflow.MlflowClient()
    parents = client.search_runs(
        [experiment_id()],
        filter_string=f"tags.`{ROLE_TAG}` = 'pipeline' and tags.`{PIPELINE_RUN_TAG}` = '{run_id}'",
        max_results=1,
    )
    run = LocalRun(root, seconds, run_id, None, None, tracking_uri=tracking_uri)
    if parents:
        parent = parents[0].info
        run.parent_run_id, run.status = parent.run_id, parent.status
        steps = client.search_runs(
            [experiment_id()],
            filter_string=f"tags.`mlflow.parentRunId` = '{parent.run_id}'",
            order_by=["attributes.start_time ASC"],
        )
        run.step_seconds = {
            step.info.run_name: round((step.info.end_time - step.info.start_time) / 1000, 1)
            for step in steps
            if step.info.end_time
        }
        run.snapshot = next(
            (
                s.data.tags.get("sail.data_snapshot")
                for s in steps
                if s.info.run_name == "ingest_data"
            ),
            None,
        )
    run.versions = {alias: version_by_alias(MODEL_NAME, alias) for alias in ALIASES}
    version = version_of_pipeline_run(MODEL_NAME, run_id)
    if version is not None:
        tags = mlflow.MlflowClient().get_model_version(MODEL_NAME, version).tags
        run.gate = (
            f"v{version} {tags.get('sail.gate', 'not judged')}: {tags.get('sail.gate.reason')}"
        )
    run.no_champion = rejection(MODEL_NAME)
    return run


def describe(run: LocalRun) -> str:
    """Where to look after a local run."""
    lines = [
        f"pipeline finished in {run.seconds / 60:.1f} min; pipeline run {run.pipeline_run_id}, "
        f"MLflow run {run.parent_run_id}, data snapshot {run.snapshot}"
    ]
    lines += [f"  {name:<22} {seconds:>7.1f} s" for name, seconds in run.step_seconds.items()]
    if run.step_seconds:
        share = run.orchestration_seconds / max(run.seconds, 1e-9)
        lines.append(f"  {'orchestration':<22} {run.orchestration_seconds:>7.1f} s ({share:.1%})")
    lines.append(
        "model sail-embedding: "
        + ", ".join(f"{alias} v{version}" for alias, version in run.versions.items() if version)
    )
    if run.gate:
        lines.append(f"gate: {run.gate}")
    if run.no_champion:
        why = "" if run.gate else f" ({run.no_champion})"  # the gate line says why
        lines.append(f"no champion: nothing was published or deployed{why}")
    lines.append(f"artifacts: {run.pipeline_root}")
    lines.append(f"MLflow: {run.tracking_uri} during the run; afterwards `make ui` (port 5000)")
    if run.versions.get("champion"):
        lines.append("serve the champion: make serve;  nearest items: sail similar --item 50")
    else:
        lines.append(
            "serve the new version anyway: make serve MODEL_URI=models:/sail-embedding@challenger"
        )
    return "\n".join(lines)
