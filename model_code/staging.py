"""Outputs written whole or not at all: under `<path>.partial`, renamed when complete.

A process killed half-way leaves at most the partial name beside its output, never half an
artifact at the path a reader opens (the next pipeline step, a resumed stage, a server); run
again, it starts clean, or (training) resumes from it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL_SUFFIX = ".partial"


@contextmanager
def staged(path: str | Path, resume: bool = False) -> Iterator[Path]:
    """An output written under `<path>.partial`, renamed onto `path` only when the block
    succeeds, so the next step never sees half of it. What an earlier attempt left is removed
    first; with `resume`, a partial folder is kept for the block to continue from."""
    target = Path(path)
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    _remove(target)
    if not resume:
        _remove(partial)
    try:
        yield partial
    except BaseException:
        if not resume:
            _remove(partial)
        raise
    os.replace(partial, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
