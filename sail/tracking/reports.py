"""Evaluation results into MLflow: flat metrics, a JSON + markdown table and a bar chart."""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import mlflow
from mlflow.data.dataset import Dataset
from mlflow.entities import Metric

from sail.tracking.names import metric_name, numeric
from sail.tracking.plots import metric_bars
from sail.tracking.runs import current_run_id

ARTIFACT_DIR = "evaluation"


def log_evaluation(
    metrics: Mapping[str, Mapping[str, float]],
    name: str,
    run_id: str | None = None,
    dataset: Dataset | None = None,
) -> dict[str, float]:
    """Log `metrics[model][metric]` (e.g. {"sail": {"t2i/R@10": 0.18}, "ridge": {...}}).

    Writes metrics `<name>/<model>/<metric>` (names made MLflow-safe; linked to `dataset` when
    given) and the artifacts `evaluation/<name>.json`, `.md` and `.png` to `run_id` (default:
    the active run). Returns the flat metrics as logged.
    """
    run_id = current_run_id(run_id)
    table = _numeric_table(metrics, name)
    flat = {
        metric_name(f"{name}/{model}/{metric}"): value
        for model, row in table.items()
        for metric, value in row.items()
    }
    stamp = int(time.time() * 1000)
    client = mlflow.MlflowClient()
    on = {"dataset_name": dataset.name, "dataset_digest": dataset.digest} if dataset else {}
    entries = [Metric(key, value, stamp, 0, **on) for key, value in flat.items()]
    for start in range(0, len(entries), 1000):
        client.log_batch(run_id, metrics=entries[start : start + 1000], synchronous=True)
    stem = metric_name(name).replace("/", "_")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / f"{stem}.json").write_text(json.dumps(table, indent=2, sort_keys=True))
        (folder / f"{stem}.md").write_text(markdown_table(table, title=name))
        metric_bars(table, folder / f"{stem}.png", title=name)
        client.log_artifacts(run_id, str(folder), artifact_path=ARTIFACT_DIR)
    return flat


def markdown_table(table: Mapping[str, Mapping[str, float]], title: str | None = None) -> str:
    """Models as rows, metrics as columns, 4 decimals; a missing value is `-`."""
    metrics = sorted({m for row in table.values() for m in row})
    lines = [f"## {title}\n"] if title else []
    lines.append("| model | " + " | ".join(metrics) + " |")
    lines.append("|---|" + "---|" * len(metrics))
    for model, row in table.items():
        cells = [_cell(row.get(metric)) for metric in metrics]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _numeric_table(
    metrics: Mapping[str, Mapping[str, float]], name: str
) -> dict[str, dict[str, float]]:
    if not metrics:
        raise ValueError(f"evaluation {name!r}: no metrics to log")
    table: dict[str, dict[str, float]] = {}
    for model, row in metrics.items():
        if not isinstance(row, Mapping):
            raise ValueError(
                f"evaluation {name!r}: metrics[{model!r}] must map metric names to numbers"
            )
        table[str(model)] = {}
        for metric, value in row.items():
            number = numeric(value)
            if number is None:
                raise ValueError(
                    f"evaluation {name!r}: {model}/{metric} is not a number ({value!r})"
                )
            table[str(model)][str(metric)] = number
    return table


def _cell(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.4f}"
