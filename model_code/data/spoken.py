"""Spoken captions: the texts of the prepared data sets read aloud by speech synthesisers.

The engines are Debian's `espeak-ng`, `flite` and `festival` (with the `festvox-*` voices); they
run on this machine, nothing is downloaded. A text of the train split is read by
`VOICES_PER_TEXT` of the `TRAINING_VOICES`, picked by a seeded hash of the text; a text of the
validation or test split is read by the `HELD_OUT_VOICE` alone, another engine's voice of a
speaker no training voice has (flite's `slt` is that speaker too, and is not used). So the model
is judged on a voice it never heard, and every human voice it is judged on (Asterisk's prompts,
Tux Paint's spoken captions) stays out of training as well.

Each row keeps the data set, item id and split of the text it reads; a text that two data sets put
in different splits is read only in the most held-out one, so a text never straddles splits.
Utterances are kept as OGG Vorbis at 16 kHz (`model_code.data.media_files`), cached by engine,
voice, text and `SYNTH_VERSION`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from model_code.data.media_files import audio_facts, cached_copy, speech_ogg_bytes
from model_code.data.storage import (
    MissingSourceData,
    fingerprint_files,
    not_prepared,
    write_manifest,
    write_parquet,
)
from model_code.media import decode_audio
from model_code.paths import data_dir

NAME = "spoken"
SPOKEN_FILE = "spoken.parquet"
AUDIO_DIR = "audio"
SPLITS = ("train", "validation", "test")
SYNTH_VERSION = 2  # bump when an utterance is made differently
VOICES_PER_TEXT = 2
VOICE_SEED = "spoken-v1"
FESTIVAL_BATCH = 40  # utterances per festival process: it takes a quarter second to start
TIMEOUT_S = 120


@dataclass(frozen=True)
class Voice:
    """One synthetic voice: `engine` (espeak-ng, flite or festival) and its voice name."""

    engine: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.engine}:{self.name}"


TRAINING_VOICES = (
    Voice("espeak-ng", "en-us"),
    Voice("espeak-ng", "en-gb-x-rp+f3"),
    Voice("espeak-ng", "en-gb-scotland+m3"),
    Voice("espeak-ng", "en-029+f2"),
    Voice("espeak-ng", "en-us-nyc+m5"),
    Voice("flite", "kal16"),
    Voice("flite", "awb"),
    Voice("flite", "rms"),
    Voice("festival", "kal_diphone"),
    Voice("festival", "ked_diphone"),
)
HELD_OUT_VOICE = Voice("festival", "cmu_us_slt_arctic_hts")
ENGINE_PACKAGES = {
    "espeak-ng": "espeak-ng",
    "flite": "flite",
    "festival": "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
}

SPOKEN_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("voice", pa.string()),
        ("audio", pa.string()),
        ("seconds", pa.float64()),
        ("dataset", pa.string()),
        ("item_id", pa.string()),
        ("split", pa.string()),
    ]
)


def in_one_split(texts: pd.DataFrame) -> pd.DataFrame:
    """The texts without copies in another split: a text (ignoring case) that two data sets put in
    different splits is kept in the most held-out one alone (test, then validation), so no voice
    reads in training what another reads for evaluation."""
    rank = texts["split"].map({"test": 0, "validation": 1, "train": 2})
    kept = rank == rank.groupby(texts["text"].str.lower()).transform("min")
    return texts[kept]


def voices_for(text: str, split: str) -> list[Voice]:
    """Who reads a text: `VOICES_PER_TEXT` training voices by a seeded hash (train split), else
    the held-out voice."""
    if split != "train":
        return [HELD_OUT_VOICE]
    digest = hashlib.sha256(f"{VOICE_SEED}:{text}".encode()).digest()
    first = int.from_bytes(digest[:8], "big") % len(TRAINING_VOICES)
    return [TRAINING_VOICES[(first + k) % len(TRAINING_VOICES)] for k in range(VOICES_PER_TEXT)]


def utterance_id(voice: Voice, dataset: str, item_id: str) -> str:
    return "sp-" + hashlib.sha1(f"{voice.label}|{dataset}|{item_id}".encode()).hexdigest()[:12]


def utterance_key(voice: Voice, text: str) -> str:
    digest = hashlib.sha256(f"{SYNTH_VERSION}|{voice.label}|{text}".encode())
    return f"{digest.hexdigest()}.synth.ogg"


def check_engines(voices: list[Voice]) -> None:
    """Raise MissingSourceData naming the Debian packages of any engine not installed."""
    missing = sorted({v.engine for v in voices if shutil.which(v.engine) is None})
    if missing:
        packages = " ".join(ENGINE_PACKAGES[engine] for engine in missing)
        raise MissingSourceData(
            f"speech synthesisers not found: {', '.join(missing)}. Install them with "
            f"`apt-get install {packages}` (as root) or run `make setup`."
        )


def prepare_spoken(
    texts: pd.DataFrame,
    out_dir: Path | None = None,
    limit: int | None = None,
    media_cache: Path | None = None,
    workers: int = 2,
) -> dict:
    """Read `texts` (columns dataset, item_id, text, split) aloud into `audio/`, then write
    `spoken.parquet` and `manifest.json` under `out_dir`; returns the manifest. `limit` keeps
    `limit` texts in all, the first of each data set in equal shares."""
    if limit is not None:
        share = max(1, limit // texts["dataset"].nunique())
        texts = texts.groupby("dataset", group_keys=False).head(share)
    texts = in_one_split(texts)
    out_dir = Path(out_dir) if out_dir is not None else data_dir() / NAME
    jobs = [
        (voice, row)
        for row in texts[["dataset", "item_id", "text", "split"]].to_dict("records")
        for voice in voices_for(row["text"], row["split"])
    ]
    check_engines([voice for voice, _ in jobs])
    rows = _synthesize(jobs, out_dir, media_cache, workers)
    spoken = pd.DataFrame(rows, columns=SPOKEN_SCHEMA.names).sort_values("id")
    table = pa.Table.from_pandas(spoken, schema=SPOKEN_SCHEMA, preserve_index=False)
    fingerprints = {SPOKEN_FILE: write_parquet(table, out_dir / SPOKEN_FILE)}
    fingerprints |= fingerprint_files(out_dir, spoken["audio"])
    manifest = _manifest(spoken, limit, fingerprints)
    write_manifest(manifest, out_dir)
    keep = set(spoken["audio"])
    for stale in (out_dir / AUDIO_DIR).glob("*"):
        if f"{AUDIO_DIR}/{stale.name}" not in keep:
            stale.unlink()
    return manifest


def _synthesize(jobs: list, out_dir: Path, cache: Path | None, workers: int) -> list[dict]:
    """Every (voice, text row) job's utterance, prepared as OGG; festival's in batches."""
    by_engine: dict[str, list] = {}
    for voice, row in jobs:
        by_engine.setdefault(voice.engine, []).append((voice, row))
    tasks: list[Callable[[], list[dict]]] = []
    for engine, engine_jobs in by_engine.items():
        size = FESTIVAL_BATCH if engine == "festival" else 1
        for start in range(0, len(engine_jobs), size):
            batch = engine_jobs[start : start + size]
            tasks.append(lambda batch=batch: _speak_batch(batch, out_dir, cache))
    rows: list[dict] = []
    with (
        ThreadPoolExecutor(workers) as pool,
        tqdm(total=len(jobs), desc="spoken", unit="utt") as bar,
    ):
        for done in pool.map(lambda task: task(), tasks):
            rows.extend(done)
            bar.update(len(done))
    return rows


def _speak_batch(batch: list, out_dir: Path, cache: Path | None) -> list[dict]:
    """Utterances of one batch (one voice's engine), synthesized where the cache lacks them."""
    with tempfile.TemporaryDirectory(prefix="sail-speak-") as tmp:
        raw = {i: Path(tmp) / f"{i}.wav" for i in range(len(batch))}
        todo = [
            (i, voice, row)
            for i, (voice, row) in enumerate(batch)
            if cache is None or not (cache / utterance_key(voice, row["text"])).is_file()
        ]
        if todo:
            _run_engine(todo, raw, Path(tmp))
        rows = []
        for i, (voice, row) in enumerate(batch):
            item = utterance_id(voice, row["dataset"], row["item_id"])
            audio = f"{AUDIO_DIR}/{item}.ogg"
            key = utterance_key(voice, row["text"])
            cached_copy(cache, key, out_dir / audio, lambda path, i=i: _prepared(raw[i], path))
            facts = audio_facts(out_dir / audio)
            rows.append(
                {
                    "id": item,
                    "text": row["text"],
                    "voice": voice.label,
                    "audio": audio,
                    "seconds": round(facts.seconds, 3),
                    "dataset": row["dataset"],
                    "item_id": row["item_id"],
                    "split": row["split"],
                }
            )
        return rows


def _prepared(raw: Path, target: Path) -> None:
    """A synthesiser's WAV as prepared speech (mono OGG Vorbis at 16 kHz)."""
    target.write_bytes(speech_ogg_bytes(*decode_audio(raw.read_bytes(), str(raw))))


def _run_engine(todo: list, raw: dict[int, Path], tmp: Path) -> None:
    """Run the engine of the batch's voices, writing each utterance to its `raw` path."""
    engine = todo[0][1].engine
    if engine == "festival":
        script = [f"(voice_{todo[0][1].name})"]
        script += [
            f'(utt.save.wave (utt.synth (Utterance Text "{_scheme_string(row["text"])}")) '
            f'"{raw[i]}" \'riff)'
            for i, _, row in todo
        ]
        (tmp / "batch.scm").write_text("\n".join(script) + "\n")
        _run(["festival", "-b", str(tmp / "batch.scm")], "")
        return
    for i, voice, row in todo:
        if engine == "espeak-ng":
            _run(["espeak-ng", "-v", voice.name, "-w", str(raw[i]), "--stdin"], row["text"])
        else:
            (tmp / f"{i}.txt").write_text(row["text"])
            _run(
                ["flite", "-voice", voice.name, "-f", str(tmp / f"{i}.txt"), "-o", str(raw[i])], ""
            )


def _scheme_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _run(command: list[str], stdin: str) -> None:
    try:
        subprocess.run(
            command, input=stdin, text=True, capture_output=True, check=True, timeout=TIMEOUT_S
        )
    except subprocess.CalledProcessError as error:
        raise RuntimeError(f"{command[0]} failed: {error.stderr.strip()[-500:]}") from None


def _manifest(spoken: pd.DataFrame, limit: int | None, fingerprints: dict) -> dict:
    rows = {split: int((spoken["split"] == split).sum()) for split in SPLITS}
    return {
        "dataset": NAME,
        "limit": limit,
        "training_voices": [v.label for v in TRAINING_VOICES],
        "held_out_voice": HELD_OUT_VOICE.label,
        "voices_per_text": VOICES_PER_TEXT,
        "rows": rows | {"total": len(spoken)},
        "by_dataset": {k: int(v) for k, v in spoken["dataset"].value_counts().sort_index().items()},
        "by_voice": {k: int(v) for k, v in spoken["voice"].value_counts().sort_index().items()},
        "seconds": round(float(spoken["seconds"].sum()), 1),
        "fingerprint": fingerprints[SPOKEN_FILE],
        "files": fingerprints,
    }


def load_spoken(split: str | None = None, root: Path | None = None) -> pd.DataFrame:
    """The prepared utterances (one split, or all); `audio` is an absolute path."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = (Path(root) if root is not None else data_dir() / NAME).resolve()
    path = root / SPOKEN_FILE
    if not path.exists():
        raise not_prepared(NAME, path)
    spoken = pd.read_parquet(path)
    if split is not None:
        spoken = spoken[spoken["split"] == split].reset_index(drop=True)
    return spoken.assign(audio=[str(root / audio) for audio in spoken["audio"]])
