import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from model_code.data.openclipart import split_of_group
from model_code.data.storage import DataNotPrepared, MissingSourceData, sha256_of_file
from model_code.data.wesnoth import (
    CLIPS_SCHEMA,
    IMAGES_DIR,
    MAX_FRAMES,
    SOURCE_DIR,
    SPLIT_SEED,
    SPLITS,
    TRAIN_PERCENT,
    VALIDATION_PERCENT,
    Attack,
    DroppedClip,
    Frame,
    Unit,
    caption,
    clip_id,
    copies_in_other_splits,
    expand_frame,
    load_wesnoth,
    prepare_wesnoth,
    read_units,
    render_frame,
    resolve_image,
    select_clips,
    spread_evenly,
    unit_families,
)
from model_code.data.wml import parse_wml, preprocess, wml_value

FLIP = Image.Transpose.FLIP_LEFT_RIGHT


@pytest.mark.parametrize(
    ("value", "frame_ms", "frames"),
    [
        ("a.png:100", 0, [("a.png", 100)]),
        (
            "archer-bow-attack[1~4].png:[75*2,100,130]",
            0,
            [("archer-bow-attack1.png", 75), ("archer-bow-attack2.png", 75)]
            + [("archer-bow-attack3.png", 100), ("archer-bow-attack4.png", 130)],
        ),
        (
            "idle-[1~3,3~1,2].png:100",
            0,
            [(f"idle-{n}.png", 100) for n in (1, 2, 3, 3, 2, 1, 2)],
        ),
        ("die-[4~2].png:[50,60,70]", 0, [("die-4.png", 50), ("die-3.png", 60), ("die-2.png", 70)]),
        ("b.png:1,c.png:250,b.png:1", 0, [("b.png", 1), ("c.png", 250), ("b.png", 1)]),
        (
            "d-[1~2].png:150,e-[5~6].png:90",
            0,
            [("d-1.png", 150), ("d-2.png", 150), ("e-5.png", 90), ("e-6.png", 90)],
        ),
        ("f.png:[100,250]", 0, [("f.png", 100), ("f.png", 250)]),
        ("[g,g-1,g].png", 300, [("g.png", 100), ("g-1.png", 100), ("g.png", 100)]),
        ("h.png", 0, [("h.png", 1)]),
        (
            "fly-[1~2].png~CS(-50,5,5):150",
            0,
            [("fly-1.png~CS(-50,5,5)", 150), ("fly-2.png~CS(-50,5,5)", 150)],
        ),
        ("i.png:40,", 0, [("i.png", 40)]),
    ],
)
def test_expand_frame(value, frame_ms, frames):
    assert expand_frame(value, frame_ms) == frames


@pytest.mark.parametrize("value", ["a[1~3].png:[10,20]", "a[1,2]-[3,4].png", "a[x~y].png:10"])
def test_expand_frame_refuses_what_it_cannot_read(value):
    with pytest.raises(ValueError):
        expand_frame(value)


@pytest.mark.parametrize(
    ("reference", "frame"),
    [
        ("units/a.png", Frame("units/a.png")),
        ("units/a.png~FL()", Frame("units/a.png", (FLIP,))),
        ("units/a.png~FL(horiz)~RC(magenta>red)", Frame("units/a.png", (FLIP,))),
        ("units/a.png~FL(vert)", Frame("units/a.png", (Image.Transpose.FLIP_TOP_BOTTOM,))),
    ],
)
def test_resolve_image_applies_flips_and_strips_team_colour(reference, frame):
    assert resolve_image(reference) == frame


@pytest.mark.parametrize(
    "reference",
    ["a.png~BLIT(b.png,0,0)", "a.png~CHAN(if((red > 1), red, 0), green, blue)", "a.png~O(0.5"],
)
def test_resolve_image_drops_other_functions(reference):
    with pytest.raises(DroppedClip, match="image_function"):
        resolve_image(reference)


def test_spread_evenly_keeps_short_animations_and_samples_long_ones_by_time():
    assert spread_evenly(list("abc"), [1, 250, 1]) == list("abc")
    frames = list(range(16))
    assert spread_evenly(frames, [100] * 16) == [1, 3, 5, 7, 9, 11, 13, 15]
    long_first = spread_evenly(frames, [1000] + [100] * 15, count=5)  # middles 250, 750, ...
    assert long_first == [0, 0, 3, 8, 13]


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (
            ("Elvish Archer", "attack_anim", "bow", Attack("bow", "pierce", "ranged")),
            "Elvish Archer: ranged bow attack (pierce)",
        ),
        (
            ("Dwarf", "attack_anim", "axe", Attack("battle axe", "blade", "melee")),
            "Dwarf: melee battle axe attack (blade)",
        ),
        (("Skeleton", "death"), "Skeleton: dying"),
        (("Drake Burner", "idle_anim"), "Drake Burner: idle"),
        (("Bat", "attack_anim", "fangs"), "Bat: fangs attack"),
        (("Bat", "attack_anim"), "Bat: attacking"),
        (("Mage", "pre_teleport"), "Mage: teleporting away"),
        (("Troll", "levelin_anim"), "Troll: levelin"),
        (
            ("Merman Hunter", "draw_weapon_anim", "spear", Attack("spear", "pierce", "melee")),
            "Merman Hunter: drawing a weapon (spear)",
        ),
    ],
)
def test_caption_rules(args, text):
    assert caption(*args) == text


def test_clip_id_is_stable_and_keyed_by_unit_animation_and_attack():
    assert clip_id("Elvish Archer", "attack_anim", "bow") == clip_id(
        "Elvish Archer", "attack_anim", "bow"
    )
    assert clip_id("Elvish Archer", "attack_anim", "bow").startswith("wn-")
    assert len(clip_id("Elvish Archer", "death", None)) == 15
    assert clip_id("Elvish Archer", "attack_anim", "bow") != clip_id(
        "Elvish Archer", "attack_anim", "sword"
    )


def test_wml_value_reads_quotes_translations_and_concatenation():
    assert wml_value(' _ "female^Elvish Archer"') == "Elvish Archer"
    assert wml_value('"units/a.png":1,"units/b.png":250') == "units/a.png:1,units/b.png:250"
    assert wml_value('_ "one " + _ "two"') == "one two"
    assert wml_value('"say ""hi"""') == 'say "hi"'
    assert wml_value(" units/a+female.png:100 ") == "units/a+female.png:100"


def test_preprocess_expands_macros_and_chooses_branches():
    text = """#define IMG NAME
units/{NAME}.png#enddef
#define ANIM NAME FILTER
#arg TIME
100
#endarg
    [idle_anim]
        {FILTER}
        # a comment mentioning {IMG x} is not expanded
        [frame]
            image={IMG {NAME}}:{TIME}
        [/frame]
    [/idle_anim]
#enddef
[unit_type]
#ifdef __WMLUNITS__
    id=wrong
#else
    id=right # trailing comment
#endif
    {ANIM archer (
        start_time=0
    )}
    {UNKNOWN "a b" 1}
[/unit_type]"""
    root = parse_wml(preprocess(text))
    unit = root.child("unit_type")
    idle = unit.child("idle_anim")
    assert unit.attributes == {"id": "right"}
    assert idle.attributes == {"start_time": "0"}
    assert idle.child("frame").attributes == {"image": "units/archer.png:100"}
    assert "{IMG" not in preprocess(text) and "{UNKNOWN" in preprocess(text)


def test_preprocess_keeps_macros_for_later_files():
    macros = {}
    preprocess("#define PATH\nunits/x/#enddef", macros)
    assert preprocess('image="{PATH}a.png"', macros) == 'image="units/x/a.png"'


DESCRIPTION = """    description= _ "A unit.
        It has a second line." # a comment"""


def unit_cfg(
    unit_id: str,
    body: str,
    advances_to: str = "null",
    description: bool = True,
    name: str | None = None,
):
    return f"""#textdomain wesnoth-units
[unit_type]
    id={unit_id}
    name= _ "{name or unit_id}"
    race=test
    advances_to={advances_to}
{DESCRIPTION if description else ""}
{body}
[/unit_type]
"""


FRAME = """    [frame]
        image="{image}"
    [/frame]"""


def anim(tag: str, *images: str, attack: str | None = None) -> str:
    attack_filter = (
        f"    [filter_attack]\n        name={attack}\n    [/filter_attack]" if attack else ""
    )
    frames = "\n".join(FRAME.format(image=image) for image in images)
    return f"[{tag}]\n{attack_filter}\n{frames}\n[/{tag}]"


ATTACKS = """    [attack]
        name=bow
        description=_"bow"
        type=pierce
        range=ranged
    [/attack]"""


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory) -> Path:
    """A hand-written WML tree: five units in three families (two of them share a name), and
    tiny sprites: six 6x4 ones, an 8x8 one and a file that is no image."""
    source = tmp_path_factory.mktemp("wesnoth")
    images = source / "data/core/images/units"
    images.mkdir(parents=True)
    for index, colour in enumerate(["red", "green", "blue", "yellow", "purple", "orange"]):
        sprite = Image.new("RGBA", (6, 4), (0, 0, 0, 0))
        sprite.putpixel((0, 0), Image.new("RGBA", (1, 1), colour).getpixel((0, 0)))
        sprite.save(images / f"s{index}.png")
    Image.new("RGBA", (8, 8), "black").save(images / "big.png")
    (images / "broken.png").write_bytes(b"not a png")
    macros = source / "data/core/macros"
    macros.mkdir(parents=True)
    (macros / "anim.cfg").write_text(
        "#define TEST_IDLE FIRST LAST\n"
        "    [idle_anim]\n        [frame]\n"
        "            image=units/s[{FIRST}~{LAST}].png:100\n"
        "        [/frame]\n    [/idle_anim]\n#enddef\n"
    )
    units = source / "data/core/units"
    (units / "elves").mkdir(parents=True)
    (units / "undead").mkdir()
    archer = [
        ATTACKS,
        anim("attack_anim", "units/s[0~3].png:[75*2,100,130]", attack="bow"),
        anim("attack_anim", "units/s[3~0].png:100", attack="bow"),  # duplicate_clip
        anim("death", "units/s[0~2].png:100"),  # too_few_frames
        "{TEST_IDLE 1 5}",
        "[female]\n" + anim("standing_anim", "units/s[0~5].png:100") + "\n[/female]",
    ]
    (units / "elves/Archer.cfg").write_text(
        unit_cfg("Test Archer", "\n".join(archer), advances_to="Test Ranger")
    )
    ranger = [
        anim("death", "units/s[5~1].png:100"),
        anim("standing_anim", "units/s[0~4].png~BLIT(units/s5.png):100"),  # image_function
        anim("movement_anim", "units/s[0~3].png:100,units/gone.png:100"),  # missing_image
    ]
    (units / "elves/Ranger.cfg").write_text(unit_cfg("Test Ranger", "\n".join(ranger)))
    skeleton = [
        anim("death", "units/s[0~3].png:100,units/big.png:100"),  # one 8x8 canvas
        anim("standing_anim", "units/s[0~3].png~FL():100"),
        anim("movement_anim", "units/s[0~3].png{UNKNOWN}:100"),  # unresolved_frame
        anim("idle_anim", "units/s[0~3].png:100,units/broken.png:100"),  # unreadable_image
    ]
    (units / "undead/Skeleton.cfg").write_text(unit_cfg("Test Skeleton", "\n".join(skeleton)))
    bones = anim("standing_anim", "units/s[2~5].png:100")  # the Skeleton's caption
    (units / "undead/Bones.cfg").write_text(unit_cfg("Test Bones", bones, name="Test Skeleton"))
    ghost = anim("death", "units/s[0~5].png:100")  # no_description
    (units / "undead/Ghost.cfg").write_text(unit_cfg("Test Ghost", ghost, description=False))
    return source


def read_png(path) -> Image.Image:
    """The image's pixels, its file closed."""
    with Image.open(path) as image:
        image.load()
    return image


@pytest.fixture(scope="module")
def tiny_prepared(tiny_source, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "wesnoth"
    manifest = prepare_wesnoth(out_dir=out, source_dir=tiny_source)
    return out, manifest, load_wesnoth(root=out)


def test_read_units_parses_names_descriptions_attacks_and_animations(tiny_source):
    units, unexpanded = read_units(tiny_source)
    archer = next(unit for unit in units if unit.id == "Test Archer")
    assert [unit.id for unit in units] == [
        "Test Archer",
        "Test Ranger",
        "Test Bones",
        "Test Ghost",
        "Test Skeleton",
    ]
    assert archer.name == "Test Archer" and archer.race == "test"
    assert archer.description == "A unit. It has a second line."
    assert archer.attacks == {"bow": Attack("bow", "pierce", "ranged")}
    assert archer.advances_to == ("Test Ranger",)
    assert archer.source == "data/core/units/elves/Archer.cfg"
    assert [node.tag for node in archer.animations] == [
        "attack_anim",
        "attack_anim",
        "death",
        "idle_anim",
    ]  # the [female] block's animation is not the unit's
    assert unexpanded == {"UNKNOWN": 1}


def test_unit_families_join_advancement_lines(tiny_source):
    units, _ = read_units(tiny_source)
    assert unit_families(units) == {
        "Test Archer": "Test Archer",
        "Test Ranger": "Test Archer",
        "Test Bones": "Test Bones",
        "Test Ghost": "Test Ghost",
        "Test Skeleton": "Test Skeleton",
    }


def family_member(unit_id: str, *advances_to: str) -> Unit:
    return Unit(unit_id, unit_id, "", "", advances_to, {}, (), "")


def test_unit_families_are_connected_components_keyed_by_their_first_id():
    units = [
        family_member("Peasant", "Spearman", "Bowman"),
        family_member("Woodsman", "Bowman", "Poacher"),
        family_member("Spearman"),
        family_member("Bowman"),
        family_member("Poacher"),
        family_member("Mage", "Not A Unit Here"),
    ]
    families = unit_families(units)
    assert families == {unit.id: "Bowman" for unit in units[:5]} | {"Mage": "Mage"}


def test_tiny_source_clips_captions_and_drop_counts(tiny_prepared):
    out, manifest, clips = tiny_prepared
    assert sorted(clips["caption"]) == [
        "Test Archer: idle",
        "Test Archer: ranged bow attack (pierce)",
        "Test Ranger: dying",
        "Test Skeleton: dying",
        "Test Skeleton: standing",
        "Test Skeleton: standing",
    ]
    assert manifest["dropped"] == {
        "no_description": 1,
        "unresolved_frame": 1,
        "image_function": 1,
        "missing_image": 1,
        "too_few_frames": 1,
        "unreadable_image": 1,
        "duplicate_clip": 1,
        "frames_in_another_split": 0,
    }
    assert manifest["units"] == 5 and manifest["animations"] == 13
    assert (
        manifest["rows"]["total"] == 6 == sum(manifest["rows"][s] for s in clips["split"].unique())
    )
    frame_counts = [4, 5, 5, 5, 4, 4]
    assert manifest["frames"] == sum(len(frames) for frames in clips["frames"]) == sum(frame_counts)
    assert manifest["frame_sizes"] == {"6x4": 5, "8x8": 1}
    assert manifest["split_percent"] == {
        "train": TRAIN_PERCENT,
        "validation": VALIDATION_PERCENT,
        "test": 100 - TRAIN_PERCENT - VALIDATION_PERCENT,
    }
    assert manifest["macros_unexpanded"] == {"UNKNOWN": 1}
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_tiny_source_frames_are_rgb_on_white_one_size_per_clip(tiny_prepared):
    _, _, clips = tiny_prepared
    attack = clips.set_index("caption").loc["Test Archer: ranged bow attack (pierce)"]
    assert [Path(path).name for path in attack["frames"]] == ["0.png", "1.png", "2.png", "3.png"]
    assert attack["attack"] == "bow" and attack["animation"] == "attack_anim"
    for frames in clips["frames"]:
        images = [read_png(path) for path in frames]
        assert {(image.format, image.mode) for image in images} == {("PNG", "RGB")}
        assert len({image.size for image in images}) == 1
    first = read_png(attack["frames"][0])
    assert first.getpixel((0, 0)) == (255, 0, 0) and first.getpixel((5, 3)) == (255, 255, 255)
    standing = clips.set_index(["unit", "animation"]).loc[("Test Skeleton", "standing_anim")]
    mirrored = read_png(standing["frames"][0])
    assert mirrored.getpixel((5, 0)) == (255, 0, 0)


def test_tiny_source_frames_of_two_sizes_are_centred_on_the_larger(tiny_prepared):
    _, _, clips = tiny_prepared
    dying = clips.set_index("caption").loc["Test Skeleton: dying", "frames"]
    images = [read_png(path) for path in dying]
    assert [image.size for image in images] == [(8, 8)] * 5
    small = images[0]  # the 6x4 s0 (red top-left pixel) centred: offset (1, 2)
    assert small.getpixel((1, 2)) == (255, 0, 0)
    assert {small.getpixel(xy) for xy in [(0, 0), (0, 2), (1, 1), (7, 7), (7, 5), (6, 6)]} == {
        (255, 255, 255)
    }
    assert images[4].getpixel((0, 0)) == images[4].getpixel((7, 7)) == (0, 0, 0)  # big.png


def test_render_frame_centres_odd_leftovers_right_and_down(tiny_source):
    images_dir = tiny_source / IMAGES_DIR
    frame = render_frame(images_dir, Frame("units/s0.png", (FLIP,)), (9, 7))
    assert frame.size == (9, 7) and frame.mode == "RGB"
    assert frame.getpixel((6, 1)) == (255, 0, 0)  # offset (1, 1); mirrored: x 5 -> 6
    with pytest.raises(ValueError, match="larger"):
        render_frame(images_dir, Frame("units/big.png"), (6, 4))


def test_tiny_source_groups_never_straddle_splits(tiny_prepared):
    _, _, clips = tiny_prepared
    assert clips.groupby("group")["split"].nunique().max() == 1
    assert clips.groupby("unit")["split"].nunique().max() == 1
    assert clips.groupby("caption")["split"].nunique().max() == 1


def test_a_shared_caption_merges_families_and_splits_use_the_shared_hash(tiny_prepared):
    _, manifest, clips = tiny_prepared
    groups = dict(zip(clips["unit"], clips["group"], strict=False))
    assert groups == {
        "Test Archer": "Test Archer",
        "Test Ranger": "Test Archer",
        "Test Bones": "Test Bones",
        "Test Skeleton": "Test Bones",  # "Test Skeleton: standing" is the Bones' caption too
    }
    expected = clips["group"].map(
        lambda group: split_of_group(
            group, SPLIT_SEED, train=TRAIN_PERCENT, validation=VALIDATION_PERCENT
        )
    )
    assert clips["split"].tolist() == expected.tolist()
    assert manifest["groups"]["total"] == 2


def test_tiny_source_manifest_fingerprints_every_file(tiny_prepared):
    out, manifest, clips = tiny_prepared
    root = out.resolve()
    frames = {
        Path(path).relative_to(root).as_posix() for paths in clips["frames"] for path in paths
    }
    assert set(manifest["files"]) == frames | {"clips.parquet"}
    assert manifest["fingerprint"] == sha256_of_file(out / "clips.parquet")
    assert manifest["files"]["frames/" + clips["id"][0] + "/0.png"] == sha256_of_file(
        Path(clips["frames"][0][0])
    )


def test_rerun_with_limit_keeps_the_first_clips_by_id_and_removes_stale_frames(
    tiny_source, tmp_path
):
    out = tmp_path / "wesnoth"
    prepare_wesnoth(out_dir=out, source_dir=tiny_source)
    first_two = sorted(load_wesnoth(root=out)["id"])[:2]
    manifest = prepare_wesnoth(out_dir=out, source_dir=tiny_source, limit=2)
    clips = load_wesnoth(root=out)
    assert manifest["rows"]["total"] == 2 and manifest["limit"] == 2
    assert list(clips["id"]) == first_two
    assert sorted(p.name for p in (out / "frames").iterdir()) == sorted(clips["id"])
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_a_clip_whose_first_frame_is_in_another_split_is_dropped():
    clips = pd.DataFrame({"id": ["a", "b", "c", "d"], "split": ["train", "test", "test", "train"]})
    digests = pd.Series(["red", "red", "blue", "red"])
    assert copies_in_other_splits(clips, digests).tolist() == [False, True, False, False]


def test_missing_source_names_the_install_command(tmp_path):
    with pytest.raises(MissingSourceData, match=r"apt-get install wesnoth-1\.16-data"):
        prepare_wesnoth(out_dir=tmp_path / "out", source_dir=tmp_path / "nowhere")


def test_load_before_prepare_names_the_cli(tmp_path):
    with pytest.raises(DataNotPrepared, match="sail data prepare"):
        load_wesnoth(root=tmp_path / "wesnoth")


def test_load_rejects_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_wesnoth(split="dev", root=tmp_path)


def test_real_package_sample(tmp_path):
    if not (SOURCE_DIR / "data/core/units").is_dir():
        pytest.skip("wesnoth-1.16-data is not installed")
    out = tmp_path / "wesnoth"
    manifest = prepare_wesnoth(out_dir=out, limit=5)
    clips = load_wesnoth(root=out)
    assert pq.read_schema(out / "clips.parquet").remove_metadata() == CLIPS_SCHEMA
    assert list(clips.columns) == CLIPS_SCHEMA.names
    assert manifest["rows"]["total"] == len(clips) == 5 and manifest["units"] > 250
    assert (
        clips["id"].str.fullmatch(r"wn-[0-9a-f]{12}").all() and clips["id"].is_monotonic_increasing
    )
    assert clips["caption"].str.fullmatch(r"[^:]+: .+").all()
    assert clips["description"].str.len().gt(20).all()
    for frames in clips["frames"]:
        assert 4 <= len(frames) <= MAX_FRAMES
        sizes = set()
        for path in frames:
            with Image.open(path) as image:
                assert (image.format, image.mode) == ("PNG", "RGB")
                sizes.add(image.size)
        assert len(sizes) == 1
    assert load_wesnoth("test", root=out)["split"].eq("test").all()


def test_real_package_splits_have_galleries_of_100_and_keep_captions_apart():
    if not (SOURCE_DIR / "data/core/units").is_dir():
        pytest.skip("wesnoth-1.16-data is not installed")
    units, _ = read_units(SOURCE_DIR)
    clips, _ = select_clips(units, SOURCE_DIR / IMAGES_DIR)
    rows = clips["split"].value_counts()
    assert rows["validation"] >= 100 and rows["test"] >= 100
    assert rows["train"] == rows.max() and set(rows.index) == set(SPLITS)
    for column in ("group", "unit", "caption", "description"):
        assert clips.groupby(column)["split"].nunique().max() == 1, column
