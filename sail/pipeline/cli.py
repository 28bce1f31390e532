"""`sail pipeline ...`: run the pipeline here, compile it, submit or schedule it on a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sail.pipeline.cluster import DEFAULT_PACKAGE, SCHEDULE_NAME

pipeline_app = typer.Typer(help="Run the Kubeflow pipeline locally, compile, submit, schedule.")

Host = Annotated[str, typer.Option(help="The Kubeflow Pipelines API, e.g. http://localhost:8888")]
Package = Annotated[Path, typer.Option(help="The compiled pipeline YAML.")]
Param = Annotated[
    list[str] | None, typer.Option("--param", help="A pipeline parameter NAME=VALUE (repeatable).")
]


@pipeline_app.command("run")
def run(
    preset: Annotated[str, typer.Option(help="Model preset.")] = "mini",
    quick: Annotated[bool, typer.Option(help="The quick profile: 2 steps a stage.")] = False,
    tolerance: Annotated[float, typer.Option(help="Champion gate tolerance.")] = 0.01,
    dim: Annotated[
        int | None, typer.Option(help="Matryoshka size published to Feast (default 128).")
    ] = None,
):
    """Run the whole pipeline on this machine (kfp.local), writing under SAIL_HOME."""
    from sail.cli import user_errors
    from sail.pipeline.local import describe, run_locally

    with user_errors():
        result = run_locally(preset, "quick" if quick else "full", tolerance, dim)
    typer.echo(describe(result))


@pipeline_app.command("compile")
def compile_(output: Package = DEFAULT_PACKAGE):
    """Compile the pipeline to its IR YAML (checked in as pipelines/sail_pipeline.yaml)."""
    from pipelines.sail_pipeline import compile_pipeline

    typer.echo(compile_pipeline(str(output)))


@pipeline_app.command("submit")
def submit(host: Host, package: Package = DEFAULT_PACKAGE, param: Param = None):
    """Create one run of the compiled pipeline on a Kubeflow Pipelines cluster."""
    from sail.cli import user_errors
    from sail.pipeline.cluster import submit as submit_run

    with user_errors():
        typer.echo(f"run {submit_run(host, package, parse_params(param))}")


@pipeline_app.command("schedule")
def schedule(
    host: Host,
    cron: Annotated[str | None, typer.Option(help="When: '0 3 * * 1' (KFP adds seconds).")] = None,
    delete: Annotated[bool, typer.Option(help="Delete the recurring run instead.")] = False,
    name: Annotated[str, typer.Option(help="The recurring run's name.")] = SCHEDULE_NAME,
    package: Package = DEFAULT_PACKAGE,
    param: Param = None,
):
    """Create (or replace) the recurring retraining run: one at a time, no catch-up."""
    from sail.cli import user_errors
    from sail.pipeline import cluster

    with user_errors():
        if delete:
            typer.echo(f"deleted {cluster.delete_schedule(host, name)} recurring run(s) {name!r}")
            return
        if not cron:
            raise typer.BadParameter("give --cron, or --delete", param_hint="--cron")
        created = cluster.schedule(host, package, cron, parse_params(param), name)
        typer.echo(f"recurring run {created.recurring_run_id} ({cluster.kfp_cron(cron)})")


def parse_params(pairs: list[str] | None) -> dict:
    """NAME=VALUE pairs -> pipeline arguments (ints and floats converted)."""
    arguments: dict = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--param")
        arguments[name] = _number(value)
    return arguments


def _number(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
