"""validate_data: clean data passes with a fingerprint; corrupted data stops with a report."""

import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kfp import dsl

from components.validate_data.component import validate_data
from sail.validation import DataValidationError


def test_clean_data_gives_a_fingerprinted_dataset(home, artifact):
    data, report = artifact(dsl.Dataset, "data"), artifact(dsl.HTML, "report.html")
    validate_data.python_func("run-1", str(home), data, report)
    summary = json.loads(Path(data.path).read_text())
    assert data.metadata["fingerprint"].startswith("sha256:") and summary["tables"]
    assert "expect_column_values_to_be_unique" in Path(report.path).read_text()


def test_duplicated_ids_stop_the_step_with_the_report_written(home, artifact, tmp_path):
    corrupted = tmp_path / "home"
    shutil.copytree(home / "data", corrupted / "data")
    items = corrupted / "data" / "movielens" / "items.parquet"
    frame = pd.read_parquet(items)
    frame.loc[1, "item_id"] = frame.loc[0, "item_id"]
    frame.to_parquet(items)
    data, report = artifact(dsl.Dataset, "data"), artifact(dsl.HTML, "report.html")
    with pytest.raises(DataValidationError, match="item_id"):
        validate_data.python_func("run-2", str(corrupted), data, report)
    assert "FAIL" in Path(report.path).read_text()
    (failed,) = mlflow.search_runs(filter_string="tags.`sail.step` = 'validate_data'").itertuples()
    assert failed.status == "FAILED"
