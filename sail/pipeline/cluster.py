"""The cluster path: submit the compiled pipeline to Kubeflow Pipelines, or schedule it.

Needs a reachable KFP API (`--host`); nothing here runs without one. Arguments are checked against
the package first and sent in full (defaults included), so a bad one fails before any request and
each run shows its whole configuration. A recurring run allows one active run at a time and no
catch-up of missed slots. The local equivalent is a cron line calling `make run` (docs/pipeline.md).
"""

from __future__ import annotations

from pathlib import Path

from sail.pipeline.arguments import check_arguments

DEFAULT_PACKAGE = Path(__file__).resolve().parents[2] / "pipelines" / "sail_pipeline.yaml"
EXPERIMENT = "sail-embedding"
SCHEDULE_NAME = "sail-embedding-retraining"


def kfp_cron(expression: str) -> str:
    """KFP's cron has a seconds field first: a standard 5-field expression gets "0 " in front.

    >>> kfp_cron("0 3 * * 1")
    '0 0 3 * * 1'
    """
    fields = expression.split()
    if len(fields) == 5:
        fields.insert(0, "0")
    if len(fields) != 6:
        raise ValueError(
            f"cron expression {expression!r} has {len(expression.split())} fields; "
            "give 5 (minute hour day month weekday) or 6 (with seconds first)"
        )
    return " ".join(fields)


def client(host: str):
    """A KFP API client for `host` (e.g. http://ml-pipeline-ui.kubeflow or a port-forward)."""
    import kfp

    return kfp.Client(host=host)


def submit(host: str, package: Path, arguments: dict, run_name: str | None = None) -> str:
    """Create one run from the compiled package with the full checked arguments; its run id."""
    package = _existing(package)
    arguments = check_arguments(package, arguments)
    run = client(host).create_run_from_pipeline_package(
        str(package), arguments=arguments, run_name=run_name, experiment_name=EXPERIMENT
    )
    return run.run_id


def schedule(host: str, package: Path, cron: str, arguments: dict, name: str = SCHEDULE_NAME):
    """Create (or replace) the recurring run `name` with the full checked arguments: at most one
    run at a time, no catch-up."""
    package = _existing(package)
    arguments = check_arguments(package, arguments)
    cron = kfp_cron(cron)
    api = client(host)
    _delete_named(api, name)
    experiment = api.create_experiment(EXPERIMENT)
    return api.create_recurring_run(
        experiment_id=experiment.experiment_id,
        job_name=name,
        cron_expression=cron,
        max_concurrency=1,
        no_catchup=True,
        pipeline_package_path=str(package),
        params=arguments,
        enabled=True,
    )


def delete_schedule(host: str, name: str = SCHEDULE_NAME) -> int:
    """Delete every recurring run called `name`; returns how many there were."""
    return _delete_named(client(host), name)


def _delete_named(api, name: str) -> int:
    deleted, token = 0, ""
    while True:
        page = api.list_recurring_runs(page_token=token, page_size=100)
        for run in page.recurring_runs or []:
            if run.display_name == name:
                api.delete_recurring_run(run.recurring_run_id)
                deleted += 1
        token = page.next_page_token
        if not token:
            return deleted


def _existing(package: Path) -> Path:
    package = Path(package)
    if not package.is_file():
        raise FileNotFoundError(f"no compiled pipeline at {package}; run `make compile`")
    return package
