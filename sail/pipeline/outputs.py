"""Pipeline step outputs, written whole or not at all (`model_code.staging`)."""

from __future__ import annotations

from pathlib import Path

from model_code.staging import staged

__all__ = ["staged", "write_output"]


def write_output(path: str | Path, text: str) -> None:
    """A text output artifact, written whole or not at all."""
    with staged(path) as partial:
        partial.write_text(text)
