import json
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from model_code.data import openclipart
from model_code.data.openclipart import (
    PAIRS_SCHEMA,
    SOURCE_DIR,
    clean_keywords,
    clean_title,
    load_openclipart,
    prepare_openclipart,
    select_pairs,
    split_of_group,
    title_group_key,
)
from model_code.data.prepare import prepare_all
from model_code.data.sources import SOURCES
from model_code.data.storage import DataNotPrepared, MissingSourceData, sha256_of_file

METADATA = """<metadata><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns:cc="http://web.resource.org/cc/" xmlns:dc="http://purl.org/dc/elements/1.1/">
 <cc:Work rdf:about=""><dc:title>{title}</dc:title>
 <dc:subject><rdf:Bag><rdf:li>{keyword}</rdf:li><rdf:li></rdf:li><rdf:li>hash</rdf:li></rdf:Bag></dc:subject>
 <dc:creator><cc:Agent><dc:title>Some Author</dc:title></cc:Agent></dc:creator>
 </cc:Work></rdf:RDF></metadata>"""


def svg(title: str, keyword: str, body: str, doctype: str = "", namespace: bool = True) -> str:
    xmlns = ' xmlns="http://www.w3.org/2000/svg"' if namespace else ""
    return (
        f'<?xml version="1.0"?>{doctype}<svg{xmlns} width="40" height="20" viewBox="0 0 40 20">'
        f"{METADATA.format(title=title, keyword=keyword)}{body}</svg>"
    )


RED_BAR = '<rect x="0" y="5" width="40" height="10" fill="#ff0000"/>'


def records(*rows: tuple[str, str | None, list[str | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["source", "raw_title", "raw_keywords"])


def test_clean_title_normalises_whitespace_and_cuts_author_prefix():
    assert clean_title("  Red \n\t Duck  ") == "Red Duck"
    assert (
        clean_title("Clipart by Steve Hall - United States - Alabama") == "United States - Alabama"
    )
    assert clean_title(None) == ""
    assert clean_title(" \n ") == ""


def test_clean_keywords_drops_blanks_noise_and_repeats():
    raw = ["Animal", None, "", "hash", "lemon_theme_icon", "animal", " big  cat "]
    assert clean_keywords(raw) == ["animal", "lemon theme icon", "big cat"]


@pytest.mark.parametrize(
    ("title", "group"),
    [
        ("Duck (Yellow)", "duck"),
        ("Duck (Yellow) II", "duck"),
        ("duck", "duck"),
        ("glace_03", "glace"),
        ("BlueMan#203", "blueman"),
        ("Star 2", "star"),
        ("heart-ballons", "heart ballons"),
        ("Henry VIII", "henry"),
        ("Vitamin C", "vitamin c"),
        ("Mp3", "mp3"),
        ("Dog 05 Drawn With Straight Lines", "dog 05 drawn with straight lines"),
        ("2004", "2004"),
        ("(1)", "(1)"),
    ],
)
def test_title_group_key(title, group):
    assert title_group_key(title) == group


def test_split_of_group_is_deterministic_seeded_and_about_80_10_10():
    groups = [f"group {i}" for i in range(5000)]
    splits = Counter(split_of_group(g) for g in groups)
    assert [split_of_group(g) for g in groups[:50]] == [split_of_group(g) for g in groups[:50]]
    assert abs(splits["train"] / 5000 - 0.8) < 0.03
    assert abs(splits["validation"] / 5000 - 0.1) < 0.02
    assert abs(splits["test"] / 5000 - 0.1) < 0.02
    reseeded = [split_of_group(g, seed="other") for g in groups]
    assert reseeded != [split_of_group(g) for g in groups]


def test_select_pairs_filters_before_grouping():
    raw = records(
        ("a/duck.svg", "Duck (Yellow)", ["duck", "bird"]),
        ("a/duck2.svg", "Duck  (Yellow) II", ["duck"]),
        ("a/empty.svg", "  ", ["x"]),
        ("a/none.svg", None, []),
        *[
            (f"theme/{i}.svg", "Lemon SVG theme" if i % 2 else "lemon svg THEME", [])
            for i in range(4)
        ],
        ("b/copy1.svg", "Cat", ["pet", "Pet"]),
        ("b/copy2.svg", "Cat", ["pet"]),
        ("b/other.svg", "Cat", ["tiger"]),
    )
    pairs, dropped = select_pairs(raw)

    assert dropped == Counter(empty_title=2, repeated_title=4, duplicate_pair=1)
    assert sorted(pairs["source"]) == ["a/duck.svg", "a/duck2.svg", "b/copy1.svg", "b/other.svg"]
    assert list(pairs.columns) == ["id", "title", "keywords", "group", "split", "source"]
    assert pairs["id"].is_unique and pairs["id"].is_monotonic_increasing
    ducks = pairs[pairs["title"].str.startswith("Duck")]
    assert set(ducks["group"]) == {"duck"} and ducks["split"].nunique() == 1
    assert pairs.groupby("group")["split"].nunique().max() == 1


def test_missing_source_dir_names_the_install_command(tmp_path):
    with pytest.raises(MissingSourceData, match=r"apt-get install openclipart-svg.*make setup"):
        prepare_openclipart(out_dir=tmp_path / "out", source_dir=tmp_path / "nowhere")


def test_load_before_prepare_names_the_cli(tmp_path):
    with pytest.raises(DataNotPrepared, match="sail data prepare"):
        load_openclipart(root=tmp_path / "openclipart")


def test_load_rejects_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_openclipart(split="dev", root=tmp_path)


def test_render_cache_keeps_each_outcome_by_the_drawings_bytes(tmp_path, monkeypatch):
    cache, good, bad = tmp_path / "cache", tmp_path / "good.svg", tmp_path / "bad.svg"
    good.write_text(svg("Duck", "bird", RED_BAR))
    bad.write_text(svg("Nothing", "x", ""))
    assert openclipart._render_job((good, tmp_path / "1.png", cache)) is None
    assert openclipart._render_job((bad, tmp_path / "2.png", cache)) == "blank_render"

    def no_rendering(path):
        raise AssertionError("rendered again")

    monkeypatch.setattr(openclipart, "render_svg", no_rendering)
    assert openclipart._render_job((good, tmp_path / "3.png", cache)) is None  # a copy
    assert (tmp_path / "3.png").read_bytes() == (tmp_path / "1.png").read_bytes()
    assert openclipart._render_job((bad, tmp_path / "4.png", cache)) == "blank_render"
    good.write_text(svg("Duck", "bird", RED_BAR.replace("#ff0000", "#0000ff")))  # new key
    assert openclipart._render_job((good, tmp_path / "5.png", cache)) == "render_failed"


def test_a_render_timeout_is_not_cached(tmp_path, monkeypatch):
    drawing, cache = tmp_path / "a.svg", tmp_path / "cache"
    drawing.write_text(svg("Duck", "bird", RED_BAR))
    monkeypatch.setattr(openclipart, "render_svg", lambda path: time.sleep(5))
    monkeypatch.setattr(openclipart, "RENDER_TIMEOUT_S", 1)
    assert openclipart._render_job((drawing, tmp_path / "a.png", cache)) == "render_timeout"
    monkeypatch.undo()
    assert openclipart._render_job((drawing, tmp_path / "a.png", cache)) is None


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory) -> Path:
    """Hand-written SVGs: two good, broken metadata, one cairosvg refuses, a blank one, an alias."""
    source = tmp_path_factory.mktemp("svg")
    (source / "animals").mkdir()
    (source / "animals" / "duck.svg").write_text(svg("Duck (Yellow)", "bird", RED_BAR))
    (source / "animals" / "fish.svg").write_text(svg("Fish", "sea", RED_BAR, namespace=False))
    broken = svg("Broken", "x", RED_BAR).replace("</dc:title>", "</dc:titel>", 1)
    (source / "broken.svg").write_text(broken)
    entity = '<!DOCTYPE svg [<!ENTITY ns_a "http://example.org/a">]>'
    (source / "entity.svg").write_text(svg("Entity", "x", RED_BAR, doctype=entity))
    (source / "blank.svg").write_text(svg("Nothing", "x", ""))
    (source / "alias.svg").symlink_to(source / "animals" / "duck.svg")
    return source


def test_tiny_source_skips_and_counts_bad_files(tiny_source, tmp_path):
    out = tmp_path / "openclipart"
    manifest = prepare_openclipart(out_dir=out, workers=1, source_dir=tiny_source)

    assert manifest["svg_files"] == 5 and manifest["symlinked_aliases_skipped"] == 1
    assert manifest["rows"]["total"] == 2
    dropped = manifest["dropped"]
    assert (dropped["unparsable"], dropped["render_failed"], dropped["blank_render"]) == (1, 1, 1)
    pairs = load_openclipart(root=out)
    assert sorted(pairs["title"]) == ["Duck (Yellow)", "Fish"]
    assert sorted(pairs["source"]) == ["animals/duck.svg", "animals/fish.svg"]
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(
        Path(p).name for p in pairs["image"]
    )
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_rerun_with_limit_removes_stale_images(tiny_source, tmp_path):
    out = tmp_path / "openclipart"
    prepare_openclipart(out_dir=out, workers=1, source_dir=tiny_source)
    manifest = prepare_openclipart(out_dir=out, limit=1, workers=1, source_dir=tiny_source)
    assert manifest["rows"]["total"] == 1
    assert len(list((out / "images").iterdir())) == 1


def test_rendered_image_keeps_aspect_ratio_on_white(tiny_source, tmp_path):
    out = tmp_path / "openclipart"
    prepare_openclipart(out_dir=out, workers=1, source_dir=tiny_source)
    duck = load_openclipart(root=out).set_index("title").loc["Duck (Yellow)", "image"]
    image = Image.open(duck)
    assert image.size == (224, 224) and image.mode == "RGB"
    assert image.getpixel((112, 112)) == (255, 0, 0)  # the bar, centred
    assert image.getpixel((112, 5)) == (255, 255, 255)  # padding above the 2:1 drawing


def test_render_guard_gives_up_on_slow_drawings(monkeypatch, tmp_path):
    def endless_render(path):
        time.sleep(5)

    monkeypatch.setattr(openclipart, "render_svg", endless_render)
    monkeypatch.setattr(openclipart, "RENDER_TIMEOUT_S", 1)
    started = time.monotonic()
    assert openclipart._render_job((tmp_path / "a.svg", tmp_path / "a.png", None)) == (
        "render_timeout"
    )
    assert time.monotonic() - started < 3 and not (tmp_path / "a.png").exists()


@pytest.fixture(scope="module")
def real_sample(tmp_path_factory):
    """`prepare_all(limit=30)` on the real sources, written where SAIL_HOME says."""
    if not SOURCE_DIR.is_dir():
        pytest.skip("openclipart-svg is not installed (make setup)")
    home = tmp_path_factory.mktemp("sail_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAIL_HOME", str(home))
        manifests = prepare_all(limit=30)
        pairs = load_openclipart()
    assert set(manifests) == {source.name for source in SOURCES}
    assert (home / "data" / "movielens" / "manifest.json").exists()
    return home / "data" / "openclipart", manifests["openclipart"], pairs


def test_real_sample_schema_and_manifest(real_sample):
    out, manifest, pairs = real_sample
    assert pq.read_schema(out / "pairs.parquet").remove_metadata() == PAIRS_SCHEMA
    assert list(pairs.columns) == PAIRS_SCHEMA.names
    assert 25 <= len(pairs) <= 30 and pairs["id"].is_unique
    assert pairs["id"].str.fullmatch(r"oc-[0-9a-f]{12}").all()
    assert pairs["title"].str.len().gt(0).all()
    assert pairs["keywords"].map(lambda k: isinstance(k, list)).all()
    assert set(pairs["split"]) <= {"train", "validation", "test"}
    counts = pairs["split"].value_counts()
    assert manifest["rows"] == {s: int(counts.get(s, 0)) for s in manifest["rows"]} | {
        "total": len(pairs)
    }
    dropped = manifest["dropped"]
    assert manifest["limit"] == 30 and dropped["repeated_title"] > 1000
    rendered_drops = dropped["render_failed"] + dropped["render_timeout"] + dropped["blank_render"]
    assert len(pairs) + rendered_drops == 30
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_real_sample_images_are_224_rgb_pngs(real_sample):
    out, _, pairs = real_sample
    stored = pd.read_parquet(out / "pairs.parquet")
    assert stored["image"].str.fullmatch(r"images/oc-[0-9a-f]{12}\.png").all()
    for path in pairs["image"]:
        assert Path(path).is_absolute()
        with Image.open(path) as image:
            assert (image.format, image.size, image.mode) == ("PNG", (224, 224), "RGB")


def test_real_sample_has_no_group_in_two_splits(real_sample):
    _, _, pairs = real_sample
    assert pairs.groupby("group")["split"].nunique().max() == 1


def test_real_sample_fingerprint_and_split_filter(real_sample):
    out, manifest, pairs = real_sample
    assert manifest["fingerprint"] == sha256_of_file(out / "pairs.parquet")
    train = load_openclipart("train", root=out)
    assert (train["split"] == "train").all() and len(train) == (pairs["split"] == "train").sum()


def test_a_drawing_in_two_splits_keeps_only_its_first_copy(tmp_path):
    """The same pixels under other titles (so other groups and splits) leak between splits: the
    copies outside the first pair's split are dropped, whatever their files' encoding."""
    red, blue = Image.new("RGB", (224, 224), "red"), Image.new("RGB", (224, 224), "blue")
    for name, image, level in (("a", red, 9), ("b", red, 1), ("c", blue, 9), ("d", red, 6)):
        image.save(tmp_path / f"{name}.png", compress_level=level)
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()
    pairs = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "image": ["a.png", "b.png", "c.png", "d.png"],
            "split": ["train", "test", "test", "train"],
        }
    )
    leaked = openclipart.copies_in_other_splits(pairs, tmp_path)
    assert leaked.tolist() == [False, True, False, False]
