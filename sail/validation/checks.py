"""Derived boolean columns for the checks that are not local to one column value.

Image decodability, blankness and leakage across splits, audio decodability, rate, level,
clipping and length, clip frames (present, one size), list-valued membership, referential
integrity across tables and the held-out time order are computed here in pandas, one boolean per
row; the suites then expect each derived
column to be True (`expect_column_values_to_be_in_set` with `{True}`), so failures still name the
offending rows by their key columns. A derived column is left out when the columns or tables it
needs are missing (the schema and file checks report that); one whose computation raises (say, a
column of the wrong type) is reported as a failed `derived_column_computed` check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from model_code.data.storage import pixel_digest
from model_code.media import SAMPLE_RATES, MediaError, decode_audio
from sail.validation.policy import Windows

IMAGE_SIZE = (224, 224)
POSITIVE_RATING = 4
MOVIELENS_GENRES = frozenset(
    ["Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama"]
    + ["Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller"]
    + ["War", "Western"]
)
Frames = dict[str, pd.DataFrame]


@dataclass(frozen=True)
class Derived:
    """A derived boolean column and what True means."""

    column: str
    description: str
    values: pd.Series


@dataclass(frozen=True)
class _Rule:
    """A derived column still to compute."""

    column: str
    description: str
    compute: Callable[[], pd.Series]


def derived_columns(
    label: str, frames: Frames, dataset_root: Path, windows: Windows
) -> tuple[list[Derived], list[tuple[str, str]]]:
    """The derived columns of table `label` (`<data set>/<table>`) given every table read.

    Also returns `(column, error)` for each derived column whose computation raised.
    """
    builder = _BUILDERS.get(label)
    derived, errors = [], []
    for rule in builder(frames, dataset_root, windows) if builder else ():
        try:
            values = pd.Series(rule.compute(), dtype=bool)
        except Exception as error:  # bad types in a damaged table raise anything
            errors.append((rule.column, f"{type(error).__name__}: {error}"))
        else:
            derived.append(Derived(rule.column, rule.description, values))
    return derived, errors


def _has(frame: pd.DataFrame | None, *columns: str) -> bool:
    return frame is not None and all(column in frame.columns for column in columns)


def _is_string_list(value: object, allowed: frozenset[str] | None = None) -> bool:
    """A list (or array) of non-empty strings, each in `allowed` when given."""
    if not isinstance(value, list | tuple | np.ndarray):
        return False
    return all(isinstance(v, str) and v and (allowed is None or v in allowed) for v in value)


IMAGE_FACTS = ["decodes", "shaped", "std", "pixels"]


def _image_facts(path: Path) -> tuple[bool, bool, float, str | None]:
    """What one full decoding of the PNG tells: (decodes, is 224x224 RGB, pixel standard
    deviation (the largest over R, G, B), digest of the RGB pixels); NaN and None if it does not
    decode."""
    try:
        with Image.open(path) as image:
            image.load()
            shaped = image.size == IMAGE_SIZE and image.mode == "RGB"
            rgb = image.convert("RGB")
            digest = pixel_digest(rgb)
    except Exception:  # missing file, truncated or garbled bytes, not an image at all
        return False, False, float("nan"), None
    pixels = np.asarray(rgb)
    std = float(pixels.reshape(-1, 3).std(axis=0).max())
    return True, shaped, std, digest


AUDIO_FACTS = ["decodes", "rate", "seconds", "rms", "clipped"]
CLIPPED_LEVEL = 0.999  # a sample at or above it sits at full scale


def _audio_facts(path: Path | None) -> tuple[bool, float, float, float, float]:
    """What one decoding of a prepared WAV tells: (decodes, sample rate, seconds, RMS level,
    fraction of samples at full scale); NaN where it does not decode."""
    try:
        waveform, rate = decode_audio(Path(path).read_bytes(), str(path), any_rate=True)
    except (OSError, MediaError, TypeError):
        return False, *([float("nan")] * 4)
    rms = float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64))))
    clipped = float(np.mean(np.abs(waveform) >= CLIPPED_LEVEL))
    return True, float(rate), waveform.size / rate, rms, clipped


def _audio(table: pd.DataFrame, column: str, root: Path, windows: Windows) -> Iterator[_Rule]:
    """Checks of an audio column (a prepared WAV per row; a row without one is not judged)."""
    present = table[column].notna()

    @cache
    def facts() -> pd.DataFrame:
        rows = [
            _audio_facts(root / str(path) if ok else None)
            for path, ok in zip(table[column], present, strict=True)
        ]
        return pd.DataFrame(rows, index=table.index, columns=AUDIO_FACTS)

    def judged(holds: Callable[[pd.DataFrame], pd.Series]) -> Callable[[], pd.Series]:
        return lambda: ~present | (facts()["decodes"] & holds(facts()))

    yield _Rule(f"{column}_decodes", "the WAV exists and decodes", judged(lambda f: f["decodes"]))
    yield _Rule(
        f"{column}_rate_supported",
        f"the sample rate is one the server takes ({', '.join(map(str, SAMPLE_RATES))} Hz)",
        judged(lambda f: f["rate"].isin(SAMPLE_RATES)),
    )
    yield _Rule(
        f"{column}_not_silent",
        f"RMS level >= the validation policy's min_audio_rms ({windows.min_audio_rms})",
        judged(lambda f: f["rms"] >= windows.min_audio_rms),
    )
    yield _Rule(
        f"{column}_not_clipped",
        f"at most the validation policy's max_clipped_fraction ({windows.max_clipped_fraction}) "
        f"of samples at full scale",
        judged(lambda f: f["clipped"] <= windows.max_clipped_fraction),
    )
    yield _Rule(
        f"{column}_not_too_long",
        f"at most the validation policy's max_audio_seconds ({windows.max_audio_seconds} s)",
        judged(lambda f: f["seconds"] <= windows.max_audio_seconds),
    )


def _images(table: pd.DataFrame, root: Path, windows: Windows) -> Iterator[_Rule]:
    """Checks of an `image` column of 224x224 RGB PNGs: decodes, shape, not blank, one split."""

    @cache
    def facts() -> pd.DataFrame:  # one decoding pass for every image column
        rows = [_image_facts(root / str(image)) for image in table["image"]]
        return pd.DataFrame(rows, index=table.index, columns=IMAGE_FACTS)

    yield _Rule("image_decodes", "the PNG exists and decodes with PIL", lambda: facts()["decodes"])
    yield _Rule("image_is_224_rgb", "the image is 224x224 RGB", lambda: facts()["shaped"])
    yield _Rule(
        "image_not_blank",
        "the image is not blank or one colour: pixel std >= the validation policy's "
        f"min_image_std ({windows.min_image_std}); one that does not decode is not judged",
        lambda: ~(facts()["std"] < windows.min_image_std),
    )
    if _has(table, "split"):
        yield _Rule(
            "image_in_one_split",
            "no image's pixels occur in two splits (leakage)",
            lambda: in_one_split(facts()["pixels"], table["split"]),
        )


def _grouped(table: pd.DataFrame, text: str) -> Iterator[_Rule]:
    """No group, and no text (case-insensitive), in two splits."""
    if _has(table, "group", "split"):
        yield _Rule(
            "group_in_one_split",
            "no group spans two splits",
            lambda: table.groupby("group", dropna=False)["split"].transform("nunique") <= 1,
        )
    if _has(table, text, "split"):
        yield _Rule(
            f"{text}_in_one_split",
            f"no {text} (ignoring case) occurs in two splits",
            lambda: in_one_split(table[text].astype(str).str.lower(), table["split"]),
        )


def in_one_split(key: pd.Series, split: pd.Series) -> pd.Series:
    """False where a non-null `key` value occurs in more than one split."""
    return ~(split.groupby(key, dropna=True).transform("nunique") > 1)


def _pairs(frames: Frames, root: Path, windows: Windows) -> Iterator[_Rule]:
    pairs = frames["openclipart/pairs"]
    if _has(pairs, "id", "image"):
        expected = "images/" + pairs["id"].astype(str) + ".png"
        yield _Rule(
            "image_matches_id", "image is images/<id>.png", lambda: pairs["image"] == expected
        )
    if _has(pairs, "image"):
        yield from _images(pairs, root, windows)
    if _has(pairs, "keywords"):
        yield _Rule(
            "keywords_are_strings",
            "keywords is a list of strings",
            lambda: pairs["keywords"].map(_is_string_list),
        )
    if _has(pairs, "group", "split"):
        yield _Rule(
            "group_in_one_split",
            "no title group spans two splits",
            lambda: pairs.groupby("group", dropna=False)["split"].transform("nunique") <= 1,
        )


def _items(frames: Frames, root: Path, windows: Windows) -> Iterator[_Rule]:
    items = frames["movielens/items"]
    if _has(items, "genres"):
        yield _Rule(
            "genres_known",
            "genres lists only the 18 MovieLens genres",
            lambda: items["genres"].map(lambda g: _is_string_list(g, MOVIELENS_GENRES)),
        )


def _known(frame: pd.DataFrame, column: str, frames: Frames, table: str, key: str) -> _Rule | None:
    """`<column>_known`: frame[column] occurs in `table`[key] (None when either is missing)."""
    other = frames.get(f"movielens/{table}")
    if not (_has(frame, column) and _has(other, key)):
        return None
    return _Rule(
        f"{column.removesuffix('_id')}_known",
        f"{column} is in {table}",
        lambda: frame[column].isin(set(other[key])),
    )


def _interactions(frames: Frames, root: Path, windows: Windows) -> Iterator[_Rule]:
    inter = frames["movielens/interactions"]
    yield from filter(
        None,
        [
            _known(inter, "user_id", frames, "users", "user_id"),
            _known(inter, "item_id", frames, "items", "item_id"),
        ],
    )
    if _has(inter, "split", "rating"):
        yield _Rule(
            "heldout_is_positive",
            "held-out rows have rating >= 4",
            lambda: (inter["split"] == "train") | (inter["rating"] >= POSITIVE_RATING),
        )
    if _has(inter, "user_id", "split"):
        yield _Rule(
            "heldout_once_per_user",
            "at most one validation and one test row per user",
            lambda: (
                (inter["split"] == "train")
                | (
                    inter.groupby(["user_id", "split"], dropna=False)["split"].transform("size")
                    == 1
                )
            ),
        )
    if _has(inter, "user_id", "item_id", "timestamp", "split", "rating"):
        yield _Rule(
            "heldout_in_time_order",
            "a user's validation row comes after every train positive and the test row after "
            "the validation row, on (timestamp, numeric item id)",
            lambda: heldout_in_time_order(inter),
        )


def heldout_in_time_order(inter: pd.DataFrame) -> pd.Series:
    """True for train rows; for held-out rows, later than what must precede them.

    "Later" is strict on (timestamp, numeric item id), the order the leave-last-out split used: a
    validation row must follow every train positive of its user, a test row must also follow the
    user's validation row. On the timestamp alone this is non-strict (ties are common).
    """
    frame = pd.DataFrame(
        {
            "user": inter["user_id"],
            "time": pd.to_numeric(inter["timestamp"], errors="coerce"),
            "item": pd.to_numeric(inter["item_id"], errors="coerce"),
        }
    )
    train_positive = (inter["split"] == "train") & (inter["rating"] >= POSITIVE_RATING)
    ok = pd.Series(True, index=inter.index)
    before = frame[train_positive]
    for split in ("validation", "test"):
        rows = frame[inter["split"] == split]
        ok[rows.index] = _after(rows, _last_by_user(before))
        before = pd.concat([before, rows])
    return ok


def _last_by_user(frame: pd.DataFrame) -> pd.DataFrame:
    """Each user's latest row on (time, item), indexed by user."""
    ordered = frame.sort_values(["time", "item"]).reset_index(drop=True)
    return ordered.groupby("user", dropna=False).tail(1).set_index("user")[["time", "item"]]


def _after(rows: pd.DataFrame, before: pd.DataFrame) -> pd.Series:
    """Whether each row is strictly later on (time, item) than its user's row in `before`."""
    ref = before.reindex(rows["user"].to_numpy())
    time, item = rows["time"].to_numpy(float), rows["item"].to_numpy(float)
    ref_time, ref_item = ref["time"].to_numpy(float), ref["item"].to_numpy(float)
    later = (time > ref_time) | ((time == ref_time) & (item > ref_item))
    return pd.Series(later | np.isnan(ref_time), index=rows.index)


def _sequences(frames: Frames, root: Path, windows: Windows) -> Iterator[_Rule]:
    seq = frames["movielens/sequences"]
    items, inter = frames.get("movielens/items"), frames.get("movielens/interactions")
    if rule := _known(seq, "user_id", frames, "users", "user_id"):
        yield rule
    if _has(seq, "history"):
        yield _Rule(
            "history_not_empty",
            "history is a non-empty list of ids",
            lambda: seq["history"].map(lambda h: _is_string_list(h) and len(h) > 0),
        )
    if _has(seq, "history") and _has(items, "item_id"):
        known = frozenset(items["item_id"])
        yield _Rule(
            "history_known",
            "every history item is in items",
            lambda: seq["history"].map(lambda h: _is_string_list(h, known)),
        )
    for split in ("validation", "test"):
        if rule := _known(seq, f"{split}_item", frames, "items", "item_id"):
            yield rule
        if _has(seq, "user_id", f"{split}_item") and _has(inter, "user_id", "item_id", "split"):
            yield _Rule(
                f"{split}_item_held_out",
                f"{split}_item is the user's {split} row in interactions",
                lambda split=split: _held_out_matches(seq, inter, split),
            )


def _held_out_matches(seq: pd.DataFrame, inter: pd.DataFrame, split: str) -> pd.Series:
    """Whether each sequence's `<split>_item` is its user's `<split>` row in interactions."""
    held = inter[inter["split"] == split].drop_duplicates("user_id").set_index("user_id")
    return seq["user_id"].map(held["item_id"]) == seq[f"{split}_item"]


def _stamps(frames: Frames, root: Path, windows: Windows) -> Iterator[_Rule]:
    stamps = frames["tuxpaint/stamps"]
    if _has(stamps, "image"):
        yield from _images(stamps, root, windows)
    for column in ("sound", "speech"):
        if _has(stamps, column):
            yield from _audio(stamps, column, root, windows)
    yield from _grouped(stamps, "caption")


def _prompts(frames: Frames, root: Path, windows: Windows) -> Iterator[_Rule]:
    prompts = frames["asterisk/prompts"]
    if _has(prompts, "audio"):
        yield from _audio(prompts, "audio", root, windows)
    yield from _grouped(prompts, "transcript")


FRAME_FACTS = ["present", "sizes"]


def _clips(frames: Frames, root: Path, windows: Windows) -> Iterator[_Rule]:
    clips = frames["wesnoth/clips"]
    if _has(clips, "frames"):

        @cache
        def facts() -> pd.DataFrame:
            rows = [_frame_facts(root, paths) for paths in clips["frames"]]
            return pd.DataFrame(rows, index=clips.index, columns=FRAME_FACTS)

        yield _Rule(
            "frames_listed",
            "frames is a list of 4 to 8 paths",
            lambda: clips["frames"].map(lambda f: _is_string_list(f) and 4 <= len(f) <= 8),
        )
        yield _Rule("frames_present", "every frame exists and decodes", lambda: facts()["present"])
        yield _Rule(
            "frames_one_size",
            "every frame of a clip has the same size",
            lambda: facts()["sizes"] == 1,
        )
    yield from _grouped(clips, "caption")


def _frame_facts(root: Path, paths: object) -> tuple[bool, int]:
    """(every frame decodes, how many distinct sizes the frames have)."""
    if not _is_string_list(paths):
        return False, 0
    sizes = set()
    for path in paths:
        try:
            with Image.open(root / path) as frame:
                frame.load()
                sizes.add(frame.size)
        except Exception:  # missing file, truncated or garbled bytes
            return False, len(sizes)
    return True, len(sizes)


def _spoken(frames: Frames, root: Path, windows: Windows) -> Iterator[_Rule]:
    from model_code.data.spoken import HELD_OUT_VOICE, TRAINING_VOICES

    spoken = frames["spoken/spoken"]
    if _has(spoken, "audio"):
        yield from _audio(spoken, "audio", root, windows)
    if _has(spoken, "voice", "split"):
        training = {voice.label for voice in TRAINING_VOICES}
        yield _Rule(
            "voice_fits_split",
            f"train is read by training voices only, validation and test by the held-out voice "
            f"({HELD_OUT_VOICE.label}) only",
            lambda: (spoken["split"] == "train") == spoken["voice"].isin(training),
        )
    if _has(spoken, "text", "split"):
        yield _Rule(
            "text_in_one_split",
            "no text (ignoring case) is read in two splits",
            lambda: in_one_split(spoken["text"].astype(str).str.lower(), spoken["split"]),
        )


_BUILDERS: dict[str, Callable[[Frames, Path, Windows], Iterator[_Rule]]] = {
    "openclipart/pairs": _pairs,
    "tuxpaint/stamps": _stamps,
    "asterisk/prompts": _prompts,
    "wesnoth/clips": _clips,
    "spoken/spoken": _spoken,
    "movielens/items": _items,
    "movielens/interactions": _interactions,
    "movielens/sequences": _sequences,
}
