"""The runner: read the prepared tables, derive checks, run one GE checkpoint per table, report.

Great Expectations 1.x runs in an ephemeral context (nothing written but the optional data docs):
a pandas data source with one dataframe asset and whole-dataframe batch definition per table, an
`ExpectationSuite`, a `ValidationDefinition` and a `Checkpoint` each, run with the table's
DataFrame (plus its derived columns) as the batch parameter. Each data set's files are checked
against the fingerprints its manifest records, before any table. The validation policy is resolved
once per run, at `now`, and recorded in the report.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import great_expectations as gx
import pandas as pd

from sail.validation.checks import derived_columns
from sail.validation.fingerprints import files_match_manifest
from sail.validation.html import write_html
from sail.validation.policy import ValidationPolicy, load_policy
from sail.validation.report import CheckOutcome, ValidationReport, build_report
from sail.validation.results import outcome_of
from sail.validation.suites import build_suite
from sail.validation.tables import TABLES, TableSpec, load_tables, manifest_row_count

DOCS_SITE = "sail"
GX_DOCS_FOLDER = "gx"  # GE's own data docs site, under docs_dir


def validate_prepared_data(
    data_root: Path,
    docs_dir: Path | None = None,
    policy: ValidationPolicy | None = None,
    now: datetime | None = None,
) -> ValidationReport:
    """Validate both prepared data sets under `data_root` (`$SAIL_HOME/data`).

    The windows come from `policy` (default `load_policy()`) resolved at `now` (default the current
    UTC time); `report.policy` records both the configured and the resolved windows.

    Never raises for bad data: missing or unreadable files are failed checks like any other. With
    `docs_dir`, writes `docs_dir/index.html` (every check and its outcome, self-contained) and GE's
    data docs site under `docs_dir/gx/` (that folder is replaced on every run).
    """
    data_root = Path(data_root)
    policy = policy if policy is not None else load_policy()
    windows = policy.resolve(now if now is not None else datetime.now(UTC))
    loaded = load_tables(data_root)
    outcomes: list[CheckOutcome] = list(loaded.outcomes)
    outcomes += [
        files_match_manifest(data_root / dataset, manifest)
        for dataset, manifest in loaded.manifests.items()
    ]
    context = _context(Path(docs_dir) if docs_dir is not None else None)
    source = context.data_sources.add_pandas("prepared_data")
    for spec in TABLES:
        frame = loaded.frames.get(spec.label)
        if frame is None:
            continue
        derived, errors = derived_columns(
            spec.label, loaded.frames, data_root / spec.dataset, windows
        )
        outcomes += [
            CheckOutcome(spec.label, "derived_column_computed", column, False, error)
            for column, error in errors
        ]
        batch = frame.assign(**{d.column: d.values for d in derived})
        rows = manifest_row_count(spec, loaded.manifests.get(spec.dataset))
        suite = build_suite(spec, list(frame.columns), derived, rows, windows)
        outcomes += _run_checkpoint(context, source, spec, suite, batch)
    tables = {label: len(frame) for label, frame in loaded.frames.items()}
    recorded_policy = {"configured": policy.to_dict(), "resolved": windows.to_dict()}
    report = build_report(
        outcomes, tables, Path(docs_dir) if docs_dir is not None else None, recorded_policy
    )
    if docs_dir is not None:
        shutil.rmtree(Path(docs_dir) / GX_DOCS_FOLDER, ignore_errors=True)  # no stale runs
        context.build_data_docs(site_names=[DOCS_SITE])
        write_html(report, outcomes, Path(docs_dir) / "index.html", f"{GX_DOCS_FOLDER}/index.html")
    return report


def _context(docs_dir: Path | None):
    """An ephemeral GE context, quiet, with one data docs site under `docs_dir` when given."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    for site in list(context.get_site_names()):
        context.delete_data_docs_site(site)
    if docs_dir is not None:
        context.add_data_docs_site(
            DOCS_SITE,
            {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir / GX_DOCS_FOLDER),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def _run_checkpoint(context, source, spec: TableSpec, suite, batch: pd.DataFrame) -> list:
    """Run one table's suite through a checkpoint; its results as outcomes."""
    batch_definition = source.add_dataframe_asset(
        spec.gx_name
    ).add_batch_definition_whole_dataframe("whole table")
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(
            name=spec.gx_name, data=batch_definition, suite=context.suites.add(suite)
        )
    )
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": 20}
    keys = [key for key in spec.keys if key in batch.columns]
    if keys:
        result_format["unexpected_index_column_names"] = keys
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=spec.gx_name, validation_definitions=[definition], result_format=result_format
        )
    )
    run = checkpoint.run(batch_parameters={"dataframe": batch})
    return [
        outcome_of(spec.label, result)
        for validation in run.run_results.values()
        for result in validation.results
    ]
