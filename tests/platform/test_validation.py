"""Great Expectations validation of the prepared data, on copies of the real data.

Each validation run takes seconds (Great Expectations, 100,000 interactions), so the corruption
kinds are grouped: one copy carries every row-level corruption (each in a different table or on
different rows, so none hides another) and one copy carries the file-level ones. Each test then
checks that its corruption is reported with the right table, expectation and column, and that the
detail names the bad row. Then every kind of `sail.validation.corruptions` is applied alone to its
own copy, and must stop validation with its check naming the problem. The validation policy's
windows are tested on their own, and with two more runs: data newer than MovieLens (passes) and the
clean data under a stricter policy file.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model_code.data.movielens import INTERACTIONS_SCHEMA, ITEMS_SCHEMA
from model_code.data.openclipart import PAIRS_SCHEMA
from model_code.data.storage import fingerprint_files
from model_code.text import MAX_FIELD_CHARS
from sail.validation import DataValidationError, ExpectationFailure, ValidationReport, check
from sail.validation.checks import derived_columns, heldout_in_time_order
from sail.validation.corruptions import KINDS, MEDIA_COLUMNS, SCHEMAS, corrupt, resign
from sail.validation.policy import POLICY_ENV, ValidationPolicy, load_policy
from sail.validation.run import validate_prepared_data

FULL_DATA = Path(os.environ.get("SAIL_VALIDATION_DATA", "/tmp/sail-full/data"))
PAIRS_KEPT = 200
MOVIELENS_LAST_RATING = 893286638  # 1998-04-22
NEWER_LAST_RATING = datetime(2026, 11, 1, tzinfo=UTC)
FIXED_NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)


def _source_data(request) -> Path:
    """A fully prepared data root: the full copy when this machine has one, else prepared small."""
    if (FULL_DATA / "openclipart" / "pairs.parquet").is_file() and (
        FULL_DATA / "movielens" / "sequences.parquet"
    ).is_file():
        return FULL_DATA
    return request.getfixturevalue("prepared_home") / "data"


def _write(frame: pd.DataFrame, path: Path, schema: pa.Schema | None = None) -> None:
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), path)


MEDIA_ROWS_KEPT = 60  # of each audio or clip table: every split, every check, little decoding
MEDIA_TABLES = ("tuxpaint/stamps", "asterisk/prompts", "wesnoth/clips", "spoken/spoken")


@pytest.fixture(scope="module")
def clean_root(request, tmp_path_factory) -> Path:
    """All of MovieLens, the first 200 openclipart pairs and the first 60 rows of each audio and
    clip table (their media files, matching manifests)."""
    source = _source_data(request)
    if not (source / "spoken" / "spoken.parquet").is_file():  # a full copy of older data sets
        source = request.getfixturevalue("prepared_home") / "data"
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(source / "movielens", root / "movielens")
    _subset(source, root, "openclipart/pairs", PAIRS_KEPT)
    for table in MEDIA_TABLES:
        _subset(source, root, table, MEDIA_ROWS_KEPT)
    return root


def _subset(source: Path, root: Path, table: str, rows: int) -> None:
    """The first `rows` rows by id of a table, their media files, and a manifest to match."""
    dataset = table.split("/")[0]
    frame = pd.read_parquet(source / f"{table}.parquet").sort_values("id").head(rows)
    files = [f"{table.split('/')[1]}.parquet"]
    for column in MEDIA_COLUMNS[table]:
        for value in frame[column].dropna():
            files += [value] if isinstance(value, str) else list(value)
    for name in files[1:]:
        (root / dataset / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / dataset / name, root / dataset / name)
    _write(frame, root / f"{table}.parquet", SCHEMAS[table])
    manifest = json.loads((source / dataset / "manifest.json").read_text())
    manifest["rows"] = frame["split"].value_counts().to_dict() | {"total": len(frame)}
    manifest["files"] = fingerprint_files(root / dataset, files)
    (root / dataset / "manifest.json").write_text(json.dumps(manifest))


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
    items.loc[items["item_id"] == "10", "year"] = 1700
    keys["year_too_late"] = datetime.now(UTC).year + 3  # the policy allows the current year + 2
    items.loc[items["item_id"] == "11", "year"] = keys["year_too_late"]
    _write(items, movielens / "items.parquet", ITEMS_SCHEMA)

    inter = pd.read_parquet(movielens / "interactions.parquet")
    train = inter["split"] == "train"
    unknown = inter.index[train & (inter["rating"] < 4)][0]
    inter.loc[unknown, "item_id"] = "99999"
    keys["unknown_item_user"] = inter.loc[unknown, "user_id"]
    future = inter.index[train & (inter["rating"] < 4)][1]  # a negative: held-out order unchanged
    inter.loc[future, "timestamp"] = int((datetime.now(UTC) + timedelta(days=3)).timestamp())
    keys["future"] = tuple(inter.loc[future, ["timestamp", "user_id", "item_id"]])
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
    users.loc[users["user_id"] == "5", "age"] = 300
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
    shutil.copytree(clean_root, root)
    shutil.rmtree(root / "openclipart")
    (root / "movielens" / "sequences.parquet").unlink()
    items = root / "movielens" / "items.parquet"
    items.write_bytes(items.read_bytes()[: items.stat().st_size // 2])
    return validate_prepared_data(root)


@pytest.fixture(scope="module")
def newer_report(clean_root, tmp_path_factory) -> ValidationReport:
    """Every rating moved forward so that the last is on 2026-11-01; default policy and clock."""
    root = tmp_path_factory.mktemp("newer") / "data"
    shutil.copytree(clean_root, root)
    path = root / "movielens" / "interactions.parquet"
    inter = pd.read_parquet(path)
    inter["timestamp"] += int(NEWER_LAST_RATING.timestamp()) - inter["timestamp"].max()
    _write(inter, path, INTERACTIONS_SCHEMA)
    resign(root, "movielens")
    return validate_prepared_data(root)


@pytest.fixture(scope="module")
def stricter_report(clean_root, tmp_path_factory) -> ValidationReport:
    """The clean data under a policy file whose floor is 1998-01-01 and whose users are 10+."""
    path = tmp_path_factory.mktemp("policy") / "stricter.yaml"
    path.write_text("earliest_interaction: 1998-01-01\nage_range: [10, 100]\n")
    return validate_prepared_data(clean_root, policy=load_policy(path), now=FIXED_NOW)


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
    } | {table: MEDIA_ROWS_KEPT for table in MEDIA_TABLES}
    for table in clean_report.tables:
        stats = clean_report.statistics[table]
        assert stats["evaluated"] == stats["passed"] > 10 and stats["failed"] == 0
    for dataset in ("openclipart", "movielens", *(table.split("/")[0] for table in MEDIA_TABLES)):
        assert clean_report.statistics[f"{dataset}/manifest"] == {
            "evaluated": 2,  # readable, and its files match it
            "passed": 2,
            "failed": 0,
        }
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
    fingerprints = _failure(report, "movielens/manifest", "files_match_manifest", None)
    assert fingerprints.detail == (
        "2 files do not match manifest.json (4 recorded): "
        "changed: items.parquet; missing: sequences.parquet"
    )
    # the tables that are fine are still validated, and pass
    assert set(report.tables) == {"movielens/users", "movielens/interactions", *MEDIA_TABLES}
    assert {f.table for f in report.failures} == {
        "openclipart/pairs",
        "openclipart/manifest",
        "movielens/items",
        "movielens/sequences",
        "movielens/manifest",
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
        "movielens/interactions",
        {"movielens/interactions": inter},
        Path("."),
        load_policy().resolve(FIXED_NOW),
    )
    assert "heldout_once_per_user" in {d.column for d in derived}
    assert dict(errors)["heldout_is_positive"].startswith("TypeError")


def test_interaction_in_the_future(corrupted):
    failure = _failure(
        corrupted["report"],
        "movielens/interactions",
        "expect_column_values_to_be_between",
        "timestamp",
    )
    timestamp, user, item = corrupted["keys"]["future"]
    assert failure.detail.startswith("1 of 100000 values unexpected")
    assert f"(timestamp={timestamp}, user_id={user}, item_id={item})" in failure.detail


def test_release_years_and_ages_outside_the_policy(corrupted):
    report = corrupted["report"]
    years = _failure(report, "movielens/items", "expect_column_values_to_be_between", "year")
    assert years.detail.startswith("2 of 1682 values unexpected")
    assert "(year=1700, item_id=10)" in years.detail
    assert f"(year={corrupted['keys']['year_too_late']}, item_id=11)" in years.detail
    ages = _failure(report, "movielens/users", "expect_column_values_to_be_between", "age")
    assert ages.detail.startswith("1 of 943 values unexpected") and "(age=300, user_id=5)" in (
        ages.detail
    )


def test_report_records_the_policy(clean_report):
    recorded = json.loads(json.dumps(clean_report.to_dict()))["policy"]
    assert recorded["configured"] == load_policy().to_dict()
    resolved = recorded["resolved"]
    now = datetime.fromisoformat(resolved["now"])
    assert abs(datetime.now(UTC) - now) < timedelta(hours=1)
    assert resolved["timestamp"] == [
        int(datetime(1995, 1, 1, tzinfo=UTC).timestamp()),
        int((now + timedelta(hours=24)).timestamp()),
    ]
    assert resolved["year"] == [1870, now.year + 2]
    assert resolved["rating"] == [1, 5] and resolved["age"] == [1, 100]


def test_interactions_newer_than_movielens_pass_the_default_policy(newer_report):
    assert newer_report.success, "\n".join(map(str, newer_report.failures))
    assert newer_report.statistics["movielens/interactions"]["failed"] == 0
    assert newer_report.policy["resolved"]["timestamp"][1] > NEWER_LAST_RATING.timestamp()


def test_a_later_floor_in_a_policy_file_fails_the_old_data(stricter_report, clean_root):
    failures = {(f.table, f.expectation, f.column): f for f in stricter_report.failures}
    timestamp = ("movielens/interactions", "expect_column_values_to_be_between", "timestamp")
    age = ("movielens/users", "expect_column_values_to_be_between", "age")
    assert set(failures) == {timestamp, age}
    inter = pd.read_parquet(clean_root / "movielens" / "interactions.parquet")
    before_1998 = int((inter["timestamp"] < datetime(1998, 1, 1, tzinfo=UTC).timestamp()).sum())
    assert 0 < before_1998 < len(inter)
    assert failures[timestamp].detail.startswith(f"{before_1998} of 100000 values unexpected")
    users = pd.read_parquet(clean_root / "movielens" / "users.parquet")
    assert failures[age].detail.startswith(f"{int((users['age'] < 10).sum())} of 943 values")
    assert stricter_report.policy["configured"]["earliest_interaction"] == "1998-01-01"
    assert stricter_report.policy["resolved"]["now"] == FIXED_NOW.isoformat()


PACKAGED = ValidationPolicy(
    earliest_interaction=date(1995, 1, 1),
    future_tolerance_hours=24,
    rating_range=(1, 5),
    earliest_release_year=1870,
    release_years_ahead=2,
    age_range=(1, 100),
    max_title_chars=2048,
    min_image_std=1.0,
    min_audio_rms=0.001,
    max_clipped_fraction=0.05,
    max_audio_seconds=300,
)


@pytest.fixture
def no_policy_env(monkeypatch):
    monkeypatch.delenv(POLICY_ENV, raising=False)
    return monkeypatch


def _inside(value: int, window: tuple[int, int]) -> bool:
    return window[0] <= value <= window[1]


def test_packaged_policy(no_policy_env):
    assert load_policy() == PACKAGED


def test_policy_resolves_relative_bounds_at_now(no_policy_env):
    windows = load_policy().resolve(FIXED_NOW)
    day_after = FIXED_NOW + timedelta(hours=24)
    assert windows.timestamp == (788918400, int(day_after.timestamp()))  # 1995-01-01 UTC
    assert windows.year == (1870, 2028) and windows.rating == (1, 5) and windows.age == (1, 100)
    assert windows.title_length == (1, MAX_FIELD_CHARS) and windows.min_image_std == 1.0
    assert _inside(874724710, windows.timestamp)  # MovieLens' first rating
    assert _inside(int(NEWER_LAST_RATING.timestamp()), windows.timestamp)
    in_three_days = FIXED_NOW + timedelta(days=3)
    assert not _inside(int(in_three_days.timestamp()), windows.timestamp)
    assert not _inside(788918399, windows.timestamp)
    assert not _inside(1700, windows.year) and not _inside(2029, windows.year)
    assert not _inside(7, windows.rating) and not _inside(300, windows.age)
    later = load_policy().resolve(datetime(2031, 1, 1, tzinfo=UTC))
    assert later.year == (1870, 2033) and later.timestamp[1] > windows.timestamp[1]


def test_policy_file_overrides_only_its_keys(tmp_path, no_policy_env):
    path = tmp_path / "policy.yaml"
    path.write_text("earliest_interaction: 1998-01-01\nrelease_years_ahead: 5\n")
    assert load_policy(path) == replace(
        PACKAGED, earliest_interaction=date(1998, 1, 1), release_years_ahead=5
    )
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"earliest_interaction": "2000-02-03", "rating_range": [0, 10]}))
    assert load_policy(path) == replace(
        PACKAGED, earliest_interaction=date(2000, 2, 3), rating_range=(0, 10)
    )


def test_environment_names_the_policy_file_and_an_argument_wins(tmp_path, no_policy_env):
    from_env, from_argument = tmp_path / "env.yaml", tmp_path / "argument.yaml"
    from_env.write_text("earliest_interaction: 2000-01-01\n")
    from_argument.write_text("earliest_interaction: 2010-01-01\n")
    no_policy_env.setenv(POLICY_ENV, str(from_env))
    assert load_policy().earliest_interaction == date(2000, 1, 1)
    assert load_policy(from_argument).earliest_interaction == date(2010, 1, 1)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("colour: blue", "'colour'"),
        ("rating_range: [1, five]", "rating_range"),
        ("rating_range: [1, 2, 3]", "rating_range"),
        ("age_range: [100, 1]", "age_range"),
        ("earliest_interaction: soon", "earliest_interaction"),
        ("earliest_interaction: 1995-01-01 10:00:00", "earliest_interaction"),
        ("future_tolerance_hours: -1", "future_tolerance_hours"),
        ("future_tolerance_hours: '24'", "future_tolerance_hours"),
        ("earliest_release_year: 1870.5", "earliest_release_year"),
        ("release_years_ahead: true", "release_years_ahead"),
        ("max_title_chars: 0", "max_title_chars"),
        ("max_title_chars: 2048.0", "max_title_chars"),
        ("min_image_std: -0.5", "min_image_std"),
        ("min_audio_rms: 1.5", "min_audio_rms"),
        ("max_clipped_fraction: -0.1", "max_clipped_fraction"),
        ("max_audio_seconds: 0", "max_audio_seconds"),
    ],
)
def test_bad_policy_file_names_the_key(tmp_path, no_policy_env, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ValueError, match=key) as raised:
        load_policy(path)
    assert str(path) in str(raised.value)


def test_window_that_resolves_inverted_names_the_key(no_policy_env):
    policy = load_policy()
    with pytest.raises(ValueError, match="earliest_interaction"):
        replace(policy, earliest_interaction=date(2026, 11, 17)).resolve(FIXED_NOW)
    replace(policy, earliest_interaction=date(2026, 11, 16)).resolve(FIXED_NOW)  # within a day
    with pytest.raises(ValueError, match="earliest_release_year"):
        replace(policy, earliest_release_year=2029).resolve(FIXED_NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        policy.resolve(datetime(2026, 11, 15))


AUDIO_AND_CLIP_KINDS = ("silent_audio", "clipped_audio", "odd_sample_rate", "overlong_audio")
AUDIO_AND_CLIP_KINDS += ("undecodable_audio", "frame_of_another_size", "missing_frame")
AUDIO_AND_CLIP_KINDS += ("empty_transcript",)


def test_each_audio_and_clip_corruption_is_named_in_one_validation(clean_root, tmp_path):
    """All at once, on rows of their own (one validation instead of eight)."""
    root = tmp_path / "data"
    shutil.copytree(clean_root, root)
    corruptions = [corrupt(root, kind) for kind in AUDIO_AND_CLIP_KINDS]
    report = validate_prepared_data(root)
    with pytest.raises(DataValidationError):
        check(report)
    for corruption in corruptions:
        failure = _failure(report, corruption.table, corruption.check, corruption.column)
        assert corruption.mentions in failure.detail
    assert not [f for f in report.failures if f.expectation == "files_match_manifest"]


# Kinds with tests of their own above; `make hostile` tries every kind.
TESTED_ABOVE = {"duplicate_item_id", "unknown_item", "rating_out_of_range", "renamed_column"}
TESTED_ABOVE |= {"truncated_png", "truncated_parquet", "missing_table", *AUDIO_AND_CLIP_KINDS}


@pytest.mark.parametrize("kind", sorted(set(KINDS) - TESTED_ABOVE))
def test_each_corruption_alone_stops_validation(kind, clean_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(clean_root, root)
    corruption = corrupt(root, kind)
    assert corruption.changed
    report = validate_prepared_data(root)
    with pytest.raises(DataValidationError):
        check(report)
    failure = _failure(report, corruption.table, corruption.check, corruption.column)
    assert corruption.mentions in failure.detail
    if corruption.resigned:  # the content check stopped it, not the fingerprints
        assert not [f for f in report.failures if f.expectation == "files_match_manifest"]


def test_unknown_corruption_kind_lists_the_kinds(tmp_path):
    with pytest.raises(ValueError, match="single_colour_image"):
        corrupt(tmp_path, "gremlins")
