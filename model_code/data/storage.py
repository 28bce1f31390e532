"""What the prepared data sets share: errors, atomic writes, manifests and fingerprints.

Each data set writes one folder under `data_dir()`: Parquet tables plus a `manifest.json` with row
counts, a fingerprint and each file's fingerprint (`files`), written last.
"""

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST_NAME = "manifest.json"


class MissingSourceData(RuntimeError):
    """The raw source of a data set is not installed on this machine."""


class DataNotPrepared(FileNotFoundError):
    """A prepared data set was asked for before `sail data prepare` wrote it."""


def not_prepared(name: str, missing: Path) -> DataNotPrepared:
    """The error to raise when a loader finds no prepared files."""
    return DataNotPrepared(
        f"The {name} data set has not been prepared ({missing} is missing). "
        "Run `sail data prepare` first."
    )


def replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp_path)`, then rename it onto `path`, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_parquet(table: pa.Table, path: Path) -> str:
    """Write `table` atomically and return the file's fingerprint."""
    replace_atomically(path, lambda tmp: pq.write_table(table, tmp))
    return sha256_of_file(path)


def write_manifest(manifest: dict, out_dir: Path) -> None:
    """Write `manifest.json` atomically; it is written last, after every table it describes."""
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    replace_atomically(out_dir / MANIFEST_NAME, lambda tmp: tmp.write_text(text))


def fingerprint_files(folder: Path, names: Iterable[str]) -> dict[str, str]:
    """`sha256_of_file` of each named file (a path relative to `folder`), by name, sorted."""
    return {name: sha256_of_file(folder / name) for name in sorted(names)}


def pixel_digest(image) -> str:
    """sha256 hex of a PIL image's size and RGB pixels: equal for the same drawing, whatever its
    file's encoding."""
    rgb = image.convert("RGB")
    return hashlib.sha256(f"{rgb.size}".encode() + np.asarray(rgb).tobytes()).hexdigest()


def sha256_of_file(path: Path) -> str:
    """`sha256:<hex>` of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"
