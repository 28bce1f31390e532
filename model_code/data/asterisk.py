"""Asterisk's English prompts: one person's recorded speech with exact transcripts.

The source is the Debian packages `asterisk-core-sounds-en-wav` (the recordings, 8 kHz WAV, under
/usr/share/asterisk/sounds/en_US_f_Allison) and `asterisk-core-sounds-en` (the transcripts,
`core-sounds-en.txt.gz`: a `<path>: <text>` line per recording); CC-BY-SA-3.0. Stage directions in
brackets or parentheses ("[this is a simple beep tone]", "(10 seconds of silence)") are cut from a
transcript; a recording with nothing left is not speech and is dropped.

The voice is a human one that the model is evaluated on, so its recordings never train the model:
their transcripts may, spoken by synthetic voices (`model_code.data.spoken`), but only those of the
train split. A prompt's group is its name, merged with every prompt of the same transcript (by
case), so no prompt text straddles splits. Groups are split about 40/30/30, so that
validation and test each rank against a gallery of more than 100 recordings.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from model_code.data.groups import merged_groups
from model_code.data.media_files import decode_to_wav
from model_code.data.openclipart import split_of_group
from model_code.data.storage import (
    MissingSourceData,
    fingerprint_files,
    not_prepared,
    write_manifest,
    write_parquet,
)
from model_code.media import MediaError
from model_code.paths import data_dir

NAME = "asterisk"
SOURCE_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
PROMPTS_FILE = "prompts.parquet"
AUDIO_DIR = "audio"
SPLITS = ("train", "validation", "test")
SPLIT_SEED = "asterisk-v1"
TRAIN_PERCENT, VALIDATION_PERCENT = 40, 30
DROP_REASONS = ("not_speech", "no_recording", "recording_unreadable")
_STAGE_DIRECTIONS = re.compile(r"\[[^\]]*\]|\([^)]*\)")

PROMPTS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("transcript", pa.string()),
        ("audio", pa.string()),
        ("seconds", pa.float64()),
        ("group", pa.string()),
        ("split", pa.string()),
        ("source", pa.string()),
    ]
)


def clean_transcript(text: str) -> str:
    """The spoken words: stage directions in brackets or parentheses cut, whitespace normalised."""
    return " ".join(_STAGE_DIRECTIONS.sub(" ", text).split())


def read_transcripts(path: Path) -> dict[str, str]:
    """`<path>: <text>` lines (gzip or plain; `;` starts a comment) as {path: raw text}."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    lines = raw.decode("utf-8", errors="replace").splitlines()
    pairs = (line.split(":", 1) for line in lines if ":" in line and not line.startswith(";"))
    return {name.strip(): text.strip() for name, text in pairs}


def prompt_id(name: str) -> str:
    """Stable id from the recording's path (without extension) under the voice folder."""
    return "ak-" + hashlib.sha1(name.encode()).hexdigest()[:12]


def prepare_asterisk(
    out_dir: Path | None = None,
    source_dir: Path = SOURCE_DIR,
    transcripts: Path | None = None,
    limit: int | None = None,
    media_cache: Path | None = None,
) -> dict:
    """Build `audio/`, `prompts.parquet` and `manifest.json` under `out_dir`; returns the
    manifest. `transcripts` defaults to a `core-sounds-en.txt(.gz)` inside `source_dir` (a
    snapshot's layout), else the package's file; `limit` keeps the first `limit` recordings by
    name."""
    out_dir = Path(out_dir) if out_dir is not None else data_dir() / NAME
    source_dir, transcripts = Path(source_dir), _transcripts_file(Path(source_dir), transcripts)
    texts = read_transcripts(transcripts)
    dropped: Counter = Counter()
    rows = []
    named = sorted(texts.items())[:limit]
    for name, raw in tqdm(named, desc="asterisk prompts", unit="prompt"):
        transcript = clean_transcript(raw)
        recording = source_dir / f"{name}.wav"
        if not transcript:
            dropped["not_speech"] += 1
        elif not recording.is_file():
            dropped["no_recording"] += 1
        elif row := _prompt(name, transcript, recording, out_dir, media_cache):
            rows.append(row)
        else:
            dropped["recording_unreadable"] += 1
    prompts = pd.DataFrame(
        rows, columns=[n for n in PROMPTS_SCHEMA.names if n not in ("group", "split")]
    )
    prompts["group"] = merged_groups(prompts["source"], prompts["transcript"].str.lower())
    prompts["split"] = prompts["group"].map(
        lambda g: split_of_group(g, SPLIT_SEED, TRAIN_PERCENT, VALIDATION_PERCENT)
    )
    prompts = prompts.sort_values("id").reset_index(drop=True)
    table = pa.Table.from_pandas(
        prompts[PROMPTS_SCHEMA.names], schema=PROMPTS_SCHEMA, preserve_index=False
    )
    fingerprints = {PROMPTS_FILE: write_parquet(table, out_dir / PROMPTS_FILE)}
    fingerprints |= fingerprint_files(out_dir, prompts["audio"])
    manifest = _manifest(prompts, dropped, len(texts), limit, source_dir, fingerprints)
    write_manifest(manifest, out_dir)
    for stale in (out_dir / AUDIO_DIR).glob("*"):
        if f"{AUDIO_DIR}/{stale.name}" not in set(prompts["audio"]):
            stale.unlink()
    return manifest


def _transcripts_file(source_dir: Path, transcripts: Path | None) -> Path:
    candidates = (
        [transcripts]
        if transcripts
        else [
            source_dir / "core-sounds-en.txt.gz",
            source_dir / "core-sounds-en.txt",
            TRANSCRIPTS,
        ]
    )
    found = next((path for path in candidates if path.is_file()), None)
    if found is None or not source_dir.is_dir():
        raise MissingSourceData(
            f"Asterisk's English prompts not found ({source_dir}, {candidates[-1]}). Install them "
            "with `apt-get install asterisk-core-sounds-en asterisk-core-sounds-en-wav` (as root) "
            "or run `make setup`."
        )
    return found


def _prompt(name: str, transcript: str, recording: Path, out_dir: Path, cache) -> dict | None:
    """One prompt's row with its recording prepared, or None when the recording does not decode."""
    item_id = prompt_id(name)
    audio = f"{AUDIO_DIR}/{item_id}.wav"
    try:
        facts = decode_to_wav(recording, out_dir / audio, cache)
    except MediaError:
        return None
    seconds = round(facts.seconds, 3)
    return {
        "id": item_id,
        "transcript": transcript,
        "audio": audio,
        "seconds": seconds,
        "source": name,
    }


def _manifest(
    prompts: pd.DataFrame,
    dropped: Counter,
    lines: int,
    limit: int | None,
    source_dir: Path,
    fingerprints: dict,
) -> dict:
    rows = {split: int((prompts["split"] == split).sum()) for split in SPLITS}
    return {
        "dataset": NAME,
        "source": str(source_dir),
        "transcript_lines": lines,
        "limit": limit,
        "rows": rows | {"total": len(prompts)},
        "groups": int(prompts["group"].nunique()),
        "seconds": round(float(prompts["seconds"].sum()), 1),
        "dropped": {reason: int(dropped[reason]) for reason in DROP_REASONS},
        "fingerprint": fingerprints[PROMPTS_FILE],
        "files": fingerprints,
    }


def load_asterisk(split: str | None = None, root: Path | None = None) -> pd.DataFrame:
    """The prepared prompts (one split, or all); `audio` is an absolute path."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = (Path(root) if root is not None else data_dir() / NAME).resolve()
    path = root / PROMPTS_FILE
    if not path.exists():
        raise not_prepared(NAME, path)
    prompts = pd.read_parquet(path)
    if split is not None:
        prompts = prompts[prompts["split"] == split].reset_index(drop=True)
    return prompts.assign(audio=[str(root / audio) for audio in prompts["audio"]])
