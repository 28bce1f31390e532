"""Ingest: one run's data sets, prepared from the packaged sources or from the newest snapshot.

A data URI names a folder of snapshots: a local path, a `file://` URI, or any URL whose fsspec
filesystem is installed. Each snapshot is a subfolder whose name sorts in time order (e.g.
`2026-11-29`), holding `movielens/` (the atomic files ml-100k.inter, .item, .user) and/or
`openclipart/` (a tree of SVG drawings). A folder that itself holds `movielens/` or `openclipart/`
is taken as the one snapshot. A data set that the snapshot lacks comes from its packaged source.

The prepared copy lands in one folder (`<out>/openclipart`, `<out>/movielens`) with
`snapshot.json` beside them: which snapshot, from where, when, and one fingerprint over all files.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from model_code.data import movielens, openclipart
from model_code.data.storage import MANIFEST_NAME, MissingSourceData, replace_atomically
from model_code.paths import render_cache_dir

PACKAGED = "packaged"
SNAPSHOT_FILE = "snapshot.json"
DATASETS = (openclipart.NAME, movielens.NAME)


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
    openclipart_limit: int | None
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
        f"{' and/or '.join(f'{name}/' for name in DATASETS)}"
    )


def ingest(
    out_dir: Path, data_uri: str = "", openclipart_limit: int | None = None, workers: int = 2
) -> IngestReport:
    """Prepare every data set of the newest snapshot (see the module doc) under `out_dir`."""
    snapshot = resolve_snapshot(data_uri)
    out_dir = Path(out_dir)
    with ExitStack() as stack:
        local = _local_copy(snapshot, stack)
        sources = {}
        for name in DATASETS:
            source = local / name if name in snapshot.datasets else None
            sources[name] = f"{snapshot.uri}/{name}" if source else PACKAGED
            if name == openclipart.NAME:
                openclipart.prepare_openclipart(
                    out_dir / name,
                    limit=openclipart_limit,
                    workers=workers,
                    source_dir=source or openclipart.SOURCE_DIR,
                    render_cache=render_cache_dir(),
                )
            else:
                movielens.prepare_movielens(out_dir / name, source=source)
    report = IngestReport(
        snapshot=snapshot.name,
        snapshot_uri=snapshot.uri,
        sources=sources,
        fingerprint=fingerprint(out_dir),
        ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
        openclipart_limit=openclipart_limit,
        rows=_rows(out_dir),
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


def _rows(data_root: Path) -> dict[str, int]:
    counts = {}
    for name in DATASETS:
        manifest = json.loads((data_root / name / MANIFEST_NAME).read_text())
        if name == openclipart.NAME:
            counts["openclipart/pairs"] = manifest["rows"]["total"]
        else:
            counts["movielens/items"] = manifest["items"]
            counts["movielens/interactions"] = manifest["interactions"]["total"]
    return counts


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
    return tuple(name for name in DATASETS if fs.isdir(f"{folder.rstrip('/')}/{name}"))


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
