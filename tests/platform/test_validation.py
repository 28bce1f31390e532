"""Great Expectations validation of the prepared data, on copies of the real data.

Each validation run takes seconds (Great Expectations, 100,000 interactions), so the corruption
kinds are grouped: one copy carries every row-level corruption (each in a different table or on
different rows, so none hides another) and one copy carries the file-level ones. Each test then
checks that its corruption is reported with the right table, expectation and column, and that the
detail names the bad row.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model_code.data.movielens import INTERACTIONS_SCHEMA, ITEMS_SCHEMA
from model_code.data.openclipart import PAIRS_SCHEMA
from sail.validation import DataValidationError, ExpectationFailure, ValidationReport, check
from sail.validation.checks import derived_columns, heldout_in_time_order
from sail.validation.run import validate_prepared_data

FULL_DATA = Path(os.environ.get("SAIL_VALIDATION_DATA", "/tmp/sail-full/data"))
PAIRS_KEPT = 200


def _source_data(request) -> Path:
    """A fully prepared data root: the full copy when this machine has one, else prepared small."""
    if (FULL_DATA / "openclipart" / "pairs.parquet").is_file() and (
        FULL_DATA / "movielens" / "sequences.parquet"
    ).is_file():
        return FULL_DATA
    return request.getfixturevalue("prepared_home") / "data"


def _write(frame: pd.DataFrame, path: Path, schema: pa.Schema | None = None) -> None:
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), path)


@pytest.fixture(scope="module")
def clean_root(request, tmp_path_factory) -> Path:
    """All of MovieLens and the first 200 openclipart pairs (their images, a matching manifest)."""
    source = _source_data(request)
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(source / "movielens", root / "movielens")
    pairs = pd.read_parquet(source / "openclipart" / "pairs.parquet").head(PAIRS_KEPT)
    (root / "openclipart" / "images").mkdir(parents=True)
    for image in pairs["image"]:
        shutil.copy(source / "openclipart" / image, root / "openclipart" / image)
    _write(pairs, root / "openclipart" / "pairs.parquet", PAIRS_SCHEMA)
    manifest = json.loads((source / "openclipart" / "manifest.json").read_text())
    manifest["rows"] = pairs["split"].value_counts().to_dict() | {"total": len(pairs)}
    (root / "openclipart" / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
def clean_report(clean_root, tmp_path_factory) -> ValidationReport:
    return validate_prepared_data(clean_root, docs_dir=tmp_path_factory.mktemp("clean-docs"))


@pytest.fixture(scope="module")
def corrupted(clean_root, tmp_path_factory) -> dict:
    """A copy with every row-level corruption; returns the report and the bad rows' keys."""
    root = tmp_path_factory.mktemp("corrupted") / "data"
    shutil.copytree(clean_root, root)
    movielens, openclipart = root / "movielens", root / "openclipart"
    keys = {}

    items = pd.read_parquet(movielens / "items.parquet")
    items.loc[items["item_id"] == "1682", "item_id"] = "1681"  # duplicated item id
    _write(items, movielens / "items.parquet", ITEMS_SCHEMA)

    inter = pd.read_parquet(movielens / "interactions.parquet")
    train = inter["split"] == "train"
    unknown = inter.index[train & (inter["rating"] < 4)][0]
    inter.loc[unknown, "item_id"] = "99999"
    keys["unknown_item_user"] = inter.loc[unknown, "user_id"]
    rated = inter.index[train & (inter["rating"] == 5)][0]
    inter.loc[rated, "rating"] = 7
    keys["rating_7"] = (inter.loc[rated, "user_id"], inter.loc[rated, "item_id"])
    # a validation row moved before the user's earliest train positive (still in the data's range)
    first_positive = inter[train & (inter["rating"] >= 4)].groupby("user_id")["timestamp"].min()
    validation = inter[inter["split"] == "validation"]
    moved = validation.index[
        validation["user_id"].map(first_positive) > inter["timestamp"].min() + 1
    ][0]
    user = inter.loc[moved, "user_id"]
    inter.loc[moved, "timestamp"] = first_positive[user] - 1
    keys["out_of_order_user"] = user
    _write(inter, movielens / "interactions.parquet", INTERACTIONS_SCHEMA)

    users = pd.read_parquet(movielens / "users.parquet")
    _write(users.rename(columns={"occupation": "job"}), movielens / "users.parquet")

    pairs = pd.read_parquet(openclipart / "pairs.parquet")
    pairs.loc[3, "title"] = None
    pairs.loc[7, "split"] = "dev"
    _write(pairs, openclipart / "pairs.parquet", PAIRS_SCHEMA)
    keys["null_title_id"], keys["bad_split_id"] = pairs.loc[3, "id"], pairs.loc[7, "id"]
    png = openclipart / pairs.loc[5, "image"]
    png.write_bytes(png.read_bytes()[: png.stat().st_size // 2])
    keys["truncated_png_id"] = pairs.loc[5, "id"]

    docs = tmp_path_factory.mktemp("corrupted-docs")
    return {"report": validate_prepared_data(root, docs_dir=docs), "keys": keys}


@pytest.fixture(scope="module")
def broken_files(clean_root, tmp_path_factory) -> ValidationReport:
    """No openclipart folder, sequences.parquet missing, items.parquet cut in half."""
    root = tmp_path_factory.mktemp("broken") / "data"
    shutil.copytree(clean_root / "movielens", root / "movielens")
    (root / "movielens" / "sequences.parquet").unlink()
    items = root / "movielens" / "items.parquet"
    items.write_bytes(items.read_bytes()[: items.stat().st_size // 2])
    return validate_prepared_data(root)


def _failure(
    report: ValidationReport, table: str, expectation: str, column: str | None
) -> ExpectationFailure:
    found = [
        f
        for f in report.failures
        if (f.table, f.expectation, f.column) == (table, expectation, column)
    ]
    assert found, f"no {expectation} failure on {table}.{column}; got:\n" + "\n".join(
        map(str, report.failures)
    )
    return found[0]


def test_clean_data_passes_every_check(clean_report):
    assert clean_report.success, "\n".join(map(str, clean_report.failures))
    assert clean_report.failures == []
    assert clean_report.tables == {
        "openclipart/pairs": PAIRS_KEPT,
        "movielens/items": 1682,
        "movielens/users": 943,
        "movielens/interactions": 100_000,
        "movielens/sequences": 942,
    }
    for table in clean_report.tables:
        stats = clean_report.statistics[table]
        assert stats["evaluated"] == stats["passed"] > 10 and stats["failed"] == 0
    check(clean_report)  # does not raise
    json.dumps(clean_report.to_dict())


def test_clean_html_lists_every_check(clean_report):
    page = (clean_report.docs_dir / "index.html").read_text()
    evaluated = sum(stats["evaluated"] for stats in clean_report.statistics.values())
    assert page.count(">PASS<") == evaluated and ">FAIL<" not in page
    assert "expect_column_values_to_be_unique" in page and "heldout_in_time_order" in page
    assert (clean_report.docs_dir / "gx" / "index.html").is_file()  # GE's own data docs


def test_duplicated_item_id(corrupted):
    failure = _failure(
        corrupted["report"], "movielens/items", "expect_column_values_to_be_unique", "item_id"
    )
    assert "item_id=1681" in failure.detail


def test_interaction_with_unknown_item(corrupted):
    failure = _failure(
        corrupted["report"],
        "movielens/interactions",
        "expect_column_values_to_be_in_set",
        "item_known",
    )
    assert "item_id=99999" in failure.detail
    assert f"user_id={corrupted['keys']['unknown_item_user']}" in failure.detail


def test_rating_out_of_range(corrupted):
    failure = _failure(
        corrupted["report"],
        "movielens/interactions",
        "expect_column_values_to_be_between",
        "rating",
    )
    user, item = corrupted["keys"]["rating_7"]
    assert failure.detail.startswith("1 of 100000 values unexpected")
    assert f"(rating=7, user_id={user}, item_id={item})" in failure.detail
    assert "max_value=5" in failure.detail


def test_null_title(corrupted):
    failure = _failure(
        corrupted["report"], "openclipart/pairs", "expect_column_values_to_not_be_null", "title"
    )
    assert corrupted["keys"]["null_title_id"] in failure.detail


def test_renamed_column_breaks_the_schema(corrupted):
    report = corrupted["report"]
    _failure(report, "movielens/users", "expect_column_to_exist", "occupation")
    schema = _failure(report, "movielens/users", "expect_table_columns_to_match_set", None)
    assert "job" in schema.detail and "occupation" in schema.detail


def test_truncated_png(corrupted):
    report, png_id = corrupted["report"], corrupted["keys"]["truncated_png_id"]
    failure = _failure(
        report, "openclipart/pairs", "expect_column_values_to_be_in_set", "image_decodes"
    )
    assert failure.detail.startswith("1 of 200 values unexpected") and png_id in failure.detail


def test_validation_timestamp_out_of_order(corrupted):
    failure = _failure(
        corrupted["report"],
        "movielens/interactions",
        "expect_column_values_to_be_in_set",
        "heldout_in_time_order",
    )
    assert failure.detail.startswith("1 of 100000")
    assert f"user_id={corrupted['keys']['out_of_order_user']}" in failure.detail


def test_bad_split_value(corrupted):
    failure = _failure(
        corrupted["report"], "openclipart/pairs", "expect_column_values_to_be_in_set", "split"
    )
    assert "split=dev" in failure.detail and corrupted["keys"]["bad_split_id"] in failure.detail


def test_failures_raise_with_every_failure_listed(corrupted):
    report = corrupted["report"]
    assert not report.success and report.statistics["movielens/users"]["failed"] >= 2
    with pytest.raises(DataValidationError) as raised:
        check(report)
    assert raised.value.report is report
    message = str(raised.value)
    assert all(str(failure) in message for failure in report.failures)
    assert (
        "movielens/interactions: expect_column_values_to_be_between failed on column rating: "
        in (message)
    )
    assert json.loads(json.dumps(report.to_dict()))["success"] is False


def test_html_report_shows_failures(corrupted):
    report = corrupted["report"]
    page = (report.docs_dir / "index.html").read_text()
    assert page.count(">FAIL<") == len(report.failures)
    assert "heldout_in_time_order" in page and "image_decodes" in page
    assert "validations" in {p.name for p in (report.docs_dir / "gx").iterdir()}


def test_missing_folder_missing_table_and_corrupted_parquet(broken_files):
    report = broken_files
    assert not report.success
    missing_set = _failure(report, "openclipart/pairs", "table_exists", None)
    assert "does not exist" in missing_set.detail
    _failure(report, "openclipart/manifest", "manifest_readable", None)
    missing = _failure(report, "movielens/sequences", "table_exists", None)
    assert "sequences.parquet is missing" in missing.detail
    unreadable = _failure(report, "movielens/items", "table_readable", None)
    assert "cannot be read as Parquet" in unreadable.detail
    # the tables that are fine are still validated, and pass
    assert set(report.tables) == {"movielens/users", "movielens/interactions"}
    assert {f.table for f in report.failures} == {
        "openclipart/pairs",
        "openclipart/manifest",
        "movielens/items",
        "movielens/sequences",
    }


def test_held_out_order_is_strict_on_timestamp_then_item_id():
    inter = pd.DataFrame(
        {
            "user_id": ["1"] * 5 + ["2"] * 3,
            "item_id": ["5", "9", "7", "8", "3", "1", "2", "3"],
            "rating": [5, 2, 4, 4, 5, 4, 4, 4],
            "timestamp": [100, 300, 200, 200, 200, 10, 10, 10],
            "split": [
                "train",
                "train",
                "validation",
                "test",
                "train",
                "train",
                "test",
                "validation",
            ],
        }
    )
    ok = heldout_in_time_order(inter)
    # user 1: a later negative (item 9) does not matter; the validation item 7 ties on time with
    # train positive 3 and wins on item id; test item 8 follows it on item id
    assert ok[:5].all()
    # user 2: the validation item 3 is after the test item 2 on item id, so the test row is early
    assert ok.tolist()[5:] == [True, False, True]


def test_derived_check_that_cannot_be_computed_is_reported():
    inter = pd.DataFrame(
        {"user_id": ["1"], "item_id": ["1"], "rating": ["5"], "timestamp": [1], "split": ["test"]}
    )
    derived, errors = derived_columns(
        "movielens/interactions", {"movielens/interactions": inter}, Path(".")
    )
    assert "heldout_once_per_user" in {d.column for d in derived}
    assert dict(errors)["heldout_is_positive"].startswith("TypeError")
