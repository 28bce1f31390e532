"""Ingest: one run's data sets, prepared from the packaged sources or from the newest snapshot.

A data URI names a folder of snapshots: a local path, a `file://` URI, or any URL whose fsspec
filesystem is installed. Each snapshot is a subfolder whose name sorts in time order (e.g.
`2026-11-29`), holding any of the data sets' folders (`model_code.data.sources`): `movielens/`
(the atomic files ml-100k.inter, .item, .user), `openclipart/` (a tree of SVG drawings),
`tuxpaint/` (a stamps tree), `asterisk/` (the recordings and `core-sounds-en.txt`), `wesnoth/`
(the game's data tree). A folder that itself holds one of them is taken as the one snapshot. A
data set that the snapshot lacks comes from its packaged source; the spoken captions are always
synthesized from the texts of the others.

The prepared copy lands in one folder (`<out>/<data set>`) with `snapshot.json` beside them:
which snapshot, from where, when, and one fingerprint over all files.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from model_code.data.sources import SNAPSHOT_DATASETS, SOURCES
from model_code.data.storage import MANIFEST_NAME, MissingSourceData, replace_atomically

PACKAGED = "packaged"
DERIVED = "derived"  # made from the other data sets (the spoken captions)
SNAPSHOT_FILE = "snapshot.json"


@dataclass(frozen=True)
class Snapshot:
    """Where each data set of a run comes from."""

    name: str  # the snapshot folder's name, or "packaged"
    uri: str  # the snapshot folder ("" for the packaged sources)
    datasets: tuple[str, ...] = ()  # data sets the snapshot holds (the rest come packaged)


@dataclass
class IngestReport:
    """What one ingest wrote: the snapshot, one fingerprint, rows per data set."""

    snapshot: str
    snapshot_uri: str
    sources: dict[str, str]
    fingerprint: str
    ingested_at: str
    limit: int | None
    rows: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_snapshot(data_uri: str) -> Snapshot:
    """The newest snapshot under `data_uri` ("": the packaged sources).

    Raises MissingSourceData naming the URI when it holds no snapshot.
    """
    if not data_uri:
        return Snapshot(PACKAGED, "")
    fs, root = _filesystem(data_uri)
    if not fs.isdir(root):
        raise MissingSourceData(f"data URI {data_uri}: no such folder")
    if held := _datasets_in(fs, root):
        return Snapshot(Path(root.rstrip("/")).name, _unstrip(fs, root), held)
    folders = sorted(entry for entry in fs.ls(root, detail=False) if fs.isdir(entry))
    for folder in reversed(folders):
        if held := _datasets_in(fs, folder):
            return Snapshot(Path(folder.rstrip("/")).name, _unstrip(fs, folder), held)
    raise MissingSourceData(
        f"data URI {data_uri} holds no snapshot: expected subfolders holding "
        f"{' and/or '.join(f'{name}/' for name in SNAPSHOT_DATASETS)}"
    )


def ingest(out_dir: Path, data_uri: str = "", limit: int | None = None) -> IngestReport:
    """Prepare every data set of the newest snapshot (see the module doc) under `out_dir`;
    `limit` caps each data set's records (a quick run's sample)."""
    snapshot = resolve_snapshot(data_uri)
    out_dir = Path(out_dir)
    sources, rows = {}, {}
    with ExitStack() as stack:
        local = _local_copy(snapshot, stack)
        for data_set in SOURCES:
            held = data_set.name in snapshot.datasets
            origin = PACKAGED if data_set.from_snapshot else DERIVED
            sources[data_set.name] = f"{snapshot.uri}/{data_set.name}" if held else origin
            folder = local / data_set.name if held else None
            rows |= data_set.counts(data_set.prepare(out_dir / data_set.name, folder, limit))
    report = IngestReport(
        snapshot=snapshot.name,
        snapshot_uri=snapshot.uri,
        sources=sources,
        fingerprint=fingerprint(out_dir),
        ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
        limit=limit,
        rows=rows,
    )
    text = json.dumps(report.to_dict(), indent=2) + "\n"
    replace_atomically(out_dir / SNAPSHOT_FILE, lambda tmp: tmp.write_text(text))
    return report


def fingerprint(data_root: Path) -> str:
    """One fingerprint over the prepared data sets' manifests (their files' digests)."""
    digest = hashlib.sha256()
    for manifest in sorted(Path(data_root).glob(f"*/{MANIFEST_NAME}")):
        digest.update(manifest.parent.name.encode())
        digest.update(json.loads(manifest.read_text())["fingerprint"].encode())
    return f"sha256:{digest.hexdigest()}"


def read_snapshot(data_root: Path) -> dict:
    """`snapshot.json` of an ingested folder ({} for data prepared by `sail data prepare`)."""
    path = Path(data_root) / SNAPSHOT_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _filesystem(data_uri: str):
    """The fsspec filesystem and path of `data_uri`; a clear error for an unknown scheme."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(data_uri)
    except (ImportError, ValueError) as error:
        raise MissingSourceData(f"data URI {data_uri}: cannot open it ({error})") from error


def _unstrip(fs, path: str) -> str:
    """A full URI for an fsspec path (its protocol back in front, local paths as they are)."""
    return fs.unstrip_protocol(path) if "file" not in fs.protocol else path


def _datasets_in(fs, folder: str) -> tuple[str, ...]:
    return tuple(name for name in SNAPSHOT_DATASETS if fs.isdir(f"{folder.rstrip('/')}/{name}"))


def _local_copy(snapshot: Snapshot, stack: ExitStack) -> Path:
    """The snapshot as a local folder: itself when local, else downloaded to a temporary one."""
    if not snapshot.uri:
        return Path()
    fs, path = _filesystem(snapshot.uri)
    if "file" in fs.protocol:
        return Path(path)
    target = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sail-snapshot-")))
    for name in snapshot.datasets:
        fs.get(f"{path.rstrip('/')}/{name}", str(target / name), recursive=True)
    return target
