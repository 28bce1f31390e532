"""validate_data: clean data passes; corrupted data stops the step with the report written."""

import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kfp import dsl

from components.validate_data.component import validate_data
from sail.validation import DataValidationError


def test_clean_data_passes_and_the_report_is_written(data, artifact):
    report = artifact(dsl.HTML, "report.html")
    validate_data.python_func(data, report)
    assert "expect_column_values_to_be_unique" in Path(report.path).read_text()
    runs = mlflow.search_runs(filter_string="tags.`sail.step` = 'validate_data'")
    assert list(runs["status"]) == ["FINISHED"]
    assert runs["tags.sail.data_fingerprint"][0].startswith("sha256:")


def _duplicate_item_id(root: Path) -> None:
    items = root / "movielens" / "items.parquet"
    frame = pd.read_parquet(items)
    frame.loc[1, "item_id"] = frame.loc[0, "item_id"]
    frame.to_parquet(items)


def _drop_sequences(root: Path) -> None:
    (root / "movielens" / "sequences.parquet").unlink()


def _truncate_an_image(root: Path) -> None:
    image = sorted((root / "openclipart" / "images").glob("*.png"))[0]
    image.write_bytes(image.read_bytes()[:100])


@pytest.mark.parametrize(
    ("corrupt", "named"),
    [
        (_duplicate_item_id, "item_id"),
        (_drop_sequences, "sequences"),
        (_truncate_an_image, "image_decodes"),
    ],
)
def test_corrupted_data_stops_the_step_with_the_report_written(
    data, artifact, tmp_path, corrupt, named
):
    corrupted = tmp_path / "data"
    shutil.copytree(data.path, corrupted)
    corrupt(corrupted)
    report = artifact(dsl.HTML, "report.html")
    with pytest.raises(DataValidationError, match=named):
        validate_data.python_func(dsl.Dataset(uri=str(corrupted)), report)
    assert "FAIL" in Path(report.path).read_text()
    (failed,) = mlflow.search_runs(filter_string="tags.`sail.step` = 'validate_data'").itertuples()
    assert failed.status == "FAILED"
