"""Spoken captions: who reads what, no text in two splits, real synthesisers, cached utterances."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from model_code.data.spoken import (
    HELD_OUT_VOICE,
    TRAINING_VOICES,
    VOICES_PER_TEXT,
    in_one_split,
    load_spoken,
    prepare_spoken,
    voices_for,
)
from model_code.data.storage import MissingSourceData
from model_code.media import decode_audio


def test_training_texts_get_two_training_voices_and_held_out_texts_the_held_out_one():
    for text in ("A red bicycle.", "An owl.", "Goodbye."):
        voices = voices_for(text, "train")
        assert len(set(voices)) == VOICES_PER_TEXT and set(voices) <= set(TRAINING_VOICES)
        assert voices == voices_for(text, "train")  # seeded by the text
        assert voices_for(text, "test") == voices_for(text, "validation") == [HELD_OUT_VOICE]
    assert HELD_OUT_VOICE not in TRAINING_VOICES
    picked = {v for i in range(200) for v in voices_for(f"caption {i}", "train")}
    assert picked == set(TRAINING_VOICES)  # every training voice reads something


def test_a_text_two_data_sets_split_differently_is_read_only_where_most_held_out():
    texts = pd.DataFrame(
        {
            "dataset": ["openclipart", "asterisk", "tuxpaint", "tuxpaint"],
            "item_id": ["a", "b", "c", "d"],
            "text": ["Goodbye.", "goodbye.", "An owl.", "A cow."],
            "split": ["train", "test", "validation", "train"],
        }
    )
    kept = in_one_split(texts)
    assert list(kept["item_id"]) == ["b", "c", "d"]


ENGINES = ("espeak-ng", "flite", "festival")


def test_real_engines_read_each_text_and_the_cache_serves_a_second_run(tmp_path):
    if any(shutil.which(engine) is None for engine in ENGINES):
        pytest.skip("speech synthesisers are not installed (make setup)")
    texts = pd.DataFrame(
        {
            "dataset": ["openclipart", "openclipart", "asterisk"],
            "item_id": ["x1", "x2", "x3"],
            "text": ['A "quoted" duck.', "-a dash first", "seventh"],
            "split": ["train", "train", "test"],
        }
    )
    cache = tmp_path / "cache"
    manifest = prepare_spoken(texts, tmp_path / "out", media_cache=cache)
    spoken = load_spoken(root=tmp_path / "out")
    assert manifest["rows"] == {"train": 4, "validation": 0, "test": 1, "total": 5}
    assert set(spoken.loc[spoken["split"] == "test", "voice"]) == {HELD_OUT_VOICE.label}
    for audio in spoken["audio"]:
        samples, rate = decode_audio(Path(audio).read_bytes())
        assert audio.endswith(".ogg") and rate == 16000 and len(samples) > rate // 4
    again = prepare_spoken(texts, tmp_path / "again", media_cache=cache)
    assert again["fingerprint"] == manifest["fingerprint"]


def test_a_missing_engine_names_its_packages(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    texts = pd.DataFrame({"dataset": ["x"], "item_id": ["1"], "text": ["hi"], "split": ["test"]})
    with pytest.raises(MissingSourceData, match="festvox-us-slt-hts"):
        prepare_spoken(texts, tmp_path / "out")
