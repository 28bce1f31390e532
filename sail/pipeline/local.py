"""Running the pipeline on one machine: kfp.local's SubprocessRunner executes the same pipeline
function a cluster runs, each step in its own process, writing under SAIL_HOME."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from model_code.paths import sail_home
from model_code.training.stages import STAGES

# Steps per stage. `full` is what `make run` trains (sized for 2 CPU cores); `quick` is for
# demos and tests; 0 would mean the stage config's own count.
PROFILES: dict[str, dict[str, int]] = {
    "full": {"content1": 45, "content2": 10, "content3": 15, "seq2item": 15, "id2item": 20},
    "quick": {stage: 2 for stage in STAGES},
}
ALIASES = ("champion", "challenger")


@dataclass
class LocalRun:
    """What a local run left behind, for the summary printed at the end."""

    pipeline_root: Path
    seconds: float
    parent_run_id: str | None
    status: str | None
    step_seconds: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=dict)
    tracking_uri: str = ""


def pipeline_arguments(preset: str, profile: str, tolerance: float, dim: int | None) -> dict:
    """The pipeline's parameters for a profile, checked before anything runs. `dim` (the
    Matryoshka size published to Feast) defaults to 128, or the preset's largest if smaller."""
    from model_code.config import load_preset

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {sorted(PROFILES)}")
    config = load_preset(preset)
    dim = config.check_dim(dim or min(128, config.embed_dim))
    steps = {f"{stage}_steps": count for stage, count in PROFILES[profile].items()}
    return {
        "preset": preset,
        "sail_home": str(sail_home()),
        "gate_tolerance": tolerance,
        "publish_dim": dim,
        **steps,
    }


def run_locally(
    preset: str = "mini", profile: str = "full", tolerance: float = 0.01, dim: int | None = None
) -> LocalRun:
    """Run the whole pipeline here; raises when a step fails (earlier artifacts stay)."""
    from kfp import local

    from pipelines.sail_pipeline import sail_pipeline

    arguments = pipeline_arguments(preset, profile, tolerance, dim)
    root = sail_home() / "pipeline-root"
    root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    began = time.time()
    try:
        sail_pipeline(**arguments)
    finally:
        seconds = time.time() - began
    return summarize(root, seconds)


def summarize(root: Path, seconds: float) -> LocalRun:
    """The latest pipeline run in the MLflow store: its steps' times and the model aliases."""
    import mlflow

    from sail.tracking.registry import version_by_alias
    from sail.tracking.runs import ROLE_TAG
    from sail.tracking.store import configure, experiment_id

    uri = configure()
    client = mlflow.MlflowClient()
    parents = client.search_runs(
        [experiment_id()],
        filter_string=f"tags.`{ROLE_TAG}` = 'pipeline'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    run = LocalRun(root, seconds, None, None, tracking_uri=uri)
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
    run.versions = {alias: version_by_alias("sail-embedding", alias) for alias in ALIASES}
    return run


def describe(run: LocalRun) -> str:
    """Where to look after a local run."""
    lines = [f"pipeline finished in {run.seconds / 60:.1f} min; MLflow run {run.parent_run_id}"]
    lines += [f"  {name:<22} {seconds:>7.1f} s" for name, seconds in run.step_seconds.items()]
    if run.step_seconds:
        overhead = run.seconds - sum(run.step_seconds.values())
        lines.append(f"  {'orchestration':<22} {overhead:>7.1f} s")
    lines.append(
        "model sail-embedding: "
        + ", ".join(f"{alias} v{version}" for alias, version in run.versions.items() if version)
    )
    lines.append(f"artifacts: {run.pipeline_root}")
    lines.append(f"MLflow UI: make ui   (tracking store {run.tracking_uri})")
    lines.append("serve the champion: make serve;  nearest items: sail similar --item 50")
    return "\n".join(lines)
