"""Training metrics into MLflow: a `TrainingCallback` that logs each step in batches."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from time import monotonic
from typing import Any

import mlflow
from mlflow.entities import Metric

from model_code.training.callbacks import TrainingCallback
from sail.tracking.lineage import log_config
from sail.tracking.names import metric_name, numeric
from sail.tracking.plots import loss_curves
from sail.tracking.runs import current_run_id

MAX_METRICS_PER_CALL = 1000
NOT_LOSSES = ("step", "lr", "dataset", "samples_per_second", "seconds_left", "elapsed_seconds")
PROGRESS_TAG = "sail.progress"


class MlflowTrainingCallback(TrainingCallback):
    """Logs every numeric value of a step row as a metric at `step`, plus `loss/<data set>`.

    Metrics are buffered and written with one `log_batch` every `flush_every` steps or after
    `flush_seconds`, whichever comes first, at each checkpoint and at the end, so a step never
    waits on the store. Each write also sets the `sail.progress` tag ("120/600 steps, ETA 4m10s").
    At the end the loss and each loss term are drawn to `plots/loss_<stage>.png`.
    """

    def __init__(
        self,
        run_id: str | None = None,
        stage: str = "train",
        flush_every: int = 10,
        flush_seconds: float = 30.0,
    ):
        if flush_every < 1:
            raise ValueError("flush_every must be at least 1")
        if flush_seconds <= 0:
            raise ValueError("flush_seconds must be positive")
        self.run_id = current_run_id(run_id)
        self.stage = stage
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.client = mlflow.MlflowClient()
        self.pending: list[Metric] = []
        self.steps_pending = 0
        self.flushed_at = monotonic()
        self.total_steps: int | None = None
        self.progress = ""
        self.curves: dict[str, list[tuple[int, float]]] = {}

    def on_start(self, info: dict[str, Any]) -> None:
        """Remember the total; log the resolved config, each section as params
        `<section>.<key>` and the artifact `config/<section>.json`."""
        self.total_steps = info["steps"]
        for section, config in info.get("config", {}).items():
            log_config(section, config, self.run_id)

    def on_step(self, row: dict[str, Any]) -> None:
        step = int(row["step"])
        stamp = int(time.time() * 1000)
        for key, value in row.items():
            number = numeric(value)
            if key == "step" or number is None:
                continue
            self.pending.append(Metric(metric_name(key), number, stamp, step))
            if key not in NOT_LOSSES and not key.startswith("temperature/"):
                self.curves.setdefault(key, []).append((step, number))
        if isinstance(row.get("dataset"), str) and numeric(row.get("loss")) is not None:
            name = metric_name(f"loss/{row['dataset']}")
            self.pending.append(Metric(name, float(row["loss"]), stamp, step))
        self.steps_pending += 1
        self.progress = progress(step, self.total_steps, row.get("seconds_left"))
        if (
            self.steps_pending >= self.flush_every
            or monotonic() - self.flushed_at >= self.flush_seconds
        ):
            self.flush()

    def on_checkpoint(self, path: Path, step: int) -> None:
        self.flush()
        self.client.set_tag(self.run_id, "sail.last_checkpoint", f"{step}: {path}")

    def on_end(self, summary: dict[str, Any]) -> None:
        stamp = int(time.time() * 1000)
        for key, value in summary.items():
            if (number := numeric(value)) is not None:
                self.pending.append(Metric(metric_name(f"summary/{key}"), number, stamp, 0))
        self.flush()
        name = re.sub(r"[^\w.-]", "_", self.stage)
        with tempfile.TemporaryDirectory() as tmp:
            path = loss_curves(self.curves, Path(tmp) / f"loss_{name}.png", f"{self.stage} loss")
            self.client.log_artifact(self.run_id, str(path), artifact_path="plots")

    def flush(self) -> None:
        """Write the buffered metrics now, and the progress tag when steps were buffered."""
        for start in range(0, len(self.pending), MAX_METRICS_PER_CALL):
            batch = self.pending[start : start + MAX_METRICS_PER_CALL]
            self.client.log_batch(self.run_id, metrics=batch, synchronous=True)
        if self.steps_pending:
            self.client.set_tag(self.run_id, PROGRESS_TAG, self.progress)
        self.pending = []
        self.steps_pending = 0
        self.flushed_at = monotonic()


def progress(step: int, total: int | None, seconds_left: object) -> str:
    """`120/600 steps, ETA 4m10s`; without a known total or ETA, those parts are left out."""
    text = f"{step}/{total} steps" if total else f"{step} steps"
    if (seconds := numeric(seconds_left)) is None:
        return text
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{text}, ETA {hours}h{minutes:02d}m"
    return f"{text}, ETA {minutes}m{secs:02d}s" if minutes else f"{text}, ETA {secs}s"
