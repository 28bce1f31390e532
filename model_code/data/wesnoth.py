"""Wesnoth unit animations with captions: short sprite clips for clip<->caption retrieval.

The source is the Debian package `wesnoth-1.16-data` (GPL-2+): every `[unit_type]` in
data/core/units/**/*.cfg (WML) with its name, race, prose description, `[attack]` blocks and
animation blocks, whose `[frame]` images lie under data/core/images.

Reading WML (`model_code.data.wml`, as the game does it): the macros of data/core/macros are
defined first, then each unit file is read in path order (a macro one file defines is known to the
files after it). A macro call that cannot be expanded stays; the manifest counts them by name
(`macros_unexpanded`) and a frame image that still holds one drops its animation
("unresolved_frame"). Animations are the direct children of `[unit_type]` named `*_anim`,
`[death]`, `[defend]` or `[animation]` (whose kind is `apply_to`); those inside
`[female]` and `[variation]` (redrawn copies of the same unit) are not used. An animation's frames
are its `[frame]` blocks in order, those of an `[if]` branch included and those of its `[else]`
branches left out; `[missile_frame]`, `[halo_frame]` and the like are not the unit.

Frame syntax. `image=` is a comma list of `path:duration` items; a `[...]` in the path expands to
one frame per entry (`a~b` counts up or down, `x*n` repeats), and a `[...]` duration list gives
each frame its own duration: `archer-bow-attack[1~4].png:[75*2,100,130]` (a path without one
is repeated: `a.png:[100,250]` is two frames). Items without a duration share the frame's
`duration=` (or `end - begin`) evenly.

Image-path functions. `~FL()` is applied (`horiz` or no argument: mirror; `vert`: upside down);
the team colour functions `~RC()` and `~TC()` are stripped (team colour stays magenta, as in every
sprite); any other (`~CHAN`, `~CS`, `~O`, `~BLIT`, `~MASK`, `~CROP`, ...) drops the animation
("image_function"): a recolour such as the White Horse's `~CHAN` is what its caption names.

Clips. One clip per (unit, animation kind, attack): the first animation of that key, in file
order, that gives a clip; later ones count as "duplicate_clip". An animation longer than
MAX_FRAMES frames keeps MAX_FRAMES, taken at the middle of equal slices of its duration (so in
order, and a long frame may be taken twice). A clip needs MIN_FRAMES distinct images among the
frames it keeps, each of which must be readable ("unreadable_image"). Frames of one animation may
differ in size (a pose wider or taller than the rest): as the game centres each frame on the hex,
each is centred on a canvas of the largest width and height among the clip's frames (72x72 for
most units), composited on white, and saved as an RGB PNG under `frames/<clip id>/<n>.png`; all
frames of a clip have one size.

Captions: "<unit name>: <action>", the name without its translation context ("female^"):
- an attack animation whose attack the unit defines: "<range> <attack description> attack
  (<damage type>)", e.g. "Elvish Archer: ranged bow attack (pierce)";
- an attack animation for an attack the unit does not define: "<attack name> attack";
- otherwise the kind's words in ACTIONS ("Skeleton: dying", "Drake Burner: idle"), or, for a kind
  not listed there, the kind without "_anim", underscores as spaces; an animation of such a kind
  filtered by an attack adds " (<attack description>)": "Merman Hunter: drawing a weapon (spear)".
The unit's description (whitespace normalised) is the separate `description` column.

Splits are by advancement family: units linked by `advances_to` (either way) form one group, keyed
by its alphabetically first unit id, so a unit and its level-ups (often recolours of the same
sprite) never straddle splits. Groups whose clips share a caption are merged (two unit types of one
name), so no caption is in two splits. Groups go to train/validation/test by the project's seeded
hash (split_of_group), TRAIN_PERCENT/VALIDATION_PERCENT/the rest of the hash range: validation and
test need galleries of at least 100 clips each, and 80 families for 474 clips are lumpy (the Drake
Burner family has 40 clips; Peasant, Woodsman, Spearman, Bowman, Poacher and their level-ups 30),
so the clip shares are far from the percentages (1.16: 247/104/123 for 40/40/20). A clip whose
first frame has the pixels of a clip (first by id) in another split is dropped
("frames_in_another_split").

Each dropped animation is counted once, under the first reason in DROP_REASONS that applies
("frames_in_another_split" is checked last, after `limit`).
"""

import bisect
import hashlib
import itertools
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pyarrow as pa
from PIL import Image

from model_code.data.groups import merged_groups
from model_code.data.openclipart import split_of_group
from model_code.data.storage import (
    MissingSourceData,
    fingerprint_files,
    not_prepared,
    pixel_digest,
    replace_atomically,
    write_manifest,
    write_parquet,
)
from model_code.data.wml import (
    Macro,
    Node,
    matching_close,
    parse_wml,
    preprocess,
    unexpanded_calls,
)
from model_code.paths import data_dir

NAME = "wesnoth"
SOURCE_DIR = Path("/usr/share/games/wesnoth/1.16")
UNITS_DIR = "data/core/units"
MACROS_DIR = "data/core/macros"
IMAGES_DIR = "data/core/images"
CLIPS_FILE = "clips.parquet"
FRAMES_DIR = "frames"
SPLITS = ("train", "validation", "test")
SPLIT_SEED = "wesnoth-v1"
# the remaining 20 % is test; 50/25/25 gave validation 52 clips, 40/40/20 is the largest
# train share in steps of 5 with validation and test >= 100 clips on the 1.16 package
TRAIN_PERCENT, VALIDATION_PERCENT = 40, 40
MIN_FRAMES = 4  # distinct images a clip needs
MAX_FRAMES = 8
TEAM_COLOUR_FUNCTIONS = frozenset({"RC", "TC"})  # stripped: the sprite keeps its magenta
DROP_REASONS = (  # in the order they are checked
    "duplicate_clip",
    "no_description",
    "unresolved_frame",
    "image_function",
    "missing_image",
    "too_few_frames",
    "unreadable_image",
    "frames_in_another_split",
)
ACTIONS = {
    "attack_anim": "attacking",
    "death": "dying",
    "defend": "defending",
    "idle_anim": "idle",
    "standing_anim": "standing",
    "movement_anim": "moving",
    "pre_movement_anim": "starting to move",
    "post_movement_anim": "stopping",
    "healing_anim": "healing",
    "recruit_anim": "being recruited",
    "recruiting_anim": "recruiting",
    "leading_anim": "leading",
    "victory_anim": "celebrating victory",
    "draw_weapon_anim": "drawing a weapon",
    "sheath_weapon_anim": "sheathing a weapon",
    "pre_teleport": "teleporting away",
    "post_teleport": "arriving by teleport",
    "launching": "taking off",
    "landing": "landing",
}

CLIPS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("caption", pa.string()),
        ("description", pa.string()),
        ("unit", pa.string()),
        ("race", pa.string()),
        ("animation", pa.string()),
        ("attack", pa.string()),
        ("frames", pa.list_(pa.string())),
        ("group", pa.string()),
        ("split", pa.string()),
        ("source", pa.string()),
    ]
)

_IMAGE_FUNCTION = re.compile(r"~(\w+)\(")
_FLIPS = {"horiz": Image.Transpose.FLIP_LEFT_RIGHT, "vert": Image.Transpose.FLIP_TOP_BOTTOM}


class DroppedClip(ValueError):
    """An animation that gives no clip; the message is its reason, one of DROP_REASONS."""


@dataclass(frozen=True)
class Attack:
    """What a unit's `[attack]` says about one of its weapons."""

    description: str
    type: str | None
    range: str | None


@dataclass(frozen=True)
class Unit:
    """One `[unit_type]`: what the captions, groups and clips need."""

    id: str
    name: str
    race: str
    description: str
    advances_to: tuple[str, ...]
    attacks: dict[str, Attack]
    animations: tuple[Node, ...]
    source: str


class Frame(NamedTuple):
    """One frame's image (relative to data/core/images) and the flips to apply to it."""

    path: str
    transposes: tuple[Image.Transpose, ...] = ()


def read_units(source_dir: Path) -> tuple[list[Unit], Counter]:
    """Every `[unit_type]` of the package's unit files, in path order, read after the core
    macros as the game reads them; and the macro calls left unexpanded, by name."""
    units_dir = source_dir / UNITS_DIR
    if not units_dir.is_dir():
        raise MissingSourceData(
            f"Wesnoth unit definitions not found at {units_dir}. Install them with "
            "`apt-get install wesnoth-1.16-data` (as root)."
        )
    macros: dict[str, Macro] = {}
    for path in sorted((source_dir / MACROS_DIR).glob("*.cfg")):
        preprocess(path.read_text(encoding="utf-8"), macros)
    units, unexpanded = [], Counter()
    for path in sorted(units_dir.rglob("*.cfg")):
        text = preprocess(path.read_text(encoding="utf-8"), macros)
        unexpanded.update(unexpanded_calls(text))
        source = path.relative_to(source_dir).as_posix()
        root = parse_wml(text)
        units += [unit_of(node, source) for node in root.children if node.tag == "unit_type"]
    return units, unexpanded


def unit_of(node: Node, source: str) -> Unit:
    """A `[unit_type]` node as a Unit."""
    attributes = node.attributes
    advances_to = [name.strip() for name in attributes.get("advances_to", "").split(",")]
    return Unit(
        id=attributes.get("id", ""),
        name=attributes.get("name", attributes.get("id", "")),
        race=attributes.get("race", ""),
        description=" ".join(attributes.get("description", "").split()),
        advances_to=tuple(name for name in advances_to if name and name != "null"),
        attacks={
            child.attributes.get("name", ""): attack_of(child)
            for child in node.children
            if child.tag == "attack"
        },
        animations=tuple(child for child in node.children if is_animation(child.tag)),
        source=source,
    )


def attack_of(node: Node) -> Attack:
    """An `[attack]` node as an Attack."""
    attributes = node.attributes
    return Attack(
        description=attributes.get("description") or attributes.get("name", ""),
        type=attributes.get("type"),
        range=attributes.get("range"),
    )


def is_animation(tag: str) -> bool:
    """True for the tags that hold one of a unit's animations."""
    return tag.endswith("_anim") or tag in ("death", "defend", "animation")


def animation_key(node: Node) -> tuple[str, str | None]:
    """An animation's kind (its tag, or `apply_to` for `[animation]`) and the attack it is for."""
    kind = node.tag
    if kind == "animation":
        kind = node.attributes.get("apply_to", "animation").split(",")[0].strip()
    attack_filter = node.child("filter_attack")
    attack = attack_filter.attributes.get("name") if attack_filter else None
    return kind, attack or None


def caption(name: str, animation: str, attack: str | None = None, weapon: Attack | None = None):
    """ "<name>: <action>" by the rules in the module's doc; `weapon` is the unit's `attack`."""
    if animation == "attack_anim" and weapon is not None:
        words = " ".join(filter(None, (weapon.range, weapon.description or attack, "attack")))
        action = f"{words} ({weapon.type})" if weapon.type else words
    elif animation == "attack_anim" and attack:
        action = f"{attack} attack"
    else:
        action = ACTIONS.get(animation, animation.removesuffix("_anim").replace("_", " "))
        if attack:
            action += f" ({weapon.description if weapon else attack})"
    return f"{name}: {action}"


def clip_id(unit: str, animation: str, attack: str | None) -> str:
    """Stable id from the unit id, the animation kind and the attack."""
    key = f"{unit}/{animation}/{attack or ''}"
    return "wn-" + hashlib.sha1(key.encode()).hexdigest()[:12]


def expand_frame(value: str, frame_ms: int = 0) -> list[tuple[str, int]]:
    """(image, duration in ms) of each frame an `image=` value stands for.

    Items without a duration share `frame_ms` evenly (at least 1 ms each). Raises ValueError on
    syntax it cannot read (more than one `[...]` in a path, durations that do not match).
    """
    expanded = [_expand_item(item) for item in _split_top_level(value, ",") if item.strip()]
    untimed = sum(1 for images, durations in expanded for _ in images if durations is None)
    shared = max(1, frame_ms // untimed) if untimed else 0
    return [
        (image, duration)
        for images, durations in expanded
        for image, duration in zip(images, durations or [shared] * len(images), strict=True)
    ]


def _expand_item(item: str) -> tuple[list[str], list[int] | None]:
    """One `path[...]:duration` item's images and their durations (None when it has none)."""
    parts = _split_top_level(item.strip(), ":")
    path, duration = (":".join(parts[:-1]), parts[-1]) if len(parts) > 1 else (parts[0], "")
    groups = list(re.finditer(r"\[([^\]]*)\]", path))
    if len(groups) > 1:
        raise ValueError(f"more than one [...] in {path!r}")
    images = (
        [
            path[: groups[0].start()] + entry + path[groups[0].end() :]
            for entry in _expand_list(groups[0].group(1))
        ]
        if groups
        else [path]
    )
    if not duration.strip():
        return images, None
    durations = [int(entry) for entry in _expand_list(duration.strip().strip("[]"))]
    if len(durations) == 1:
        durations *= len(images)
    if len(images) == 1:  # "a.png:[100,250]" shows a.png twice
        images *= len(durations)
    if len(durations) != len(images):
        raise ValueError(f"{len(images)} images but {len(durations)} durations in {item!r}")
    return images, durations


def _expand_list(text: str) -> list[str]:
    """Entries of a `[...]` list: `a~b` counts from a to b (up or down), `x*n` repeats x."""
    entries = []
    for entry in text.split(","):
        entry, _, times = entry.strip().partition("*")
        start, tilde, end = entry.partition("~")
        if tilde:
            step = 1 if int(end) >= int(start) else -1
            values = [str(n) for n in range(int(start), int(end) + step, step)]
        else:
            values = [entry]
        entries += values * (int(times) if times else 1)
    return entries


def _split_top_level(text: str, separator: str) -> list[str]:
    """`text` split at each `separator` outside [...] and (...)."""
    parts, current, depth = [], "", 0
    for char in text:
        depth += 1 if char in "[(" else -1 if char in "])" else 0
        if char == separator and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def frame_nodes(animation: Node) -> list[Node]:
    """The animation's `[frame]` blocks in order, with an `[if]` branch's and without `[else]`'s."""
    frames = []
    for child in animation.children:
        if child.tag == "frame":
            frames.append(child)
        elif child.tag == "if":
            frames += frame_nodes(child)
    return frames


def frame_duration(frame: Node) -> int:
    """A `[frame]`'s `duration=`, else `end - begin`, else 0 (ms)."""
    attributes = frame.attributes
    try:
        if "duration" in attributes:
            return int(attributes["duration"])
        return int(attributes.get("end", 0)) - int(attributes.get("begin", 0))
    except ValueError:
        return 0


def resolve_image(reference: str) -> Frame:
    """The image path of one expanded frame, its `~FL` flips applied and team colour functions
    stripped; raises DroppedClip("image_function") for any other image-path function."""
    path, tilde, functions = reference.partition("~")
    transposes = []
    for function, argument in _image_functions(tilde + functions):
        if function == "FL":
            transposes += _flips(argument)
        elif function not in TEAM_COLOUR_FUNCTIONS:
            raise DroppedClip("image_function")
    return Frame(path.strip(), tuple(transposes))


def _image_functions(text: str) -> list[tuple[str, str]]:
    """(name, argument) of each `~NAME(argument)` call in turn; arguments may nest parentheses."""
    calls, start = [], 0
    while start < len(text):
        call = _IMAGE_FUNCTION.match(text, start)
        close_at = matching_close(text, call.end() - 1, "(", ")") if call else -1
        if close_at < 0:
            raise DroppedClip("image_function")  # not a function call we can read
        calls.append((call.group(1), text[call.end() : close_at]))
        start = close_at + 1
    return calls


def _flips(argument: str) -> list[Image.Transpose]:
    """Transposes of one `~FL(...)`: no argument or `horiz` mirrors, `vert` turns upside down."""
    words = [word.strip() for word in argument.split(",") if word.strip()] or ["horiz"]
    if not set(words) <= set(_FLIPS):
        raise DroppedClip("image_function")
    return [_FLIPS[word] for word in words]


def spread_evenly(frames: list, durations: list[int], count: int = MAX_FRAMES) -> list:
    """`frames` when there are at most `count`, else the frame shown at the middle of each of
    `count` equal slices of the animation's time (durations below 1 ms count as 1 ms)."""
    if len(frames) <= count:
        return list(frames)
    ends = list(itertools.accumulate(max(1, duration) for duration in durations))
    middles = ((2 * slice_ + 1) * ends[-1] / (2 * count) for slice_ in range(count))
    return [frames[bisect.bisect_right(ends, middle)] for middle in middles]


def clip_frames(animation: Node, images_dir: Path) -> tuple[list[Frame], tuple[int, int]]:
    """The frames a clip of this animation keeps and the size of its canvas (the largest width and
    height among them); raises DroppedClip with the reason it gives no clip (unresolved_frame,
    image_function, missing_image, too_few_frames, unreadable_image)."""
    timed = []
    for node in frame_nodes(animation):
        value = node.attributes.get("image", "")
        if not value or "{" in value:
            raise DroppedClip("unresolved_frame")
        try:
            timed += expand_frame(value, frame_duration(node))
        except ValueError as error:
            raise DroppedClip("unresolved_frame") from error
    frames = [resolve_image(reference) for reference, _ in timed]
    if not all((images_dir / frame.path).is_file() for frame in frames):
        raise DroppedClip("missing_image")
    kept = spread_evenly(frames, [duration for _, duration in timed])
    if len(set(kept)) < MIN_FRAMES:
        raise DroppedClip("too_few_frames")
    sizes = [_image_size(images_dir / path) for path in sorted({frame.path for frame in kept})]
    return kept, (max(width for width, _ in sizes), max(height for _, height in sizes))


def _image_size(path: Path) -> tuple[int, int]:
    """Width and height of an image whose pixels can be decoded, else DroppedClip."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.size
    except (OSError, SyntaxError) as error:  # SyntaxError: some of PIL's "broken file" errors
        raise DroppedClip("unreadable_image") from error


def render_frame(
    images_dir: Path, frame: Frame, size: tuple[int, int] | None = None
) -> Image.Image:
    """The frame's image, flipped as it says, centred on a white canvas of `size` (its own size
    when None; odd leftover pixels go right and down), composited, as RGB."""
    with Image.open(images_dir / frame.path) as source:
        image = source.convert("RGBA")
    for transpose in frame.transposes:
        image = image.transpose(transpose)
    width, height = size or image.size
    if image.width > width or image.height > height:
        raise ValueError(f"{frame.path} is {image.size}, larger than its canvas {size}")
    canvas = Image.new("RGBA", (width, height), "white")
    canvas.alpha_composite(image, ((width - image.width) // 2, (height - image.height) // 2))
    return canvas.convert("RGB")


def unit_families(units: list[Unit]) -> dict[str, str]:
    """Each unit id's group: the alphabetically first id of the units its `advances_to` links
    connect it to (either way), itself included. A unit and the units it advances to are records
    sharing that unit's id; merged_groups joins them all."""
    ids = {unit.id for unit in units}
    links = [
        (member, unit.id)
        for unit in units
        for member in (unit.id, *unit.advances_to)
        if member in ids
    ]
    members = pd.Series([member for member, _ in links], dtype=object)
    families = merged_groups(members, pd.Series([unit for _, unit in links], dtype=object))
    return dict(zip(members, families, strict=True))


def split_of(group: str) -> str:
    """The group's split: the project's seeded hash at this data set's seed and percentages."""
    return split_of_group(group, SPLIT_SEED, train=TRAIN_PERCENT, validation=VALIDATION_PERCENT)


def select_clips(units: list[Unit], images_dir: Path) -> tuple[pd.DataFrame, Counter]:
    """One clip per (unit, animation kind, attack), sorted by id, with its frames as Frame
    tuples in `frame_images` and its canvas size in `canvas`, its group (advancement family,
    merged across shared captions) and split; and the dropped animations counted by reason."""
    families = unit_families(units)
    clips, dropped = [], Counter()
    for unit in units:
        kept_keys = set()
        for animation in unit.animations:
            key = animation_key(animation)
            try:
                if key in kept_keys:
                    raise DroppedClip("duplicate_clip")
                if not unit.description:
                    raise DroppedClip("no_description")
                frames, canvas = clip_frames(animation, images_dir)
            except DroppedClip as reason:
                dropped[str(reason)] += 1
                continue
            kept_keys.add(key)
            clips.append(_clip_row(unit, *key, frames, canvas, families[unit.id]))
    columns = [name for name in CLIPS_SCHEMA.names if name != "frames"]
    clips = pd.DataFrame(clips, columns=[*columns, "frame_images", "canvas"])
    clips["group"] = merged_groups(clips["group"].astype(object), clips["caption"])
    clips["split"] = clips["group"].map(split_of).astype(object)
    return clips.sort_values("id").reset_index(drop=True), dropped


def _clip_row(
    unit: Unit,
    kind: str,
    attack: str | None,
    frames: list[Frame],
    canvas: tuple[int, int],
    family: str,
) -> dict:
    """One clip's row: the table's columns but `frames` (`group` is the unit's family, `split`
    is set once groups are merged), its Frame tuples and its canvas size."""
    return {
        "id": clip_id(unit.id, kind, attack),
        "caption": caption(unit.name, kind, attack, unit.attacks.get(attack or "")),
        "description": unit.description,
        "unit": unit.id,
        "race": unit.race,
        "animation": kind,
        "attack": attack,
        "group": family,
        "split": None,
        "source": unit.source,
        "frame_images": frames,
        "canvas": canvas,
    }


def copies_in_other_splits(clips: pd.DataFrame, first_frame_digests: pd.Series) -> pd.Series:
    """True for a clip whose first frame has the pixels of the first clip (by id) with them
    in another split: the same sprite under another unit would leak between splits."""
    first_split = clips.groupby(first_frame_digests)["split"].transform("first")
    return clips["split"] != first_split


def _first_frame_digest(images_dir: Path, clip) -> str:
    """pixel_digest of the clip's first frame as it is written."""
    return pixel_digest(render_frame(images_dir, clip.frame_images[0], clip.canvas))


def _write_frames(clips: pd.DataFrame, images_dir: Path, out_dir: Path) -> None:
    """Each clip's frames as RGB PNGs at the paths of its `frames` column, all of its size."""
    for clip in clips.itertuples():
        for frame, path in zip(clip.frame_images, clip.frames, strict=True):
            image = render_frame(images_dir, frame, clip.canvas)
            if image.size != clip.canvas:  # the guarantee the data set's users rely on
                raise AssertionError(f"{path} is {image.size}, not the clip's {clip.canvas}")
            replace_atomically(out_dir / path, lambda tmp, image=image: image.save(tmp, "PNG"))


def _remove_stale_frames(frames_dir: Path, keep: set[str]) -> None:
    """Delete the PNGs (and emptied folders) of earlier runs that no clip points to."""
    for png in frames_dir.glob("*/*.png"):
        if png.relative_to(frames_dir.parent).as_posix() not in keep:
            png.unlink()
    for folder in frames_dir.iterdir():
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def prepare_wesnoth(
    out_dir: Path | None = None, source_dir: Path = SOURCE_DIR, limit: int | None = None
) -> dict:
    """Build `frames/`, `clips.parquet` and `manifest.json` under `out_dir`; return the manifest.

    `limit` keeps only the first `limit` clips by id (a deterministic sample across units) before
    any frame is written.
    """
    out_dir = Path(out_dir) if out_dir is not None else data_dir() / NAME
    images_dir = source_dir / IMAGES_DIR
    units, unexpanded = read_units(source_dir)
    clips, dropped = select_clips(units, images_dir)
    if limit is not None:
        clips = clips.head(limit)
    digests = pd.Series(
        [_first_frame_digest(images_dir, clip) for clip in clips.itertuples()],
        index=clips.index,
        dtype=object,
    )
    leaked = copies_in_other_splits(clips, digests)
    dropped["frames_in_another_split"] = int(leaked.sum())
    clips = clips[~leaked].reset_index(drop=True)
    clips["frames"] = pd.Series(
        [
            [f"{FRAMES_DIR}/{clip}/{n}.png" for n in range(len(frames))]
            for clip, frames in zip(clips["id"], clips["frame_images"], strict=True)
        ],
        dtype=object,
    )
    _write_frames(clips, images_dir, out_dir)

    table = pa.Table.from_pandas(
        clips[CLIPS_SCHEMA.names], schema=CLIPS_SCHEMA, preserve_index=False
    )
    frame_paths = [path for paths in clips["frames"] for path in paths]
    fingerprints = {CLIPS_FILE: write_parquet(table, out_dir / CLIPS_FILE)}
    fingerprints |= fingerprint_files(out_dir, frame_paths)
    manifest = _manifest(clips, units, dropped, unexpanded, limit, source_dir, fingerprints)
    write_manifest(manifest, out_dir)
    (out_dir / FRAMES_DIR).mkdir(exist_ok=True)
    _remove_stale_frames(out_dir / FRAMES_DIR, set(frame_paths))  # after the table is in place
    return manifest


def _manifest(
    clips: pd.DataFrame,
    units: list[Unit],
    dropped: Counter,
    unexpanded: Counter,
    limit: int | None,
    source_dir: Path,
    fingerprints: dict[str, str],
) -> dict:
    """Counts that describe one prepared copy of the data set (`frame_sizes`: clips by the size
    of their frames), and its files' fingerprints (the table's alone is `fingerprint`)."""
    rows = {split: int((clips["split"] == split).sum()) for split in SPLITS}
    groups = {split: int(clips.loc[clips["split"] == split, "group"].nunique()) for split in SPLITS}
    return {
        "dataset": NAME,
        "source": str(source_dir),
        "units": len(units),
        "units_with_clips": int(clips["unit"].nunique()),
        "animations": sum(len(unit.animations) for unit in units),
        "limit": limit,
        "rows": rows | {"total": len(clips)},
        "groups": groups | {"total": int(clips["group"].nunique())},
        "frames": int(clips["frames"].map(len).sum()),
        "frame_sizes": {
            f"{width}x{height}": count
            for (width, height), count in sorted(Counter(clips["canvas"]).items())
        },
        "split_percent": {
            "train": TRAIN_PERCENT,
            "validation": VALIDATION_PERCENT,
            "test": 100 - TRAIN_PERCENT - VALIDATION_PERCENT,
        },
        "dropped": {reason: int(dropped[reason]) for reason in DROP_REASONS},
        "macros_unexpanded": dict(sorted(unexpanded.items())),
        "fingerprint": fingerprints[CLIPS_FILE],
        "files": fingerprints,
    }


def load_wesnoth(split: str | None = None, root: Path | None = None) -> pd.DataFrame:
    """The prepared clips (one split, or all); `frames` is a list of absolute PNG paths."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = (Path(root) if root is not None else data_dir() / NAME).resolve()
    path = root / CLIPS_FILE
    if not path.exists():
        raise not_prepared(NAME, path)
    clips = pd.read_parquet(path)
    if split is not None:
        clips = clips[clips["split"] == split].reset_index(drop=True)
    return clips.assign(frames=clips["frames"].map(lambda paths: [str(root / p) for p in paths]))
