"""One Great Expectations suite per prepared table.

Each suite holds: the schema (`expect_table_columns_to_match_set` over the table's columns plus its
derived columns, and `expect_column_to_exist` per column), the row count (at least one, and equal to
the data set's manifest), the column rules below, and one `expect_column_values_to_be_in_set {True}`
per derived column from `checks.py`. The windows of ratings, timestamps, years, ages and title
lengths come from the resolved validation policy (`policy.py`). Column rules whose column is missing
are left out: the `expect_column_to_exist` failure already names it.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from sail.validation.checks import Derived
from sail.validation.policy import Windows
from sail.validation.tables import TableSpec

SPLITS = ["train", "validation", "test"]
OCCUPATIONS = (
    ["administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive"]
    + ["healthcare", "homemaker", "lawyer", "librarian", "marketing", "none", "other"]
    + ["programmer", "retired", "salesman", "scientist", "student", "technician", "writer"]
)


def _required(*columns: str) -> list[gxe.Expectation]:
    return [gxe.ExpectColumnValuesToNotBeNull(column=column) for column in columns]


def _text(*columns: str) -> list[gxe.Expectation]:
    """Non-null, non-empty strings."""
    return _required(*columns) + [
        gxe.ExpectColumnValueLengthsToBeBetween(column=column, min_value=1) for column in columns
    ]


def _ids(*columns: str) -> list[gxe.Expectation]:
    """Non-empty strings without whitespace or line breaks."""
    return _text(*columns) + [
        gxe.ExpectColumnValuesToNotMatchRegex(
            column=column, regex=r"\s", description="an id holds no whitespace or line breaks"
        )
        for column in columns
    ]


def _title(column: str, windows: Windows) -> list[gxe.Expectation]:
    """Non-null, not blank, and no longer than the policy's max_title_chars."""
    return [
        *_required(column),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column=column,
            min_value=windows.title_length[0],
            max_value=windows.title_length[1],
            description="1 .. the validation policy's max_title_chars characters",
        ),
        gxe.ExpectColumnValuesToMatchRegex(
            column=column, regex=r"\S", description="a title is not blank"
        ),
    ]


def _every_split() -> gxe.Expectation:
    """No split without rows (an empty validation or test split makes its metrics meaningless)."""
    return gxe.ExpectColumnDistinctValuesToContainSet(
        column="split", value_set=SPLITS, description="every split has at least one row"
    )


def _between(column: str, window: tuple[int, int], keys: str) -> gxe.Expectation:
    """Values within `window`, which the validation policy's `keys` set."""
    return gxe.ExpectColumnValuesToBeBetween(
        column=column,
        min_value=window[0],
        max_value=window[1],
        description=f"within the validation policy's {keys}",
    )


def _rules(table: str, windows: Windows) -> list[gxe.Expectation]:
    """Column-level rules for one table (by label), with the policy's windows."""
    if table == "openclipart/pairs":
        return [
            *_ids("id", "image"),
            *_title("title", windows),
            *_text("group", "source"),
            gxe.ExpectColumnValuesToBeUnique(column="id"),
            gxe.ExpectColumnValuesToMatchRegex(column="id", regex=r"^oc-[0-9a-f]{12}$"),
            gxe.ExpectColumnValuesToMatchRegex(column="source", regex=r"\.svg$"),
            *_required("keywords", "split"),
            gxe.ExpectColumnValuesToBeInSet(column="split", value_set=SPLITS),
            _every_split(),
        ]
    if table == "movielens/items":
        return [
            *_ids("item_id"),
            *_title("title", windows),
            gxe.ExpectColumnValuesToBeUnique(column="item_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="year", mostly=0.99),
            _between(
                "year", windows.year, "earliest_release_year .. current year + release_years_ahead"
            ),
            *_required("genres"),
        ]
    if table == "movielens/users":
        return [
            *_ids("user_id"),
            *_text("occupation"),
            gxe.ExpectColumnValuesToBeUnique(column="user_id"),
            *_required("age", "gender"),
            gxe.ExpectColumnValuesToBeOfType(column="age", type_="int64"),
            _between("age", windows.age, "age_range"),
            gxe.ExpectColumnValuesToBeInSet(column="gender", value_set=["M", "F"]),
            gxe.ExpectColumnValuesToBeInSet(column="occupation", value_set=OCCUPATIONS),
        ]
    if table == "movielens/interactions":
        return [
            *_ids("user_id", "item_id"),
            *_required("rating", "timestamp", "split"),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["user_id", "item_id"]),
            gxe.ExpectColumnValuesToBeOfType(column="rating", type_="int64"),
            _between("rating", windows.rating, "rating_range"),
            gxe.ExpectColumnValuesToBeOfType(column="timestamp", type_="int64"),
            _between(
                "timestamp",
                windows.timestamp,
                "earliest_interaction .. now + future_tolerance_hours",
            ),
            gxe.ExpectColumnValuesToBeInSet(column="split", value_set=SPLITS),
            _every_split(),
        ]
    if table == "movielens/sequences":
        return [
            *_ids("user_id", "validation_item", "test_item"),
            gxe.ExpectColumnValuesToBeUnique(column="user_id"),
            *_required("history"),
        ]
    if table == "tuxpaint/stamps":
        return [
            *_keyed("id", r"^tp-[0-9a-f]{12}$"),
            *_ids("image"),
            *_title("caption", windows),
            *_text("group", "source"),
            _between("fold", (0, 4), "folds (5, fixed by the data set)"),
            *_split(),
        ]
    if table == "asterisk/prompts":
        return [
            *_keyed("id", r"^ak-[0-9a-f]{12}$"),
            *_ids("audio"),
            *_title("transcript", windows),
            *_text("group", "source"),
            _between("seconds", (0, windows.max_audio_seconds), "max_audio_seconds"),
            *_split(),
        ]
    if table == "wesnoth/clips":
        return [
            *_keyed("id", r"^wn-[0-9a-f]{12}$"),
            *_title("caption", windows),
            *_text("description", "unit", "animation", "group", "source"),
            *_required("frames"),
            *_split(),
        ]
    if table == "spoken/spoken":
        return [
            *_keyed("id", r"^sp-[0-9a-f]{12}$"),
            *_ids("audio", "item_id"),
            *_title("text", windows),
            *_text("voice"),
            gxe.ExpectColumnValuesToBeInSet(
                column="dataset", value_set=["openclipart", "tuxpaint", "asterisk"]
            ),
            _between("seconds", (0, windows.max_audio_seconds), "max_audio_seconds"),
            *_split(),
        ]
    raise KeyError(table)


def _keyed(column: str, pattern: str) -> list[gxe.Expectation]:
    """A unique id of the data set's form."""
    return [
        *_ids(column),
        gxe.ExpectColumnValuesToBeUnique(column=column),
        gxe.ExpectColumnValuesToMatchRegex(column=column, regex=pattern),
    ]


def _split() -> list[gxe.Expectation]:
    return [
        *_required("split"),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=SPLITS),
        _every_split(),
    ]


def _columns_of(expectation: gxe.Expectation) -> list[str]:
    """The columns an expectation reads."""
    if column := getattr(expectation, "column", None):
        return [column]
    return list(getattr(expectation, "column_list", None) or [])


def build_suite(
    spec: TableSpec,
    present: list[str],
    derived: list[Derived],
    manifest_rows: int | None,
    windows: Windows,
) -> gx.ExpectationSuite:
    """The suite for one table, given its columns, derived columns, manifest count and windows."""
    derived_names = [d.column for d in derived]
    expectations: list[gxe.Expectation] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[*spec.columns, *derived_names],
            exact_match=True,
            description="schema: exactly the documented columns (plus the derived checks)",
        ),
        *(gxe.ExpectColumnToExist(column=column) for column in spec.columns),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
    ]
    if manifest_rows is not None:
        expectations.append(
            gxe.ExpectTableRowCountToEqual(
                value=manifest_rows, description="row count recorded in manifest.json"
            )
        )
    expectations += [
        rule for rule in _rules(spec.label, windows) if all(c in present for c in _columns_of(rule))
    ]
    expectations += [
        gxe.ExpectColumnValuesToBeInSet(
            column=d.column,
            value_set=[True],
            description=d.description,
            meta={"derived_check": True},
        )
        for d in derived
    ]
    return gx.ExpectationSuite(name=spec.gx_name, expectations=expectations)
