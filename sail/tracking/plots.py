"""PNG charts for MLflow artifacts, drawn with matplotlib's Agg canvas (no display, no pyplot)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def loss_curves(series: Mapping[str, Sequence[tuple[int, float]]], path: Path, title: str) -> Path:
    """One line per series (points of step, value), e.g. the loss and each loss term."""
    figure = Figure(figsize=(8, 4.5), dpi=100)
    axes = figure.add_subplot()
    for name, points in series.items():
        if points:
            steps, values = zip(*points, strict=True)
            axes.plot(steps, values, label=name, linewidth=1.2 if name == "loss" else 0.9)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if series:
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)


def metric_bars(table: Mapping[str, Mapping[str, float]], path: Path, title: str) -> Path:
    """Grouped bars: one group per metric, one bar per model (`table[model][metric]`)."""
    models = list(table)
    metrics = sorted({m for row in table.values() for m in row})
    figure = Figure(figsize=(max(6.0, 0.9 * len(metrics) * max(1, len(models)) + 2), 4.5), dpi=100)
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(models))
    positions = np.arange(len(metrics))
    for index, model in enumerate(models):
        values = [table[model].get(metric, np.nan) for metric in metrics]
        axes.bar(positions + index * width, values, width, label=model)
    axes.set_xticks(positions + width * (len(models) - 1) / 2, metrics, rotation=30, ha="right")
    axes.set_title(title)
    axes.grid(axis="y", alpha=0.3)
    if models:
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)
