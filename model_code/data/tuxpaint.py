"""Tux Paint stamps: one object as a picture, an English caption, a sound and a spoken caption.

The source is the Debian package `tuxpaint-stamps-default` (/usr/share/tuxpaint/stamps, GPL-2+):
each stamp is files sharing one stem, `<stem>.png` or `.svg` (the picture), `<stem>.txt` (the
caption: its one line without a `<locale>.utf8=` tag is the English one), `<stem>.ogg` (a recorded
sound effect, for about 110 stamps) and `<stem>_desc.ogg` (the English caption spoken by a person,
for 66 animals). The sounds of letters and digits (`symbols/alphabets`, `symbols/math`) are
spoken names, not sound effects, and are left out; so are the other languages' recordings and
recordings of silence (four sound effects are 1.07 s of zeros).

Rows are stamps with a caption and a picture; `sound` and `speech` are their prepared WAVs where
the stamp has them. A stamp's group is its folder and name without variant suffixes, joined with
every group holding a stamp of the same caption ("A cow." in two places), so near-duplicates never
straddle a split.
Groups are split about 80/10/10 by a seeded hash, and into `FOLDS` folds for cross-validation
over sets too small to split three ways (the sound effects). Rules and counts: docs/data.md.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
from PIL import Image
from tqdm import tqdm

from model_code.data.groups import fold_of_group, merged_groups
from model_code.data.media_files import (
    cached_copy,
    decode_to_wav,
    fit_on_white,
    media_key,
)
from model_code.data.openclipart import is_blank, render_svg, split_of_group, title_group_key
from model_code.data.storage import (
    MissingSourceData,
    fingerprint_files,
    not_prepared,
    write_manifest,
    write_parquet,
)
from model_code.media import MediaError
from model_code.paths import data_dir

NAME = "tuxpaint"
SOURCE_DIR = Path("/usr/share/tuxpaint/stamps")
STAMPS_FILE = "stamps.parquet"
MEDIA_DIRS = {"image": "images", "sound": "sounds", "speech": "speech"}
SPLITS = ("train", "validation", "test")
SPLIT_SEED = "tuxpaint-v1"
FOLDS = 5
SPOKEN_NAMES = ("symbols/alphabets", "symbols/math")  # their "sound effects" say the letter
DROP_REASONS = (
    "no_caption",
    "no_picture",
    "picture_unreadable",
    "blank_picture",
    "sound_unreadable",
    "sound_silent",
    "speech_unreadable",
    "speech_silent",
)

STAMPS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("caption", pa.string()),
        ("image", pa.string()),
        ("sound", pa.string()),
        ("speech", pa.string()),
        ("group", pa.string()),
        ("split", pa.string()),
        ("fold", pa.int64()),
        ("source", pa.string()),
    ]
)


def english_caption(text: str) -> str:
    """The English line of a stamp's description: the non-empty line without a locale tag."""
    lines = [line.strip() for line in text.splitlines()]
    return next((line for line in lines if line and ".utf8=" not in line), "")


def stamp_id(stem: str) -> str:
    """Stable id from the stamp's path (without extension) under the source folder."""
    return "tp-" + hashlib.sha1(stem.encode()).hexdigest()[:12]


def list_stamps(source_dir: Path) -> pd.DataFrame:
    """One record per stamp description: `stem` (relative, no extension), `caption`, and the
    picture, sound and spoken-caption files found beside it (None where absent)."""
    if not source_dir.is_dir():
        raise MissingSourceData(
            f"Tux Paint stamps not found at {source_dir}. Install them with "
            "`apt-get install tuxpaint-stamps-default` (as root) or run `make setup`."
        )
    records = []
    for description in sorted(source_dir.rglob("*.txt")):
        stem = description.with_suffix("")
        relative = stem.relative_to(source_dir).as_posix()
        picture = next(
            (p for p in (stem.with_suffix(".png"), stem.with_suffix(".svg")) if p.is_file()), None
        )
        sound = stem.with_suffix(".ogg")
        speech = stem.parent / f"{stem.name}_desc.ogg"
        records.append(
            {
                "stem": relative,
                "caption": english_caption(description.read_text(errors="replace")),
                "picture": picture,
                "sound": sound
                if sound.is_file() and not relative.startswith(SPOKEN_NAMES)
                else None,
                "speech": speech if speech.is_file() else None,
            }
        )
    if not records:
        raise MissingSourceData(f"{source_dir} holds no stamp descriptions; reinstall the package.")
    return pd.DataFrame(records)


def stamp_groups(stems: pd.Series, captions: pd.Series) -> pd.Series:
    """Each stamp's group: its folder and name without variant suffixes ("pig_golden2" and
    "pig_golden" are one), merged with every group sharing one of its captions ("cow" and
    "cow_white" both say "A cow.")."""
    return merged_groups(stems.map(_name_key), captions.str.lower())


def _name_key(stem: str) -> str:
    """The folder and the name's group key, a trailing number cut even where nothing separates
    it ("pig_golden2")."""
    folder, _, name = stem.rpartition("/")
    return f"{folder}/{title_group_key(name.rstrip('0123456789') or name)}"


def prepare_tuxpaint(
    out_dir: Path | None = None,
    source_dir: Path = SOURCE_DIR,
    limit: int | None = None,
    media_cache: Path | None = None,
) -> dict:
    """Build the media folders, `stamps.parquet` and `manifest.json` under `out_dir`; returns the
    manifest. `limit` keeps the first `limit` stamps by id (a deterministic sample); with
    `media_cache`, pictures and audio made before from the same bytes are copied."""
    out_dir = Path(out_dir) if out_dir is not None else data_dir() / NAME
    records = list_stamps(Path(source_dir))
    dropped: Counter = Counter()
    empty = records["caption"] == ""
    dropped["no_caption"] = int(empty.sum())
    no_picture = records["picture"].isna()
    dropped["no_picture"] = int((no_picture & ~empty).sum())
    stamps = records[~empty & ~no_picture].copy()
    stamps["id"] = stamps["stem"].map(stamp_id)
    stamps["group"] = stamp_groups(stamps["stem"], stamps["caption"])
    stamps["split"] = stamps["group"].map(lambda g: split_of_group(g, SPLIT_SEED))
    stamps["fold"] = stamps["group"].map(lambda g: fold_of_group(g, FOLDS, SPLIT_SEED))
    stamps = stamps.sort_values("id").reset_index(drop=True)
    if limit is not None:
        stamps = stamps.head(limit)
    stamps = _write_media(stamps, out_dir, media_cache, dropped)
    stamps = stamps.rename(columns={"stem": "source"})
    table = pa.Table.from_pandas(
        stamps[STAMPS_SCHEMA.names], schema=STAMPS_SCHEMA, preserve_index=False
    )
    fingerprints = {STAMPS_FILE: write_parquet(table, out_dir / STAMPS_FILE)}
    media = [path for column in MEDIA_DIRS for path in stamps[column].dropna()]
    fingerprints |= fingerprint_files(out_dir, media)
    manifest = _manifest(stamps, dropped, len(records), limit, source_dir, fingerprints)
    write_manifest(manifest, out_dir)
    _remove_stale_media(out_dir, set(media))
    return manifest


def _write_media(
    stamps: pd.DataFrame, out_dir: Path, cache: Path | None, dropped: Counter
) -> pd.DataFrame:
    """Each stamp's picture, sound and speech under `out_dir`; stamps whose picture fails are
    dropped, a sound or speech that fails only leaves its column empty (each counted)."""
    rows = []
    for stamp in tqdm(stamps.to_dict("records"), desc="tuxpaint stamps", unit="stamp"):
        image = f"{MEDIA_DIRS['image']}/{stamp['id']}.png"
        reason = _write_picture(stamp["picture"], out_dir / image, cache)
        if reason:
            dropped[reason] += 1
            continue
        row = stamp | {"image": image}
        for column in ("sound", "speech"):
            row[column] = _write_audio(stamp[column], column, stamp["id"], out_dir, cache, dropped)
        rows.append(row)
    return pd.DataFrame(rows, columns=[*stamps.columns, "image"])


def _write_picture(source: Path, target: Path, cache: Path | None) -> str | None:
    """The stamp's picture fitted on white; a drop reason when it cannot be made."""
    data = source.read_bytes()

    def make(path: Path) -> None:
        if source.suffix == ".svg":
            picture = render_svg(source)
        else:
            with Image.open(io.BytesIO(data)) as opened:
                picture = fit_on_white(opened)
        picture.save(path, format="PNG")

    try:
        cached_copy(cache, media_key(data, "png"), target, make)
    except Exception:  # a damaged PNG or SVG raises anything from OSError to cairo errors
        return "picture_unreadable"
    with Image.open(target) as written:
        return "blank_picture" if is_blank(written) else None


def _write_audio(
    source: Path | None, column: str, item_id: str, out_dir: Path, cache, dropped: Counter
) -> str | None:
    if source is None:
        return None
    relative = f"{MEDIA_DIRS[column]}/{item_id}.wav"
    try:
        facts = decode_to_wav(source, out_dir / relative, cache)
    except MediaError:
        dropped[f"{column}_unreadable"] += 1
        return None
    if facts.silent:
        (out_dir / relative).unlink()
        dropped[f"{column}_silent"] += 1
        return None
    return relative


def _remove_stale_media(out_dir: Path, keep: set[str]) -> None:
    """Delete media files of earlier runs that no row points to (after the table is in place)."""
    for folder in MEDIA_DIRS.values():
        for path in (out_dir / folder).glob("*"):
            if f"{folder}/{path.name}" not in keep:
                path.unlink()


def _manifest(
    stamps: pd.DataFrame,
    dropped: Counter,
    descriptions: int,
    limit: int | None,
    source_dir: Path,
    fingerprints: dict[str, str],
) -> dict:
    """Counts that describe one prepared copy, and its files' fingerprints."""

    def per_split(column: str | None = None) -> dict[str, int]:
        rows = stamps if column is None else stamps[stamps[column].notna()]
        counts = {split: int((rows["split"] == split).sum()) for split in SPLITS}
        return counts | {"total": len(rows)}

    return {
        "dataset": NAME,
        "source": str(source_dir),
        "descriptions": descriptions,
        "limit": limit,
        "rows": per_split(),
        "sounds": per_split("sound"),
        "speech": per_split("speech"),
        "groups": int(stamps["group"].nunique()),
        "folds": FOLDS,
        "dropped": {reason: int(dropped[reason]) for reason in DROP_REASONS},
        "fingerprint": fingerprints[STAMPS_FILE],
        "files": fingerprints,
    }


def load_tuxpaint(split: str | None = None, root: Path | None = None) -> pd.DataFrame:
    """The prepared stamps (one split, or all); media columns are absolute paths (None where the
    stamp has no sound or speech)."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = (Path(root) if root is not None else data_dir() / NAME).resolve()
    path = root / STAMPS_FILE
    if not path.exists():
        raise not_prepared(NAME, path)
    stamps = pd.read_parquet(path)
    if split is not None:
        stamps = stamps[stamps["split"] == split].reset_index(drop=True)
    for column in MEDIA_DIRS:
        stamps[column] = [str(root / p) if p else None for p in stamps[column]]
    return stamps
