"""Training callbacks: how the pipeline observes a run without the library importing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class TrainingCallback:
    """Override what you need; every hook is a no-op by default."""

    def on_start(self, info: dict[str, Any]) -> None:
        """Before the first step: `stage`, `steps` (the total), `start_step` (0 unless resumed)
        and `config` (the resolved settings: stage, deepspeed, model, sampling, world_size)."""

    def on_step(self, row: dict[str, Any]) -> None:
        """After each optimiser step: `row` holds step, loss, each term, lr, temperatures and the
        pace (`samples_per_second`, `seconds_left`, `elapsed_seconds`)."""

    def on_checkpoint(self, path: Path, step: int) -> None:
        """After a checkpoint is written."""

    def on_end(self, summary: dict[str, Any]) -> None:
        """After the last step and the model export."""


class MetricsJsonl(TrainingCallback):
    """Appends one JSON row per step; on resume, rows after the resumed step are dropped."""

    def __init__(self, path: Path, resume_step: int = 0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if resume_step and self.path.exists():
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line and json.loads(line)["step"] <= resume_step
            ]
        self.path.write_text("".join(f"{line}\n" for line in kept))

    def on_step(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
