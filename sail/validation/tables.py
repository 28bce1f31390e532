"""The prepared tables: where each lives, its columns, and reading it without crashing.

A missing data set folder, a missing table or a file that is not readable Parquet becomes a failed
`table_exists` / `table_readable` check instead of an exception; likewise `manifest_readable` for a
data set's `manifest.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sail.validation.report import CheckOutcome


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
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ... for damaged files
        detail = f"{path} cannot be read as Parquet: {type(error).__name__}: {error}"
        outcomes.append(CheckOutcome(spec.label, "table_readable", None, False, detail))
        return None
    outcomes.append(
        CheckOutcome(spec.label, "table_readable", None, True, f"{len(frame)} rows read")
    )
    return frame


def _folder_hint(folder: Path) -> str:
    """Extra words when the whole data set folder is absent."""
    if folder.is_dir():
        return ""
    return f" (the data set folder {folder} does not exist; run `sail data prepare`)"
