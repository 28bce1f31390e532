"""openclipart image-text pairs: public-domain SVG clip art with human-written titles and keywords.

The source is the Debian package `openclipart-svg` (/usr/share/openclipart/svg/). Rows are filtered
on their metadata first; only the drawings that are kept get rendered (the slow part) to 224x224 RGB
PNGs. Rules, schema and real counts are in docs/data.md.
"""

import hashlib
import io
import re
import shutil
import signal
import xml.etree.ElementTree as ET
from collections import Counter
from multiprocessing import get_context
from multiprocessing.pool import Pool
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from PIL import Image
from tqdm import tqdm

from model_code.data.storage import (
    MissingSourceData,
    fingerprint_files,
    not_prepared,
    pixel_digest,
    replace_atomically,
    write_manifest,
    write_parquet,
)
from model_code.paths import data_dir

NAME = "openclipart"
SOURCE_DIR = Path("/usr/share/openclipart/svg")
PAIRS_FILE = "pairs.parquet"
IMAGES_DIR = "images"
SPLITS = ("train", "validation", "test")
SPLIT_SEED = "openclipart-v1"
TRAIN_PERCENT, VALIDATION_PERCENT = 80, 10  # the remaining 10 % is test
IMAGE_SIZE = 224
SUPERSAMPLE = 2  # render at twice the size, then downsample: smoother edges
MAX_SVG_BYTES = 8 * 1024 * 1024  # the largest file in the package is 1.7 MB
MAX_TITLE_USES = 3  # titles used more often are collection names ("Lemon SVG theme"), not captions
RENDER_TIMEOUT_S = 60
RENDER_VERSION = 1  # bump when render_svg changes what it draws
BLANK_TOLERANCE = 2  # a render whose every channel varies by at most this much is blank
NOISE_KEYWORDS = frozenset(
    {"hash", "unsorted"}
)  # import artefacts present on a quarter of the files
DROP_REASONS = (
    "too_large",
    "unparsable",
    "empty_title",
    "repeated_title",
    "duplicate_pair",
    "render_failed",
    "render_timeout",
    "blank_render",
    "image_in_another_split",
)

PAIRS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("title", pa.string()),
        ("keywords", pa.list_(pa.string())),
        ("image", pa.string()),
        ("group", pa.string()),
        ("split", pa.string()),
        ("source", pa.string()),
    ]
)

_TITLE_SUFFIXES = (
    re.compile(r"\s*\([^()]*\)$"),  # "duck (yellow)"
    re.compile(r"(?:^|[\s_\-#.]+)\d+$"),  # "glace_03", "star 2"
    re.compile(r"\s+(?:i{1,3}|iv|vi{0,3}|ix|x)$"),  # "duck ii"
    re.compile(r"[\s_\-#.,:;]+$"),  # separators the rules above leave behind
)
_NON_WORD = re.compile(r"[\W_]+")
_AUTHOR_PREFIX = re.compile(
    r"^clipart by .+? - ", re.IGNORECASE
)  # "Clipart by Steve Hall - Alabama"


def clean_title(raw: str | None) -> str:
    """Whitespace normalised, any "Clipart by <author> - " prefix cut ("" when there is none)."""
    return _AUTHOR_PREFIX.sub("", " ".join((raw or "").split()))


def clean_keywords(raw: list[str | None]) -> list[str]:
    """Lower-cased keywords, underscores as spaces, without blanks, noise words and repeats."""
    cleaned = (" ".join((keyword or "").replace("_", " ").lower().split()) for keyword in raw)
    return list(dict.fromkeys(k for k in cleaned if k and k not in NOISE_KEYWORDS))


def title_group_key(title: str) -> str:
    """Key shared by near-duplicates: lower case, trailing "(...)", numbers, roman numerals cut.

    "Duck (Yellow)" and "Duck (Yellow) II" both give "duck".
    """
    text = title.lower()
    while True:
        shorter = text
        for suffix in _TITLE_SUFFIXES:
            shorter = suffix.sub("", shorter)
        if shorter == text:
            break
        text = shorter
    return _NON_WORD.sub(" ", text).strip() or " ".join(title.lower().split())


def split_of_group(
    group: str,
    seed: str = SPLIT_SEED,
    train: int = TRAIN_PERCENT,
    validation: int = VALIDATION_PERCENT,
) -> str:
    """Deterministic train/validation/test (about `train`/`validation`/the rest percent) from a
    seeded hash of the group key."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    if bucket < train:
        return "train"
    if bucket < train + validation:
        return "validation"
    return "test"


def pair_id(source: str) -> str:
    """Stable id from the SVG's path relative to the source folder."""
    return "oc-" + hashlib.sha1(source.encode()).hexdigest()[:12]


def list_svg_files(source_dir: Path) -> tuple[list[Path], int]:
    """Sorted regular SVG files under `source_dir`, and how many symlinked aliases were skipped."""
    if not source_dir.is_dir():
        raise MissingSourceData(
            f"openclipart SVGs not found at {source_dir}. Install them with "
            "`apt-get install openclipart-svg` (as root) or run `make setup`."
        )
    paths = sorted(source_dir.rglob("*.svg"))
    files = [path for path in paths if path.is_file() and not path.is_symlink()]
    if not files:
        raise MissingSourceData(f"{source_dir} holds no SVG files; reinstall `openclipart-svg`.")
    return files, len(paths) - len(files)


def read_svg_metadata(path: Path) -> tuple[str | None, list[str | None]]:
    """The raw dc:title and dc:subject keywords of the drawing's cc:Work.

    Parsing stops at the end of <metadata>, so the drawing is read only when metadata is absent.
    The stdlib parser (expat >= 2.4) refuses exponential entity expansion; MAX_SVG_BYTES caps size.
    """
    with path.open("rb") as handle:
        for _, element in ET.iterparse(handle, events=("end",)):
            if _local_name(element.tag) == "metadata":
                return _work_title_and_keywords(element)
    return None, []


def _work_title_and_keywords(metadata: ET.Element) -> tuple[str | None, list[str | None]]:
    """Title and keywords of the first cc:Work (not the titles of its creator or publisher)."""
    work = next((e for e in metadata.iter() if _local_name(e.tag) == "Work"), None)
    if work is None:
        return None, []
    titles = _children(work, "title")
    keywords = [
        item.text
        for subject in _children(work, "subject")
        for bag in _children(subject, "Bag")
        for item in _children(bag, "li")
    ]
    return (titles[0].text if titles else None), keywords


def _local_name(tag: str) -> str:
    """Tag without its namespace: some files declare no SVG namespace at all."""
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    """Direct children with the given local name."""
    return [child for child in element if _local_name(child.tag) == name]


def _read_record(job: tuple[Path, str]) -> dict:
    """Metadata of one file as a record; `dropped` names the reason when it cannot be used."""
    path, source = job
    record = {"source": source, "raw_title": None, "raw_keywords": [], "dropped": None}
    if path.stat().st_size > MAX_SVG_BYTES:
        return record | {"dropped": "too_large"}
    try:
        title, keywords = read_svg_metadata(path)
    except ET.ParseError:
        return record | {"dropped": "unparsable"}
    return record | {"raw_title": title, "raw_keywords": keywords}


def select_pairs(records: pd.DataFrame) -> tuple[pd.DataFrame, Counter]:
    """Clean and filter metadata records (`source`, `raw_title`, `raw_keywords`) into split pairs.

    Drops empty titles, titles used more than MAX_TITLE_USES times (case-insensitive) and exact
    duplicate (title, keywords) pairs, keeping the first by source path. Returns the pairs sorted
    by id (`id`, `title`, `keywords`, `group`, `split`, `source`) and the drop counts by reason.
    """
    dropped: Counter = Counter()
    pairs = records.assign(
        title=records["raw_title"].map(clean_title),
        keywords=records["raw_keywords"].map(clean_keywords),
    ).sort_values("source")

    empty = pairs["title"] == ""
    dropped["empty_title"] = int(empty.sum())
    pairs = pairs[~empty]

    lowered = pairs["title"].str.lower()
    repeated = lowered.map(lowered.value_counts()) > MAX_TITLE_USES
    dropped["repeated_title"] = int(repeated.sum())
    pairs = pairs[~repeated]

    duplicate = pairs.assign(kw=pairs["keywords"].map(tuple)).duplicated(["title", "kw"])
    dropped["duplicate_pair"] = int(duplicate.sum())
    pairs = pairs[~duplicate]

    pairs = pairs.assign(
        id=pairs["source"].map(pair_id),
        group=pairs["title"].map(title_group_key),
        split=lambda frame: frame["group"].map(split_of_group),
    )
    columns = ["id", "title", "keywords", "group", "split", "source"]
    return pairs[columns].sort_values("id").reset_index(drop=True), dropped


class _RenderTimeout(Exception):
    """One drawing took longer than RENDER_TIMEOUT_S to render."""


def _raise_render_timeout(signum: int, frame: object) -> None:
    """SIGALRM handler: abandon the drawing being rendered."""
    raise _RenderTimeout


def render_svg(path: Path) -> Image.Image:
    """A 224x224 RGB image of the drawing on white, aspect kept (cairosvg centres and pads)."""
    import cairosvg  # needs the system's libcairo; only preparing the data renders

    side = SUPERSAMPLE * IMAGE_SIZE
    png = cairosvg.svg2png(url=str(path), output_width=side, output_height=side)
    drawing = Image.open(io.BytesIO(png)).convert("RGBA")
    canvas = Image.new("RGBA", drawing.size, "white")
    canvas.alpha_composite(drawing)
    return canvas.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)


def is_blank(image: Image.Image) -> bool:
    """True when every channel is (nearly) constant: nothing was drawn."""
    pixels = np.asarray(image).reshape(-1, len(image.getbands()))
    return bool(np.ptp(pixels, axis=0).max() <= BLANK_TOLERANCE)


def _render_job(job: tuple[Path, Path, Path | None]) -> str | None:
    """Render one SVG to its PNG in a pool worker; return the drop reason, or None on success.

    With a cache folder, the outcome (the PNG, or the drop reason) is kept under a key of the
    SVG's bytes and the render settings, and a later render of the same bytes copies it.
    """
    svg_path, png_path, cache = job
    if cache is None:
        return _render_uncached(svg_path, png_path)
    key = render_key(svg_path.read_bytes())
    cached_png, cached_reason = cache / f"{key}.png", cache / f"{key}.reason"
    if cached_png.is_file():
        replace_atomically(png_path, lambda tmp: shutil.copyfile(cached_png, tmp))
        return None
    if cached_reason.is_file():
        return cached_reason.read_text()
    reason = _render_uncached(svg_path, png_path)
    if reason is None:
        replace_atomically(cached_png, lambda tmp: shutil.copyfile(png_path, tmp))
    elif reason != "render_timeout":  # a timeout may pass on a less busy machine
        replace_atomically(cached_reason, lambda tmp: tmp.write_text(reason))
    return reason


def render_key(svg: bytes) -> str:
    """The render cache's key: the drawing's bytes and every setting that shapes the PNG."""
    digest = hashlib.sha256(f"{RENDER_VERSION}:{IMAGE_SIZE}:{SUPERSAMPLE}:".encode())
    digest.update(svg)
    return digest.hexdigest()


def _render_uncached(svg_path: Path, png_path: Path) -> str | None:
    signal.signal(signal.SIGALRM, _raise_render_timeout)
    signal.alarm(RENDER_TIMEOUT_S)
    try:
        image = render_svg(svg_path)
    except _RenderTimeout:
        return "render_timeout"
    except Exception:  # malformed drawings raise anything from ValueError to cairo errors
        return "render_failed"
    finally:
        signal.alarm(0)
    if is_blank(image):
        return "blank_render"
    replace_atomically(png_path, lambda tmp: image.save(tmp, format="PNG"))
    return None


def _read_all_records(files: list[Path], source_dir: Path, pool: Pool) -> pd.DataFrame:
    """Metadata records of every file, read in the pool."""
    jobs = [(path, path.relative_to(source_dir).as_posix()) for path in files]
    records = pool.imap(_read_record, jobs, chunksize=64)
    return pd.DataFrame(
        list(tqdm(records, total=len(jobs), desc="openclipart metadata", unit="svg"))
    )


def _render_all(
    pairs: pd.DataFrame, source_dir: Path, out_dir: Path, pool: Pool, cache: Path | None
) -> list:
    """Render every pair's PNG in the pool; the drop reason per row (None where it worked)."""
    jobs = [
        (source_dir / source, out_dir / image, cache)
        for source, image in zip(pairs.source, pairs.image, strict=True)
    ]
    reasons = pool.imap(_render_job, jobs, chunksize=4)
    return list(tqdm(reasons, total=len(jobs), desc="openclipart render", unit="svg"))


def copies_in_other_splits(pairs: pd.DataFrame, out_dir: Path) -> pd.Series:
    """True for a pair whose drawing (the same pixels) the first pair with it, by id, has in
    another split: a drawing uploaded again under another title would leak between splits."""

    def digest(image: str) -> str:
        with Image.open(out_dir / image) as png:
            return pixel_digest(png)

    first_split = pairs.groupby(pairs["image"].map(digest))["split"].transform("first")
    return pairs["split"] != first_split


def _remove_stale_images(images_dir: Path, keep: set[str]) -> None:
    """Delete PNGs left by earlier runs (another limit, a failed render) that no row points to."""
    for png in images_dir.glob("*.png"):
        if f"{IMAGES_DIR}/{png.name}" not in keep:
            png.unlink()


def prepare_openclipart(
    out_dir: Path | None = None,
    limit: int | None = None,
    workers: int = 2,
    source_dir: Path = SOURCE_DIR,
    render_cache: Path | None = None,
) -> dict:
    """Build `images/`, `pairs.parquet` and `manifest.json` under `out_dir` and return the manifest.

    `limit` keeps only the first `limit` pairs by id after filtering (a deterministic sample that
    mixes categories) before rendering, so a quick run renders at most that many. With
    `render_cache`, drawings rendered before (the same SVG bytes) are copied, not rendered.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out_dir = Path(out_dir) if out_dir is not None else data_dir() / NAME
    files, aliases = list_svg_files(source_dir)
    with get_context("spawn").Pool(workers) as pool:
        records = _read_all_records(files, source_dir, pool)
        dropped = Counter(records["dropped"].dropna())
        pairs, selection_dropped = select_pairs(records[records["dropped"].isna()])
        dropped.update(selection_dropped)
        if limit is not None:
            pairs = pairs.head(limit)
        pairs = pairs.assign(image=[f"{IMAGES_DIR}/{i}.png" for i in pairs["id"]])
        reasons = pd.Series(
            _render_all(pairs, source_dir, out_dir, pool, render_cache), index=pairs.index
        )
    dropped.update(reasons.dropna())
    pairs = pairs[reasons.isna()].reset_index(drop=True)
    leaked = copies_in_other_splits(pairs, out_dir)
    dropped["image_in_another_split"] = int(leaked.sum())
    pairs = pairs[~leaked].reset_index(drop=True)

    table = pa.Table.from_pandas(
        pairs[PAIRS_SCHEMA.names], schema=PAIRS_SCHEMA, preserve_index=False
    )
    fingerprints = {PAIRS_FILE: write_parquet(table, out_dir / PAIRS_FILE)}
    fingerprints |= fingerprint_files(out_dir, pairs["image"])
    manifest = _manifest(pairs, dropped, len(files), aliases, limit, source_dir, fingerprints)
    write_manifest(manifest, out_dir)
    (out_dir / IMAGES_DIR).mkdir(exist_ok=True)
    _remove_stale_images(
        out_dir / IMAGES_DIR, set(pairs["image"])
    )  # after the new table is in place
    return manifest


def _manifest(
    pairs: pd.DataFrame,
    dropped: Counter,
    svg_files: int,
    aliases: int,
    limit: int | None,
    source_dir: Path,
    fingerprints: dict[str, str],
) -> dict:
    """Counts that describe one prepared copy of the data set, and its files' fingerprints (the
    table's alone is `fingerprint`)."""
    rows = {split: int((pairs["split"] == split).sum()) for split in SPLITS}
    groups = {split: int(pairs.loc[pairs["split"] == split, "group"].nunique()) for split in SPLITS}
    return {
        "dataset": NAME,
        "source": str(source_dir),
        "svg_files": svg_files,
        "symlinked_aliases_skipped": aliases,
        "limit": limit,
        "rows": rows | {"total": len(pairs)},
        "groups": groups | {"total": int(pairs["group"].nunique())},
        "dropped": {reason: int(dropped[reason]) for reason in DROP_REASONS},
        "fingerprint": fingerprints[PAIRS_FILE],
        "files": fingerprints,
    }


def load_openclipart(split: str | None = None, root: Path | None = None) -> pd.DataFrame:
    """The prepared pairs (one split, or all); `image` is an absolute path, `keywords` a list."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = (Path(root) if root is not None else data_dir() / NAME).resolve()
    path = root / PAIRS_FILE
    if not path.exists():
        raise not_prepared(NAME, path)
    pairs = pd.read_parquet(path)
    if split is not None:
        pairs = pairs[pairs["split"] == split].reset_index(drop=True)
    return pairs.assign(
        image=[str(root / image) for image in pairs["image"]],
        keywords=pairs["keywords"].map(list),
    )
