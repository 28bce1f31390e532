"""Corruptions of a prepared data root: one kind for each sort of bad data validation must stop.

`corrupt(data_root, kind)` damages the prepared data under `data_root` in place (give it a copy)
and returns a `Corruption`: the files it changed, and the check that must fail, with a text its
failure must mention. The content kinds re-sign the data set's manifest (record the new
fingerprints, as if preparation itself had produced the bad data), so the content check and not the
fingerprint check has to stop them; the tampering kinds (`edited_image`, `edited_table`,
`missing_image`, `unfingerprinted_manifest`) leave the manifest as it was. The audio and clip
kinds (`silent_audio` .. `empty_transcript`) damage the Tux Paint, Asterisk, Wesnoth and spoken
data. Rows are chosen deterministically. The hostile-data suite and
tests/platform/test_validation.py try every kind in `KINDS` against `validate_prepared_data`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from scipy.io import wavfile

from model_code.data import movielens
from model_code.data.asterisk import PROMPTS_SCHEMA
from model_code.data.media_files import ogg_bytes
from model_code.data.openclipart import PAIRS_SCHEMA
from model_code.data.spoken import SPOKEN_SCHEMA
from model_code.data.storage import MANIFEST_NAME, fingerprint_files
from model_code.data.tuxpaint import STAMPS_SCHEMA
from model_code.data.wesnoth import CLIPS_SCHEMA
from model_code.media import decode_audio

SCHEMAS = {
    "openclipart/pairs": PAIRS_SCHEMA,
    "tuxpaint/stamps": STAMPS_SCHEMA,
    "asterisk/prompts": PROMPTS_SCHEMA,
    "wesnoth/clips": CLIPS_SCHEMA,
    "spoken/spoken": SPOKEN_SCHEMA,
} | {f"movielens/{name}": schema for name, schema in movielens.TABLES.items()}
# The media columns of each table: the files its manifest fingerprints beside the tables.
MEDIA_COLUMNS = {
    "openclipart/pairs": ("image",),
    "tuxpaint/stamps": ("image", "sound", "speech"),
    "asterisk/prompts": ("audio",),
    "wesnoth/clips": ("frames",),
    "spoken/spoken": ("audio",),
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
    """Record the current fingerprints of the data set's tables (and the media files they
    reference) in its manifest, as preparation does; returns the manifest's path under the root."""
    folder = data_root / dataset
    names = [path.name for path in folder.glob("*.parquet")]
    names += [name for name in _media_files(data_root, dataset) if (folder / name).is_file()]
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["files"] = fingerprint_files(folder, names)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return f"{dataset}/{MANIFEST_NAME}"


def _media_files(data_root: Path, dataset: str) -> list[str]:
    """Every media file the data set's tables name, relative to its folder."""
    names = []
    for table, columns in MEDIA_COLUMNS.items():
        path = data_root / f"{table}.parquet"
        if table.startswith(f"{dataset}/") and path.is_file():
            for column in columns:
                for value in pd.read_parquet(path, columns=[column])[column].dropna():
                    names += [value] if isinstance(value, str) else list(value)
    return names


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


# Audio and clips


def _row(root: Path, table: str, column: str, skip: int = 0) -> pd.Series:
    """The `skip`-th row by id of a table among those with a value in `column`."""
    frame = _read(root, table)
    return frame[frame[column].notna()].sort_values("id").iloc[skip]


def _rewrite_audio(root: Path, dataset: str, name: str, make) -> str:
    """Replace a prepared recording (WAV, or OGG for synthesized speech) by
    make(waveform, rate) -> (int16 samples, rate); its path under the root."""
    path = root / dataset / name
    waveform, rate = decode_audio(path.read_bytes(), str(path), any_rate=True)
    samples, rate = make(waveform, rate)
    if path.suffix == ".ogg":
        path.write_bytes(ogg_bytes(samples, rate))
    else:
        wavfile.write(path, rate, samples)
    return f"{dataset}/{name}"


@_kind
def silent_audio(root: Path) -> Corruption:
    """A stamp's sound effect replaced by its length of silence."""
    stamp = _row(root, "tuxpaint/stamps", "sound")
    path = _rewrite_audio(
        root, "tuxpaint", stamp["sound"], lambda w, r: (np.zeros_like(w, np.int16), r)
    )
    check, column = _derived("sound_not_silent")
    return _content(root, "tuxpaint/stamps", column, check, stamp["id"], path)


@_kind
def clipped_audio(root: Path) -> Corruption:
    """A prompt's recording overdriven 50 times: most samples at full scale."""
    prompt = _row(root, "asterisk/prompts", "audio")

    def overdriven(waveform, rate):
        return (np.clip(waveform * 50, -1, 1) * 32767).astype(np.int16), rate

    path = _rewrite_audio(root, "asterisk", prompt["audio"], overdriven)
    check, column = _derived("audio_not_clipped")
    return _content(root, "asterisk/prompts", column, check, prompt["id"], path)


@_kind
def odd_sample_rate(root: Path) -> Corruption:
    """A prompt's recording relabelled 7,999 Hz, a rate the server refuses."""
    prompt = _row(root, "asterisk/prompts", "audio", skip=1)
    relabelled = lambda w, r: ((w * 32767).astype(np.int16), 7999)  # noqa: E731
    path = _rewrite_audio(root, "asterisk", prompt["audio"], relabelled)
    check, column = _derived("audio_rate_supported")
    return _content(root, "asterisk/prompts", column, check, prompt["id"], path)


@_kind
def overlong_audio(root: Path) -> Corruption:
    """A spoken caption looped past the policy's longest recording (300 s)."""
    utterance = _row(root, "spoken/spoken", "audio")

    def looped(waveform, rate):
        repeats = int(301 * rate // len(waveform)) + 1
        return (np.tile(waveform, repeats) * 32767).astype(np.int16), rate

    path = _rewrite_audio(root, "spoken", utterance["audio"], looped)
    check, column = _derived("audio_not_too_long")
    return _content(root, "spoken/spoken", column, check, utterance["id"], path)


@_kind
def undecodable_audio(root: Path) -> Corruption:
    """A stamp's spoken caption replaced by bytes that are no audio at all."""
    stamp = _row(root, "tuxpaint/stamps", "speech")
    (root / "tuxpaint" / stamp["speech"]).write_bytes(b"OggS" + bytes(range(256)) * 4)
    check, column = _derived("speech_decodes")
    path = f"tuxpaint/{stamp['speech']}"
    return _content(root, "tuxpaint/stamps", column, check, stamp["id"], path)


@_kind
def frame_of_another_size(root: Path) -> Corruption:
    """One frame of a clip scaled to half its size."""
    clip = _row(root, "wesnoth/clips", "frames")
    frame = root / "wesnoth" / clip["frames"][1]
    with Image.open(frame) as image:
        image.resize((max(1, image.width // 2), max(1, image.height // 2))).save(frame)
    check, column = _derived("frames_one_size")
    return _content(
        root, "wesnoth/clips", column, check, clip["id"], f"wesnoth/{clip['frames'][1]}"
    )


@_kind
def missing_frame(root: Path) -> Corruption:
    """One frame of a clip missing, as a half-written preparation would leave it."""
    clip = _row(root, "wesnoth/clips", "frames", skip=1)
    (root / "wesnoth" / clip["frames"][2]).unlink()
    check, column = _derived("frames_present")
    return _content(
        root, "wesnoth/clips", column, check, clip["id"], f"wesnoth/{clip['frames'][2]}"
    )


@_kind
def empty_transcript(root: Path) -> Corruption:
    """A prompt's transcript emptied (its recording kept)."""
    prompts = _read(root, "asterisk/prompts")
    row = prompts.sort_values("id").index[2]
    prompts.loc[row, "transcript"] = ""
    table = _write(root, "asterisk/prompts", prompts)
    check = "expect_column_value_lengths_to_be_between"
    return _content(root, "asterisk/prompts", "transcript", check, prompts.loc[row, "id"], table)


def _tampered(dataset: str, name: str) -> Corruption:
    """A file changed after preparation: only the manifest's fingerprints can tell."""
    return Corruption(
        (f"{dataset}/{name}",), f"{dataset}/manifest", "files_match_manifest", None, name, False
    )


def _damaged_file(table: str, check: str) -> Corruption:
    """A table file damaged or removed (the manifest's fingerprints catch it too)."""
    path = f"{table}.parquet"
    return Corruption((path,), table, check, None, path.split("/")[1], resigned=False)
