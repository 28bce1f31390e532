"""The prepared tables: where each lives, its columns, and reading it without crashing.

A missing data set folder, a missing table or a file that is not readable Parquet becomes a failed
`table_exists` / `table_readable` check instead of an exception; likewise `manifest_readable` for a
data set's `manifest.json`. Text that is not valid UTF-8 fails `text_is_utf8` (one check per
column, naming the rows) and is read with U+FFFD in place of the bad bytes, so the table is still
validated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from sail.validation.report import CheckOutcome
from sail.validation.results import EXAMPLES, visible_value
from sail.validation.utf8 import invalid_utf8_rows, repaired


@dataclass(frozen=True)
class TableSpec:
    """One prepared Parquet table."""

    dataset: str  # folder under the data root
    name: str  # file stem
    columns: tuple[str, ...]
    keys: tuple[str, ...]  # columns that name a row in failure examples
    manifest_rows: tuple[str, ...]  # path to the table's row count in manifest.json

    @property
    def label(self) -> str:
        """`<data set>/<table>`, as reports name it."""
        return f"{self.dataset}/{self.name}"

    @property
    def gx_name(self) -> str:
        """Name of the table's suite, asset and checkpoint (no `/`: data docs use it in paths)."""
        return f"{self.dataset}_{self.name}"


TABLES = (
    TableSpec(
        "openclipart",
        "pairs",
        ("id", "title", "keywords", "image", "group", "split", "source"),
        ("id",),
        ("rows", "total"),
    ),
    TableSpec(
        "movielens", "items", ("item_id", "title", "year", "genres"), ("item_id",), ("items",)
    ),
    TableSpec(
        "movielens", "users", ("user_id", "age", "gender", "occupation"), ("user_id",), ("users",)
    ),
    TableSpec(
        "movielens",
        "interactions",
        ("user_id", "item_id", "rating", "timestamp", "split"),
        ("user_id", "item_id"),
        ("interactions", "total"),
    ),
    TableSpec(
        "movielens",
        "sequences",
        ("user_id", "history", "validation_item", "test_item"),
        ("user_id",),
        ("users_with_sequences",),
    ),
    TableSpec(
        "tuxpaint",
        "stamps",
        ("id", "caption", "image", "sound", "speech", "group", "split", "fold", "source"),
        ("id",),
        ("rows", "total"),
    ),
    TableSpec(
        "asterisk",
        "prompts",
        ("id", "transcript", "audio", "seconds", "group", "split", "source"),
        ("id",),
        ("rows", "total"),
    ),
    TableSpec(
        "wesnoth",
        "clips",
        ("id", "caption", "description", "unit", "race", "animation", "attack", "frames")
        + ("group", "split", "source"),
        ("id",),
        ("rows", "total"),
    ),
    TableSpec(
        "spoken",
        "spoken",
        ("id", "text", "voice", "audio", "seconds", "dataset", "item_id", "split"),
        ("id",),
        ("rows", "total"),
    ),
)
DATASETS = tuple(dict.fromkeys(spec.dataset for spec in TABLES))


@dataclass
class LoadedData:
    """The tables and manifests that could be read, and the file checks' outcomes."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)  # by table label
    manifests: dict[str, dict] = field(default_factory=dict)  # by data set
    outcomes: list[CheckOutcome] = field(default_factory=list)


def load_tables(data_root: Path) -> LoadedData:
    """Read every manifest and table under `data_root`, recording each file check."""
    loaded = LoadedData()
    for dataset in DATASETS:
        manifest = _read_manifest(data_root / dataset, loaded.outcomes)
        if manifest is not None:
            loaded.manifests[dataset] = manifest
    for spec in TABLES:
        frame = _read_table(data_root, spec, loaded.outcomes)
        if frame is not None:
            loaded.frames[spec.label] = frame
    return loaded


def manifest_row_count(spec: TableSpec, manifest: dict | None) -> int | None:
    """The row count the data set's manifest records for this table (None if it records none)."""
    value = manifest
    for key in spec.manifest_rows:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, int) else None


def _read_manifest(folder: Path, outcomes: list[CheckOutcome]) -> dict | None:
    """The data set's manifest.json, or None (with a failed `manifest_readable`) if unusable."""
    path = folder / "manifest.json"
    label = f"{folder.name}/manifest"
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict):
            raise ValueError("it is not a JSON object")
    except FileNotFoundError:
        detail = f"{path} is missing{_folder_hint(folder)}"
    except (OSError, ValueError) as error:
        detail = f"{path} cannot be read as JSON: {error}"
    else:
        outcomes.append(CheckOutcome(label, "manifest_readable", None, True, str(path)))
        return manifest
    outcomes.append(CheckOutcome(label, "manifest_readable", None, False, detail))
    return None


def _read_table(
    data_root: Path, spec: TableSpec, outcomes: list[CheckOutcome]
) -> pd.DataFrame | None:
    """The table as a DataFrame, or None (with a failed `table_exists`/`table_readable`)."""
    folder = data_root / spec.dataset
    path = folder / f"{spec.name}.parquet"
    if not path.is_file():
        detail = f"{path} is missing{_folder_hint(folder)}"
        outcomes.append(CheckOutcome(spec.label, "table_exists", None, False, detail))
        return None
    outcomes.append(CheckOutcome(spec.label, "table_exists", None, True, str(path)))
    try:
        table = pq.read_table(path)
        invalid = invalid_utf8_rows(table)
        frame = repaired(table, invalid).to_pandas()
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ... for damaged files
        detail = f"{path} cannot be read as Parquet: {type(error).__name__}: {error}"
        outcomes.append(CheckOutcome(spec.label, "table_readable", None, False, detail))
        return None
    outcomes.append(
        CheckOutcome(spec.label, "table_readable", None, True, f"{len(frame)} rows read")
    )
    outcomes += _utf8_outcomes(spec, frame, invalid)
    return frame


def _utf8_outcomes(
    spec: TableSpec, frame: pd.DataFrame, invalid: dict[str, list[int]]
) -> list[CheckOutcome]:
    """One failed `text_is_utf8` per column with bad bytes, or one passed check for the table."""
    if not invalid:
        return [CheckOutcome(spec.label, "text_is_utf8", None, True, "every text value is UTF-8")]
    keys = [key for key in spec.keys if key in frame.columns]
    return [
        CheckOutcome(
            spec.label,
            "text_is_utf8",
            column,
            False,
            f"{len(rows)} of {len(frame)} values are not valid UTF-8 (read with U+FFFD), "
            f"e.g. {_rows_named(frame, rows, keys)}",
        )
        for column, rows in invalid.items()
    ]


def _rows_named(frame: pd.DataFrame, rows: list[int], keys: list[str]) -> str:
    """The first few rows by their key columns (by row number when the table has none)."""
    shown = rows[:EXAMPLES]
    named = [
        "(" + ", ".join(f"{key}={visible_value(frame[key].iloc[row])}" for key in keys) + ")"
        if keys
        else f"row {row}"
        for row in shown
    ]
    return ", ".join(named) + (" ..." if len(rows) > len(shown) else "")


def _folder_hint(folder: Path) -> str:
    """Extra words when the whole data set folder is absent."""
    if folder.is_dir():
        return ""
    return f" (the data set folder {folder} does not exist; run `sail data prepare`)"
