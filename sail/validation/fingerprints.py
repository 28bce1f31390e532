"""The prepared files against the fingerprints their data set's `manifest.json` records.

Preparation records `files`: the sha256 of every file it wrote (each table, and for openclipart
every image), by path relative to the data set folder. Validation hashes them again: a file that
changed or went missing since, a table the manifest does not list, or a manifest without `files`
(written by an older version: prepare again) fails `files_match_manifest`, naming the files.
"""

from __future__ import annotations

from pathlib import Path

from model_code.data.storage import sha256_of_file
from sail.validation.report import CheckOutcome
from sail.validation.results import EXAMPLES
from sail.validation.tables import TABLES


def files_match_manifest(folder: Path, manifest: dict) -> CheckOutcome:
    """The `files_match_manifest` check of the data set in `folder`, given its manifest."""
    label = f"{folder.name}/manifest"
    recorded = manifest.get("files")
    if not isinstance(recorded, dict) or not recorded:
        detail = "manifest.json records no file fingerprints (`files`); prepare the data again"
        return CheckOutcome(label, "files_match_manifest", None, False, detail)
    problems = {
        "changed": [n for n, digest in sorted(recorded.items()) if _changed(folder / n, digest)],
        "missing": [name for name in sorted(recorded) if not (folder / name).is_file()],
        "not in the manifest": [name for name in _tables(folder.name) if name not in recorded],
    }
    found = {kind: names for kind, names in problems.items() if names}
    if not found:
        detail = f"all {len(recorded)} files match manifest.json"
        return CheckOutcome(label, "files_match_manifest", None, True, detail)
    count = sum(map(len, found.values()))
    listed = "; ".join(f"{kind}: {_names(names)}" for kind, names in found.items())
    detail = f"{count} files do not match manifest.json ({len(recorded)} recorded): {listed}"
    return CheckOutcome(label, "files_match_manifest", None, False, detail)


def _changed(path: Path, digest: str) -> bool:
    """An existing file whose sha256 is not `digest` (a missing one is reported as missing)."""
    return path.is_file() and sha256_of_file(path) != digest


def _tables(dataset: str) -> list[str]:
    return [f"{spec.name}.parquet" for spec in TABLES if spec.dataset == dataset]


def _names(names: list[str]) -> str:
    """The first few names, and how many more there are."""
    more = len(names) - EXAMPLES
    return ", ".join(names[:EXAMPLES]) + (f" and {more} more" if more > 0 else "")
