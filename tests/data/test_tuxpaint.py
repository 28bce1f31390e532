"""Tux Paint stamps: captions, pictures fitted on white, sounds and speech decoded once, groups."""

import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile
from PIL import Image

from model_code.data.storage import MissingSourceData, sha256_of_file
from model_code.data.tuxpaint import (
    SOURCE_DIR,
    STAMPS_SCHEMA,
    english_caption,
    load_tuxpaint,
    prepare_tuxpaint,
    stamp_groups,
)


def test_the_english_caption_is_the_line_without_a_locale():
    text = "ach.utf8=Winyo macol.\nA blackbird.\nfr.utf8=Un merle.\n"
    assert english_caption(text) == "A blackbird."
    assert english_caption("A calculator.  6x7=42\nde.utf8=Ein Rechner.") == "A calculator.  6x7=42"
    assert english_caption("fr.utf8=Seulement.") == ""


def test_variants_and_shared_captions_share_a_group():
    stems = pd.Series(["farm/cow", "farm/cow_white", "farm/pig_golden", "farm/pig_golden2", "a/b"])
    captions = pd.Series(["A cow.", "a cow.", "A pig.", "A Tamworth pig.", "A bee."])
    groups = stamp_groups(stems, captions)
    assert groups[0] == groups[1]  # the same caption
    assert groups[2] == groups[3]  # one name with a variant number
    assert len(set(groups)) == 3


def _ogg(path, seconds=0.5, rate=22050, level=0.3):
    tone = level * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)
    buffer = io.BytesIO()
    soundfile.write(buffer, tone.astype(np.float32), rate, format="OGG", subtype="VORBIS")
    path.write_bytes(buffer.getvalue())


def _stamp(folder, name, caption, colour=(200, 30, 30, 255), size=(60, 30), sound=None):
    folder.mkdir(parents=True, exist_ok=True)
    picture = Image.new("RGBA", size, (0, 0, 0, 0))
    picture.paste(Image.new("RGBA", (size[0] // 2, size[1] // 2), colour), (5, 5))
    picture.save(folder / f"{name}.png")
    (folder / f"{name}.txt").write_text(f"{caption}\nfr.utf8=Quelque chose.\n")
    if sound == "tone":
        _ogg(folder / f"{name}.ogg")
    elif sound == "silence":
        _ogg(folder / f"{name}.ogg", level=0.0)


@pytest.fixture
def source(tmp_path):
    root = tmp_path / "stamps"
    _stamp(root / "animals", "cow", "A cow.", sound="tone")
    _ogg(root / "animals" / "cow_desc.ogg", seconds=0.8, rate=44100)
    _stamp(root / "animals", "cow_white", "A cow.", colour=(20, 20, 200, 255))
    _stamp(root / "household", "kettle", "An electric kettle.", sound="silence")
    _stamp(root / "symbols" / "math", "7", "Seven.", sound="tone")  # a spoken name, not a sound
    (root / "seasonal").mkdir()
    (root / "seasonal" / "gift.txt").write_text("A gift.\n")  # no picture
    return root


def test_prepare_writes_pictures_audio_and_a_fingerprinted_manifest(source, tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    manifest = prepare_tuxpaint(out, source_dir=source, media_cache=cache)
    assert pq.read_schema(out / "stamps.parquet").remove_metadata() == STAMPS_SCHEMA
    stamps = load_tuxpaint(root=out).set_index("source")
    assert sorted(stamps.index) == [
        "animals/cow",
        "animals/cow_white",
        "household/kettle",
        "symbols/math/7",
    ]
    assert stamps.loc["animals/cow", "group"] == stamps.loc["animals/cow_white", "group"]
    with Image.open(stamps.loc["animals/cow", "image"]) as picture:
        assert picture.size == (224, 224) and picture.mode == "RGB"
        assert picture.getpixel((0, 0)) == (255, 255, 255)  # transparency on white
    assert stamps.loc["animals/cow", "sound"].endswith(".wav")
    assert stamps.loc["animals/cow", "speech"].endswith(".wav")
    assert stamps["sound"].notna().sum() == 1  # silence and a spoken digit are no sound effects
    assert manifest["dropped"]["no_picture"] == 1 and manifest["dropped"]["sound_silent"] == 1
    assert manifest["sounds"]["total"] == 1 and manifest["speech"]["total"] == 1
    assert set(stamps["fold"]) <= set(range(5))
    for name, digest in manifest["files"].items():
        assert sha256_of_file(out / name) == digest
    again = prepare_tuxpaint(tmp_path / "again", source_dir=source, media_cache=cache)
    assert again["fingerprint"] == manifest["fingerprint"]  # from the cache, the same bytes


def test_limit_and_a_missing_source(source, tmp_path):
    manifest = prepare_tuxpaint(tmp_path / "out", source_dir=source, limit=2)
    assert manifest["rows"]["total"] == 2 and manifest["limit"] == 2
    with pytest.raises(MissingSourceData, match="apt-get install tuxpaint-stamps-default"):
        prepare_tuxpaint(tmp_path / "none", source_dir=tmp_path / "missing")


def test_real_stamps_sample(tmp_path):
    if not SOURCE_DIR.is_dir():
        pytest.skip("tuxpaint-stamps-default is not installed (make setup)")
    manifest = prepare_tuxpaint(tmp_path / "out", limit=40)
    stamps = load_tuxpaint(root=tmp_path / "out")
    assert len(stamps) == manifest["rows"]["total"] >= 38
    assert stamps["id"].str.fullmatch(r"tp-[0-9a-f]{12}").all()
    assert stamps["caption"].str.len().gt(0).all()
    assert stamps.groupby("group")["split"].nunique().max() == 1
