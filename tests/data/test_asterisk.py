"""Asterisk's prompts: transcripts without stage directions, recordings decoded, safe splits."""

import gzip

import numpy as np
import pytest
from scipy.io import wavfile

from model_code.data.asterisk import (
    SOURCE_DIR,
    TRANSCRIPTS,
    clean_transcript,
    load_asterisk,
    prepare_asterisk,
    read_transcripts,
)
from model_code.data.storage import MissingSourceData


@pytest.mark.parametrize(
    ("raw", "spoken"),
    [
        ("Please leave your message. (simple tone sound plays)", "Please leave your message."),
        ("at [@]", "at"),
        ("[this is a simple beep tone]", ""),
        ("(10 seconds of silence)", ""),
        ("Thank  you.", "Thank you."),
    ],
)
def test_stage_directions_are_cut(raw, spoken):
    assert clean_transcript(raw) == spoken


def _wav(path, seconds=0.4, rate=8000):
    tone = 0.3 * np.sin(2 * np.pi * 300 * np.arange(int(seconds * rate)) / rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, (tone * 32767).astype(np.int16))


@pytest.fixture
def source(tmp_path):
    root = tmp_path / "voice"
    lines = ["; Core sounds", "hello: Hello.", "beep: [beep]", "digits/1: one", "goodbye: Goodbye."]
    lines += ["goodbye-2: goodbye.", "missing: Not recorded.", "broken: Broken."]
    for name in ("hello", "beep", "digits/1", "goodbye", "goodbye-2"):
        _wav(root / f"{name}.wav")
    (root / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    (root / "core-sounds-en.txt.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    return root


def test_prepare_keeps_speech_with_its_transcript(source, tmp_path):
    manifest = prepare_asterisk(tmp_path / "out", source_dir=source)
    prompts = load_asterisk(root=tmp_path / "out").set_index("source")
    assert sorted(prompts.index) == ["digits/1", "goodbye", "goodbye-2", "hello"]
    assert prompts.loc["hello", "transcript"] == "Hello."
    assert prompts.loc["hello", "seconds"] == pytest.approx(0.4)
    assert manifest["dropped"] == {"not_speech": 1, "no_recording": 1, "recording_unreadable": 1}
    # the same words under two names are one group: never in two splits
    assert prompts.loc["goodbye", "group"] == prompts.loc["goodbye-2", "group"]
    assert prompts.loc["goodbye", "split"] == prompts.loc["goodbye-2", "split"]
    rate, _ = wavfile.read(prompts.loc["hello", "audio"])
    assert rate == 8000
    assert prepare_asterisk(tmp_path / "three", source_dir=source, limit=3)["rows"]["total"] == 1


def test_a_missing_source_names_the_packages(tmp_path):
    with pytest.raises(MissingSourceData, match="asterisk-core-sounds-en-wav"):
        prepare_asterisk(tmp_path / "out", source_dir=tmp_path / "none", transcripts=tmp_path / "x")


def test_real_prompts_have_galleries_of_over_100_in_validation_and_test(tmp_path):
    if not (SOURCE_DIR.is_dir() and TRANSCRIPTS.is_file()):
        pytest.skip("asterisk-core-sounds-en(-wav) is not installed (make setup)")
    manifest = prepare_asterisk(tmp_path / "out")
    assert manifest["transcript_lines"] == len(read_transcripts(TRANSCRIPTS)) > 550
    assert manifest["rows"]["validation"] > 100 and manifest["rows"]["test"] > 100
    prompts = load_asterisk(root=tmp_path / "out")
    assert prompts.groupby(prompts["transcript"].str.lower())["split"].nunique().max() == 1
