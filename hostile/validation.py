"""Bad data against the validation step: every corruption kind on a copy of the prepared data,
and a corrupted snapshot through the whole pipeline, which must stop before anything is
registered or published."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hostile.section import Context, Section
from sail.validation import corruptions
from sail.validation.corruptions import KINDS, corrupt
from sail.validation.run import validate_prepared_data

DATA_LIMIT = 300  # records of each data set the pipeline case ingests (renders, audio cached)
DUPLICATE_ITEM = "1\tA copy\t1995\tDrama"  # a second row for item 1 in ml-100k.item
MOST_CHECKS_SHOWN = 3


def run(context: Context) -> list[Section]:
    """Both sections: every corruption kind, then the corrupted snapshot through the pipeline."""
    return [corrupted_data(context), stop_publishes_nothing(context)]


def corrupted_data(context: Context, kinds: Iterable[str] | None = None) -> Section:
    """Each corruption kind (all of `KINDS` by default) on its own copy of the prepared data."""
    section = Section(
        "Corrupted data against the validation step",
        ["corruption", "what was changed", "stopped", "failed checks", "seconds"],
        note=(
            "Each kind of bad data the platform knows (sail/validation/corruptions.py) applied "
            "for real to a copy of the prepared data (openclipart 300 pairs, all of MovieLens), "
            "then `validate_prepared_data` run on it. Holds when validation fails and the check "
            "meant to catch that kind is among the failures; the clean copy must pass."
        ),
    )
    began = time.perf_counter()
    folder = context.folder("validation")
    for kind in [None, *(KINDS if kinds is None else kinds)]:
        root = folder / (kind or "clean")
        shutil.copytree(context.home / "data", root)
        try:
            start = time.perf_counter()
            corruption = corrupt(root, kind) if kind else None
            report = validate_prepared_data(root)
            seconds = round(time.perf_counter() - start, 1)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        failed = [(f.table, f.expectation, f.column) for f in report.failures]
        if corruption is None:
            cells = ("none (clean copy)", "nothing", _yes(not report.success), _checks(failed))
            section.add(*cells, seconds, ok=report.success)
            continue
        expected = (corruption.table, corruption.check, corruption.column) in failed
        section.add(
            kind,
            _summary(KINDS[kind].__doc__),
            _yes(not report.success),
            _checks(failed),
            seconds,
            ok=not report.success and expected,
        )
    section.seconds = round(time.perf_counter() - began, 1)
    return section


def stop_publishes_nothing(context: Context) -> Section:
    """The real pipeline on a MovieLens snapshot with a duplicated item: it must stop at
    validate-data with no model registered, nothing published and no training step run."""
    section = Section(
        "A stop means nothing registered or published",
        ["case", "stopped at", "registered models", "published versions", "step runs", "seconds"],
        note=(
            "The real pipeline (`run_locally`, tiny preset, quick profile) in an empty SAIL_HOME "
            "of its own, on a MovieLens snapshot whose item file repeats item 1. Holds when the "
            "run fails at validate-data and afterwards the registry holds no model, the feature "
            "store no published version, and no training step has run."
        ),
    )
    began = time.perf_counter()
    if context.quick:
        section.add("duplicated item in a snapshot", "skipped in quick mode", "-", "-", "-", 0)
    else:
        cells, ok = _corrupted_pipeline_run(context)
        section.add(*cells, ok=ok)
    section.seconds = round(time.perf_counter() - began, 1)
    return section


def _corrupted_pipeline_run(context: Context) -> tuple:
    """Run the pipeline on the corrupted snapshot; one row's cells and `ok`."""
    from sail.feature_store.repo import read_state
    from sail.pipeline.local import run_locally

    folder = context.folder("validation-pipeline")
    home, snapshots = folder / "home", folder / "snapshots"
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(snapshots, ignore_errors=True)
    snapshot(snapshots, "2026-11-29", items=[DUPLICATE_ITEM])
    start = time.perf_counter()
    stopped_at = "did not stop"
    with _environment(
        SAIL_HOME=str(home),
        SAIL_CACHE_DIR=str(context.home / "cache"),
        MLFLOW_TRACKING_URI=None,
        SAIL_FEATURE_STORE=None,
        SAIL_DATA_DIR=None,
    ):
        try:
            run_locally("tiny", "quick", data_uri=str(snapshots), data_limit=DATA_LIMIT)
        except Exception as error:  # a stop is a RuntimeError naming the failed task
            named = isinstance(error, RuntimeError) and "validate-data" in str(error)
            stopped_at = "validate-data" if named else f"{type(error).__name__}: {_short(error)}"
        seconds = round(time.perf_counter() - start, 1)
        registered, steps = _tracking_state(home)
        published = len(read_state(home)["versions"])
    trained = [name for name in steps if name.startswith("train_")]
    ok = stopped_at == "validate-data" and not registered and not published and not trained
    runs = ", ".join(f"{name} {status}" for name, status in steps.items()) or "none"
    return ("duplicated item in a snapshot", stopped_at, registered, published, runs, seconds), ok


def _tracking_state(home: Path) -> tuple[int, dict[str, str]]:
    """Registered models in `home`'s MLflow store, and each step run's status."""
    import mlflow

    from sail.tracking.runs import STEP_TAG
    from sail.tracking.server import local_server
    from sail.tracking.store import configure, experiment_id

    with local_server(home / "mlflow") as uri:
        configure(uri)
        client = mlflow.MlflowClient()
        registered = len(client.search_registered_models())
        runs = client.search_runs([experiment_id()], order_by=["attributes.start_time ASC"])
    steps = {run.info.run_name: run.info.status for run in runs if STEP_TAG in run.data.tags}
    return registered, steps


def snapshot(root: Path, name: str, ratings: Iterable[str] = (), items: Iterable[str] = ()):
    """A MovieLens snapshot folder `root/name/movielens`: the packaged files with rows appended
    to the ratings (`ml-100k.inter`) and items (`ml-100k.item`); returns `root`."""
    from model_code.data.movielens import source_dir

    folder = root / name / "movielens"
    shutil.copytree(source_dir(), folder)
    for file, rows in (("ml-100k.inter", ratings), ("ml-100k.item", items)):
        with (folder / file).open("a") as handle:
            handle.writelines(f"{row}\n" for row in rows)
    return root


@contextmanager
def _environment(**settings: str | None) -> Iterator[None]:
    """Set (or, for None, unset) environment variables for a block, then restore them."""
    saved = {name: os.environ.get(name) for name in settings}

    def apply(values: dict[str, str | None]) -> None:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    apply(settings)
    try:
        yield
    finally:
        apply(saved)


def _summary(doc: str | None) -> str:
    """A kind's docstring, first sentence, without its parenthesis, constants spelt out."""
    text = re.sub(r"\s*\([^)]*\)", "", " ".join((doc or "").split()))
    text = re.sub(r"\b[A-Z][A-Z0-9_]{3,}\b", lambda m: str(getattr(corruptions, m[0], m[0])), text)
    return re.split(r"\.\s+(?=[A-Z])", text)[0].rstrip(".")


def _checks(failed: list[tuple[str, str, str | None]]) -> str:
    """Failed checks as `table: check(column)`, shortened, the first few."""
    names = []
    for table, check, column in failed:
        name = f"{table}: {check.removeprefix('expect_column_').removeprefix('expect_')}" + (
            f"({column})" if column else ""
        )
        if name not in names:
            names.append(name)
    shown = ", ".join(names[:MOST_CHECKS_SHOWN]) or "none"
    return shown + (
        f" +{len(names) - MOST_CHECKS_SHOWN} more" if len(names) > MOST_CHECKS_SHOWN else ""
    )


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _short(error: Exception) -> str:
    return " ".join(str(error).split())[:80]
