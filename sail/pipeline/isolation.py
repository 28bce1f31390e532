"""Steps that share nothing but artifacts, services and named caches.

Every step runs inside `step_scope`: a scratch folder of its own becomes SAIL_HOME, the working
folder and TMPDIR, and is deleted when the step ends, as a pod's filesystem is. The step's input
Dataset becomes SAIL_DATA_DIR.

With $SAIL_STEP_AUDIT naming a folder, each step also records, through Python's audit hooks, the
paths it opened for reading and writing, renamed, removed or created, and writes them there when
it ends. `find_sharing` then reads every step's record and names each path one step read that
another wrote, and each file a step left behind, outside the artifacts, the services and the
named caches. Audit hooks see Python-level file access (open, os.*, shutil, sqlite3); files that
native code writes (Parquet, safetensors, torch) are found by walking the folders a step created.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from model_code.paths import DATA_ENV

AUDIT_ENV = "SAIL_STEP_AUDIT"
PYTHON_CACHE = "__pycache__"  # bytecode compiled from the sources: a pure function of them
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# Library caches a step may fill, by the variable that moves each (docs/pipeline.md names them):
# these stay where the machine keeps them (compiled once per machine) ...
LIBRARY_CACHES = {
    "TORCH_EXTENSIONS_DIR": "~/.cache/torch_extensions",  # DeepSpeed's compiled ops
    "HF_HOME": "~/.cache/huggingface",  # transformers' module cache (no downloads offline)
}
# ... and these go to SAIL_CACHE_DIR/<folder> for the run's steps.
RUN_CACHES = {
    "MPLCONFIGDIR": "matplotlib",  # matplotlib's font list
    "TORCHINDUCTOR_CACHE_DIR": "torchinductor",  # torch's compiled kernels
}


@dataclass(frozen=True)
class Scope:
    """The running step: its name, when it began (epoch seconds) and its scratch folder."""

    step: str
    began: float
    scratch: Path


_current: Scope | None = None


def current_scope() -> Scope | None:
    """The step running in this process, if any."""
    return _current


@contextmanager
def step_scope(step: str, data: str | Path | None = None) -> Iterator[Scope]:
    """Run a step in a scratch folder of its own (deleted afterwards), with `data` (a Dataset
    artifact's folder) as SAIL_DATA_DIR; record its file access when $SAIL_STEP_AUDIT is set."""
    global _current
    began = time.time()
    scratch = Path(tempfile.mkdtemp(prefix=f"sail-step-{_slug(step)}-")).resolve()
    recorder = _recorder(step, scratch)
    for folder in ("home", "work", "tmp"):
        (scratch / folder).mkdir()
    environment = {"SAIL_HOME": str(scratch / "home"), "TMPDIR": str(scratch / "tmp")}
    if data is not None:
        environment[DATA_ENV] = str(Path(data).resolve())
    saved = {name: os.environ.get(name) for name in environment}
    cwd = os.getcwd()
    os.environ.update(environment)
    tempfile.tempdir = None  # tempfile reads TMPDIR again
    os.chdir(scratch / "work")
    _current = Scope(step, began, scratch)
    try:
        yield _current
    finally:
        _current = None
        os.chdir(cwd)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        tempfile.tempdir = None
        if recorder is not None:
            recorder.save()
        shutil.rmtree(scratch, ignore_errors=True)


class _PathRecorder:
    """Collects the paths a step touches (see the module doc) and saves them as JSON."""

    def __init__(self, step: str, scratch: Path, log_dir: Path):
        self.step, self.scratch, self.log_dir = step, scratch, log_dir
        self.reads: set[str] = set()
        self.writes: set[str] = set()
        self.created: set[str] = set()
        self.ignored = tuple({sys.prefix, sys.base_prefix, "/proc", "/sys", "/dev"})
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = bool(set(mode or "") & set("wax+")) or bool((flags or 0) & WRITE_FLAGS)
            self._add(self.writes if writing else self.reads, path)
        elif event in ("os.rename", "shutil.copyfile", "shutil.copytree"):
            self._add(self.reads, args[0])
            self._add(self.writes, args[1])
        elif event in ("os.remove", "os.rmdir", "os.truncate", "os.symlink", "os.link"):
            self._add(self.writes, args[1] if event in ("os.symlink", "os.link") else args[0])
        elif event == "os.mkdir":
            self._add(self.created, args[0])
        elif event in ("os.listdir", "os.scandir", "glob.glob"):
            self._add(self.reads, args[0])
        elif event == "sqlite3.connect":
            self._add(self.reads, args[0])
            self._add(self.writes, args[0])

    def _add(self, paths: set[str], path) -> None:
        if isinstance(path, int) or path is None:
            return
        text = os.fsdecode(path)
        if not text or text == ":memory:":
            return
        absolute = os.path.abspath(text)
        if not absolute.startswith(self.ignored):
            paths.add(absolute)

    def save(self) -> None:
        """Write the record; folders the step created are walked for what native code wrote."""
        writes = set(self.writes)
        for folder in self.created:
            if Path(folder).is_dir() and not Path(folder).is_relative_to(self.scratch):
                writes.update(str(p) for p in Path(folder).rglob("*") if p.is_file())
        record = {
            "step": self.step,
            "pid": os.getpid(),
            "scratch": str(self.scratch),
            "reads": sorted(self.reads),
            "writes": sorted(writes | self.created),
        }
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / f"{_slug(self.step)}-{os.getpid()}.json"
        path.write_text(json.dumps(record, indent=1))


def _recorder(step: str, scratch: Path) -> _PathRecorder | None:
    log_dir = os.environ.get(AUDIT_ENV)
    return _PathRecorder(step, scratch, Path(log_dir).resolve()) if log_dir else None


def library_caches() -> list[Path]:
    """Where the library caches of LIBRARY_CACHES are in this environment."""
    return [
        Path(os.environ.get(name) or default).expanduser().resolve()
        for name, default in LIBRARY_CACHES.items()
    ]


def find_sharing(log_dir: Path, allowed: Sequence[Path]) -> list[str]:
    """Every path one step read that another step wrote, and every file a step left behind,
    outside the `allowed` roots (artifacts, services, named caches) and the step's own scratch.
    One line per finding; an empty list when the steps share nothing else."""
    records = [json.loads(path.read_text()) for path in sorted(Path(log_dir).glob("*.json"))]
    roots = tuple(str(Path(root).resolve()) for root in allowed)

    def shared(path: str) -> bool:
        return not (path.startswith(roots) or f"/{PYTHON_CACHE}/" in path)

    written: dict[str, set[str]] = {}
    for record in records:
        for path in record["writes"]:
            if shared(path) and not path.startswith(record["scratch"]):
                written.setdefault(path, set()).add(record["step"])
    findings = []
    for record in records:
        for path in record["reads"]:
            others = written.get(path, set()) - {record["step"]}
            if others:
                findings.append(f"{record['step']} read {path}, written by {', '.join(others)}")
    findings += [
        f"{', '.join(sorted(steps))} left {path}"
        for path, steps in sorted(written.items())
        if os.path.isfile(path)
    ]
    return findings


def _slug(step: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", step)
