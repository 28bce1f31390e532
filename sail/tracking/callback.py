"""Training metrics into MLflow: a `TrainingCallback` that logs each step in batches."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric

from model_code.training.callbacks import TrainingCallback
from sail.tracking.names import metric_name, numeric
from sail.tracking.plots import loss_curves
from sail.tracking.runs import current_run_id

MAX_METRICS_PER_CALL = 1000
NOT_LOSSES = ("step", "lr", "dataset")


class MlflowTrainingCallback(TrainingCallback):
    """Logs every numeric value of a step row as a metric at `step`, plus `loss/<data set>`.

    Metrics are buffered and written with one `log_batch` every `flush_every` steps, at each
    checkpoint and at the end, so a step never waits on the store. At the end the loss and each
    loss term are drawn to `plots/loss_<stage>.png`.
    """

    def __init__(self, run_id: str | None = None, stage: str = "train", flush_every: int = 50):
        if flush_every < 1:
            raise ValueError("flush_every must be at least 1")
        self.run_id = current_run_id(run_id)
        self.stage = stage
        self.flush_every = flush_every
        self.client = mlflow.MlflowClient()
        self.pending: list[Metric] = []
        self.steps_pending = 0
        self.curves: dict[str, list[tuple[int, float]]] = {}

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
        if self.steps_pending >= self.flush_every:
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
        """Write the buffered metrics now."""
        for start in range(0, len(self.pending), MAX_METRICS_PER_CALL):
            batch = self.pending[start : start + MAX_METRICS_PER_CALL]
            self.client.log_batch(self.run_id, metrics=batch, synchronous=True)
        self.pending = []
        self.steps_pending = 0
