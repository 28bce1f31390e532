"""`sail pipeline ...`: run the pipeline here, compile it, submit or schedule it on a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
import yaml

from model_code.config import PRESETS
from sail.pipeline.cluster import DEFAULT_PACKAGE, SCHEDULE_NAME
from sail.pipeline.profiles import PROFILES

Preset = Literal[PRESETS]  # type: ignore[valid-type]
Profile = Literal[tuple(PROFILES)]  # type: ignore[valid-type]
pipeline_app = typer.Typer(help="Run the Kubeflow pipeline locally, compile, submit, schedule.")

Host = Annotated[str, typer.Option(help="The Kubeflow Pipelines API, e.g. http://localhost:8888")]
Package = Annotated[Path, typer.Option(help="The compiled pipeline YAML.")]
Param = Annotated[
    list[str] | None,
    typer.Option("--param", help="A parameter NAME=VALUE (repeatable; wins over --params-file)."),
]
ParamsFile = Annotated[
    Path | None,
    typer.Option(exists=True, dir_okay=False, help="A YAML mapping of parameters NAME: VALUE."),
]


@pipeline_app.command("run")
def run(
    preset: Annotated[Preset, typer.Option(help="Model preset.")] = "mini",
    profile: Annotated[
        Profile, typer.Option(help="Steps per stage: full (what make run trains), quick (2 each).")
    ] = "full",
    tolerance: Annotated[
        float, typer.Option(help="How much worse than the champion a new version may be.")
    ] = 0.01,
    baseline_margin: Annotated[
        float, typer.Option(help="By how much a new version must beat the frozen baselines.")
    ] = 0.01,
    dim: Annotated[
        int | None, typer.Option(help="Matryoshka size published to Feast (default 128).")
    ] = None,
    data_uri: Annotated[
        str, typer.Option(help="A folder of data snapshots (default: the packaged sources).")
    ] = "",
    data_limit: Annotated[
        int, typer.Option(help="Ingest at most this many records of each data set (0: all).")
    ] = 0,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="STAGE.KEY=VALUE: replace a stage config's setting for this run, e.g. "
            "content1.lr=5e-5 (repeatable; VALUE is read as JSON when it is JSON).",
        ),
    ] = None,
):
    """Run the whole pipeline on this machine (kfp.local), data in, model served.

    Each step runs in a scratch home of its own against a local MLflow server started for the
    run; artifacts and the feature store stay under SAIL_HOME."""
    from sail.cli import user_errors
    from sail.overrides import stage_overrides
    from sail.pipeline.local import describe, run_locally

    with user_errors():
        result = run_locally(
            preset,
            profile,
            tolerance,
            dim,
            data_uri=data_uri,
            data_limit=data_limit,
            baseline_margin=baseline_margin,
            stage_overrides=stage_overrides(set_ or []),
        )
    typer.echo(describe(result))


@pipeline_app.command("compile")
def compile_(
    output: Package = DEFAULT_PACKAGE,
    image: Annotated[
        str | None,
        typer.Option(
            help="The image every step runs in, e.g. REF@sha256:... from make image "
            "(default: the placeholder of components/image.py)."
        ),
    ] = None,
):
    """Compile the pipeline to its IR YAML (checked in as pipelines/sail_pipeline.yaml)."""
    from pipelines.sail_pipeline import compile_pipeline

    typer.echo(compile_pipeline(str(output), image))


@pipeline_app.command("submit")
def submit(
    host: Host,
    package: Package = DEFAULT_PACKAGE,
    param: Param = None,
    params_file: ParamsFile = None,
):
    """Create one run of the compiled pipeline on a Kubeflow Pipelines cluster.

    Every parameter (defaults filled in) is checked first."""
    from sail.cli import user_errors
    from sail.pipeline.cluster import submit as submit_run

    with user_errors():
        typer.echo(f"run {submit_run(host, package, parse_params(param, params_file))}")


@pipeline_app.command("schedule")
def schedule(
    host: Host,
    cron: Annotated[str | None, typer.Option(help="When: '0 3 * * 1' (KFP adds seconds).")] = None,
    delete: Annotated[bool, typer.Option(help="Delete the recurring run instead.")] = False,
    name: Annotated[str, typer.Option(help="The recurring run's name.")] = SCHEDULE_NAME,
    package: Package = DEFAULT_PACKAGE,
    param: Param = None,
    params_file: ParamsFile = None,
):
    """Create (or replace) the recurring retraining run on a Kubeflow Pipelines cluster.

    One run at a time, no catch-up; every parameter (defaults filled in) is checked and shown
    in its configuration."""
    from sail.cli import user_errors
    from sail.pipeline import cluster

    with user_errors():
        if delete:
            typer.echo(f"deleted {cluster.delete_schedule(host, name)} recurring run(s) {name!r}")
            return
        if not cron:
            raise typer.BadParameter("give --cron, or --delete", param_hint="--cron")
        arguments = parse_params(param, params_file)
        created = cluster.schedule(host, package, cron, arguments, name)
        typer.echo(f"recurring run {created.recurring_run_id} ({cluster.kfp_cron(cron)})")


def parse_params(pairs: list[str] | None, file: Path | None = None) -> dict:
    """A params file's NAME: VALUE mapping, then NAME=VALUE pairs over it (values read as JSON
    when they are JSON, `sail.overrides.parse_assignments`) -> pipeline arguments."""
    from sail.overrides import parse_assignments

    arguments = (yaml.safe_load(file.read_text()) if file else None) or {}
    if not isinstance(arguments, dict) or not all(isinstance(k, str) for k in arguments):
        raise typer.BadParameter(f"{file} is not a NAME: VALUE mapping", param_hint="--params-file")
    try:
        return {**arguments, **parse_assignments(pairs or [])}
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--param") from None
