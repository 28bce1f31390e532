"""What one part of the hostile suite found: a table, its verdict, a note."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Context:
    """What every section is given: a SAIL_HOME with the real data prepared small (`home`), the
    tiny model saved (`model_dir`), a folder of its own to write in (`work`), and `quick` for a
    smoke run (fewer cases and requests)."""

    home: Path
    model_dir: Path
    work: Path
    quick: bool = False

    def folder(self, name: str) -> Path:
        """A fresh folder for one section, under `work`."""
        path = self.work / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class Section:
    """One table of the report: `columns`, `rows` (one list of cells each), `held` (every row
    passed), and `note` (what was tried and what must hold, one paragraph)."""

    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    held: bool = True
    note: str = ""
    seconds: float = 0.0

    def add(self, *cells, ok: bool = True) -> None:
        """A row; a row that did not hold fails the section."""
        self.rows.append(list(cells))
        self.held = self.held and ok

    def to_dict(self) -> dict:
        return asdict(self)
