"""Corruptions of a prepared data root: one kind for each sort of bad data validation must stop.

`corrupt(data_root, kind)` damages the prepared data under `data_root` in place (give it a copy)
and returns a `Corruption`: the files it changed, and the check that must fail, with a text its
failure must mention. The content kinds re-sign the data set's manifest (record the new
fingerprints, as if preparation itself had produced the bad data), so the content check and not the
fingerprint check has to stop them; the tampering kinds (`edited_image`, `edited_table`,
`missing_image`, `unfingerprinted_manifest`) leave the manifest as it was. Rows are chosen
deterministically. The hostile-data suite and tests/platform/test_validation.py try every kind in
`KINDS` against `validate_prepared_data`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from model_code.data import movielens
from model_code.data.openclipart import PAIRS_SCHEMA
from model_code.data.storage import MANIFEST_NAME, fingerprint_files

SCHEMAS = {"openclipart/pairs": PAIRS_SCHEMA} | {
    f"movielens/{name}": schema for name, schema in movielens.TABLES.items()
}
NON_UTF8_TITLE = b"Caf\xe9 au lait"  # Latin-1, as a mis-decoded source would leave it
LONG_TITLE_CHARS = 5000  # over the policy's max_title_chars (2048)


@dataclass(frozen=True)
class Corruption:
    """What one corruption changed, and where validation must report it."""

    changed: tuple[str, ...]  # paths relative to the data root: written, renamed or removed
    table: str  # `<data set>/<table>` or `<data set>/manifest`, as the report names it
    check: str  # the expectation or file check that must fail
    column: str | None
    mentions: str  # text the failure's detail contains (a row's key, a file's name)
    resigned: bool  # the manifest records the corrupted files' fingerprints


KINDS: dict[str, Callable[[Path], Corruption]] = {}


def corrupt(data_root: Path, kind: str) -> Corruption:
    """Apply corruption `kind` (a key of `KINDS`) to the prepared data under `data_root`."""
    if kind not in KINDS:
        raise ValueError(f"unknown corruption {kind!r}; choose one of {', '.join(KINDS)}")
    return KINDS[kind](Path(data_root))


def resign(data_root: Path, dataset: str) -> str:
    """Record the current fingerprints of the data set's tables (and openclipart's referenced
    images) in its manifest, as preparation does; returns the manifest's path under the root."""
    folder = data_root / dataset
    names = [path.name for path in folder.glob("*.parquet")]
    if (folder / "pairs.parquet").is_file():
        images = pd.read_parquet(folder / "pairs.parquet", columns=["image"])["image"]
        names += [image for image in images if (folder / image).is_file()]
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["files"] = fingerprint_files(folder, names)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return f"{dataset}/{MANIFEST_NAME}"


def _kind(function: Callable[[Path], Corruption]) -> Callable[[Path], Corruption]:
    KINDS[function.__name__] = function
    return function


def _read(root: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(root / f"{table}.parquet")


def _write(root: Path, table: str, frame: pd.DataFrame) -> str:
    """Write `frame` as the table, with its prepared schema; its path under the root."""
    arrow = pa.Table.from_pandas(frame, schema=SCHEMAS[table], preserve_index=False)
    pq.write_table(arrow, root / f"{table}.parquet")
    return f"{table}.parquet"


def _content(root: Path, table: str, column: str | None, check: str, mentions: str, *paths: str):
    """A content corruption of `paths`, with the data set's manifest re-signed."""
    manifest = resign(root, paths[0].split("/")[0])
    return Corruption((*paths, manifest), table, check, column, mentions, resigned=True)


def _pair(root: Path, split: str = "train", skip: int = 0) -> pd.Series:
    """A pair of `split` (the `skip`-th by id)."""
    pairs = _read(root, "openclipart/pairs")
    return pairs[pairs["split"] == split].sort_values("id").iloc[skip]


def _derived(column: str) -> tuple[str, str]:
    return "expect_column_values_to_be_in_set", column


# Whitespace and line breaks in ids


@_kind
def whitespace_item_id(root: Path) -> Corruption:
    """An item id gains a trailing line break, in items and its interactions (all train
    negatives, so no sequence names it)."""
    inter = _read(root, "movielens/interactions")
    held_out_or_positive = (inter["split"] != "train") | (inter["rating"] >= 4)
    item = sorted(set(inter["item_id"]) - set(inter.loc[held_out_or_positive, "item_id"]))[0]
    renamed = f"{item}\n"
    items = _read(root, "movielens/items")
    items.loc[items["item_id"] == item, "item_id"] = renamed
    inter.loc[inter["item_id"] == item, "item_id"] = renamed
    paths = (
        _write(root, "movielens/items", items),
        _write(root, "movielens/interactions", inter),
    )
    check = "expect_column_values_to_not_match_regex"
    return _content(root, "movielens/items", "item_id", check, repr(renamed), *paths)


@_kind
def whitespace_user_id(root: Path) -> Corruption:
    """A user id gains a leading space, in users, interactions and sequences (consistently)."""
    users = _read(root, "movielens/users")
    user = users["user_id"].iloc[0]
    renamed = f" {user}"
    paths = []
    for table in ("users", "interactions", "sequences"):
        frame = _read(root, f"movielens/{table}")
        frame.loc[frame["user_id"] == user, "user_id"] = renamed
        paths.append(_write(root, f"movielens/{table}", frame))
    check = "expect_column_values_to_not_match_regex"
    return _content(root, "movielens/users", "user_id", check, repr(renamed), *paths)


@_kind
def whitespace_image_id(root: Path) -> Corruption:
    """A pair's id and image file gain a space: `oc-... ` and `images/oc-... .png`."""
    pairs = _read(root, "openclipart/pairs")
    row = pairs.sort_values("id").index[0]
    old_image, renamed = pairs.loc[row, "image"], f"{pairs.loc[row, 'id']} "
    new_image = f"images/{renamed}.png"
    (root / "openclipart" / old_image).rename(root / "openclipart" / new_image)
    pairs.loc[row, ["id", "image"]] = [renamed, new_image]
    table = _write(root, "openclipart/pairs", pairs)
    moved = (f"openclipart/{old_image}", f"openclipart/{new_image}")
    check = "expect_column_values_to_not_match_regex"
    return _content(root, "openclipart/pairs", "image", check, repr(renamed), table, *moved)


# Titles


@_kind
def blank_title(root: Path) -> Corruption:
    """A caption of only spaces and a line break (non-empty, so a length check passes it)."""
    pairs = _read(root, "openclipart/pairs")
    row = pairs.sort_values("id").index[1]
    pairs.loc[row, "title"] = "  \n "
    table = _write(root, "openclipart/pairs", pairs)
    check = "expect_column_values_to_match_regex"
    return _content(root, "openclipart/pairs", "title", check, pairs.loc[row, "id"], table)


@_kind
def long_title(root: Path) -> Corruption:
    """A movie title followed by a dump of text, LONG_TITLE_CHARS characters in all."""
    items = _read(root, "movielens/items")
    row = items.index[0]
    title = items.loc[row, "title"]
    items.loc[row, "title"] = (title + " | lorem ipsum" * LONG_TITLE_CHARS)[:LONG_TITLE_CHARS]
    table = _write(root, "movielens/items", items)
    check = "expect_column_value_lengths_to_be_between"
    mentions = f"item_id={items.loc[row, 'item_id']}"
    return _content(root, "movielens/items", "title", check, mentions, table)


@_kind
def non_utf8_title(root: Path) -> Corruption:
    """A caption stored as Latin-1 bytes in a UTF-8 string column."""
    pairs = _read(root, "openclipart/pairs")
    row = pairs.sort_values("id").index[2]
    table = pa.Table.from_pandas(pairs, schema=PAIRS_SCHEMA, preserve_index=False)
    titles = [title.encode() for title in pairs["title"]]
    titles[pairs.index.get_loc(row)] = NON_UTF8_TITLE
    binary = pa.array(titles, type=pa.binary())
    unchecked = pa.Array.from_buffers(pa.string(), len(binary), binary.buffers())  # no validation
    table = table.set_column(table.column_names.index("title"), "title", unchecked)
    pq.write_table(table, root / "openclipart" / "pairs.parquet")
    return _content(
        root,
        "openclipart/pairs",
        "title",
        "text_is_utf8",
        pairs.loc[row, "id"],
        "openclipart/pairs.parquet",
    )


# Splits


@_kind
def empty_split(root: Path) -> Corruption:
    """Every validation pair relabelled train: the validation split has no rows."""
    pairs = _read(root, "openclipart/pairs")
    pairs.loc[pairs["split"] == "validation", "split"] = "train"
    table = _write(root, "openclipart/pairs", pairs)
    check = "expect_column_distinct_values_to_contain_set"
    return _content(root, "openclipart/pairs", "split", check, "validation", table)


@_kind
def group_across_splits(root: Path) -> Corruption:
    """A test pair joins the title group of a train pair."""
    pairs = _read(root, "openclipart/pairs")
    test, train = _pair(root, "test"), _pair(root, "train")
    pairs.loc[pairs["id"] == test["id"], "group"] = train["group"]
    table = _write(root, "openclipart/pairs", pairs)
    check, column = _derived("group_in_one_split")
    return _content(root, "openclipart/pairs", column, check, test["id"], table)


# Images


@_kind
def single_colour_image(root: Path) -> Corruption:
    """A pair's drawing replaced by a 224x224 image of one colour."""
    pair = _pair(root, skip=1)
    Image.new("RGB", (224, 224), (200, 30, 30)).save(root / "openclipart" / pair["image"])
    check, column = _derived("image_not_blank")
    path = f"openclipart/{pair['image']}"
    return _content(root, "openclipart/pairs", column, check, pair["id"], path)


@_kind
def image_across_splits(root: Path) -> Corruption:
    """A test pair's drawing replaced by a train pair's, re-encoded (other bytes, same pixels)."""
    train, test = _pair(root, "train"), _pair(root, "test")
    folder = root / "openclipart"
    with Image.open(folder / train["image"]) as image:
        image.save(folder / test["image"], compress_level=1)
    check, column = _derived("image_in_one_split")
    path = f"openclipart/{test['image']}"
    return _content(root, "openclipart/pairs", column, check, test["id"], path)


@_kind
def truncated_png(root: Path) -> Corruption:
    """A pair's PNG cut in half."""
    pair = _pair(root, skip=2)
    png = root / "openclipart" / pair["image"]
    png.write_bytes(png.read_bytes()[: png.stat().st_size // 2])
    check, column = _derived("image_decodes")
    path = f"openclipart/{pair['image']}"
    return _content(root, "openclipart/pairs", column, check, pair["id"], path)


# Rows of MovieLens


@_kind
def duplicate_item_id(root: Path) -> Corruption:
    """The last item takes the id of the one before it."""
    items = _read(root, "movielens/items")
    items.loc[items.index[-1], "item_id"] = items["item_id"].iloc[-2]
    table = _write(root, "movielens/items", items)
    check = "expect_column_values_to_be_unique"
    mentions = f"item_id={items['item_id'].iloc[-2]}"
    return _content(root, "movielens/items", "item_id", check, mentions, table)


@_kind
def unknown_item(root: Path) -> Corruption:
    """A train negative names an item that does not exist."""
    inter = _read(root, "movielens/interactions")
    row = inter.index[(inter["split"] == "train") & (inter["rating"] < 4)][0]
    inter.loc[row, "item_id"] = "99999"
    table = _write(root, "movielens/interactions", inter)
    check, column = _derived("item_known")
    return _content(root, "movielens/interactions", column, check, "item_id=99999", table)


@_kind
def rating_out_of_range(root: Path) -> Corruption:
    """A train rating of 7 on a 1-5 scale."""
    inter = _read(root, "movielens/interactions")
    row = inter.index[(inter["split"] == "train") & (inter["rating"] == 5)][0]
    inter.loc[row, "rating"] = 7
    table = _write(root, "movielens/interactions", inter)
    check = "expect_column_values_to_be_between"
    return _content(root, "movielens/interactions", "rating", check, "rating=7", table)


@_kind
def renamed_column(root: Path) -> Corruption:
    """users.parquet's `occupation` column renamed `job`."""
    users = _read(root, "movielens/users").rename(columns={"occupation": "job"})
    pq.write_table(
        pa.Table.from_pandas(users, preserve_index=False), root / "movielens/users.parquet"
    )
    table = "movielens/users.parquet"
    check = "expect_column_to_exist"
    return _content(root, "movielens/users", "occupation", check, "column missing", table)


# Files


@_kind
def truncated_parquet(root: Path) -> Corruption:
    """items.parquet cut in half."""
    path = root / "movielens" / "items.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return _damaged_file("movielens/items", "table_readable")


@_kind
def missing_table(root: Path) -> Corruption:
    """sequences.parquet deleted."""
    (root / "movielens" / "sequences.parquet").unlink()
    return _damaged_file("movielens/sequences", "table_exists")


@_kind
def edited_image(root: Path) -> Corruption:
    """One pixel of a drawing changed after preparation (still a valid 224x224 PNG)."""
    pair = _pair(root, skip=3)
    png = root / "openclipart" / pair["image"]
    with Image.open(png) as image:
        edited = image.convert("RGB")
    edited.putpixel((0, 0), tuple(255 - value for value in edited.getpixel((0, 0))))
    edited.save(png)
    return _tampered("openclipart", pair["image"])


@_kind
def edited_table(root: Path) -> Corruption:
    """A user's age changed by one after preparation (still inside the policy's window)."""
    users = _read(root, "movielens/users")
    users.loc[users.index[0], "age"] += 1
    _write(root, "movielens/users", users)
    return _tampered("movielens", "users.parquet")


@_kind
def missing_image(root: Path) -> Corruption:
    """A drawing's PNG deleted after preparation."""
    pair = _pair(root, skip=4)
    (root / "openclipart" / pair["image"]).unlink()
    return _tampered("openclipart", pair["image"])


@_kind
def unfingerprinted_manifest(root: Path) -> Corruption:
    """openclipart's manifest without its `files` fingerprints."""
    path = root / "openclipart" / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    del manifest["files"]
    path.write_text(json.dumps(manifest))
    return replace(_tampered("openclipart", MANIFEST_NAME), mentions="no file fingerprints")


def _tampered(dataset: str, name: str) -> Corruption:
    """A file changed after preparation: only the manifest's fingerprints can tell."""
    return Corruption(
        (f"{dataset}/{name}",), f"{dataset}/manifest", "files_match_manifest", None, name, False
    )


def _damaged_file(table: str, check: str) -> Corruption:
    """A table file damaged or removed (the manifest's fingerprints catch it too)."""
    path = f"{table}.parquet"
    return Corruption((path,), table, check, None, path.split("/")[1], resigned=False)
