"""PNG charts for MLflow artifacts, drawn with matplotlib's Agg canvas (no display, no pyplot)."""

from __future__ import annotations

import textwrap
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


def stage_losses(curves: Mapping[str, Sequence[tuple[int, float]]], path: Path, title: str) -> Path:
    """Every stage's loss on one chart, the stages one after another on a shared step axis
    (`curves[stage]`: its points of step, loss, in training order)."""
    figure = Figure(figsize=(9, 4.5), dpi=100)
    axes = figure.add_subplot()
    offset = 0
    for stage, points in curves.items():
        if not points:
            continue
        steps, values = zip(*points, strict=True)
        axes.plot([offset + step for step in steps], values, label=stage, linewidth=1.1)
        axes.axvline(offset + 0.5, color="grey", alpha=0.3, linewidth=0.8)
        offset += max(steps)
    axes.set_xlabel("step (stages in training order)")
    values = [value for points in curves.values() for _, value in points]
    if values and min(values) > 0:  # stages' losses differ by orders of magnitude
        axes.set_yscale("log")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if curves:
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)


def retrieval_grid(rows: Sequence[tuple[str, Sequence[tuple[Path, bool]]]], path: Path) -> Path:
    """One row per caption: its text, then its top drawings, best first; the caption's own
    drawing (a hit) outlined in green, the others in grey."""
    from PIL import Image

    width = max((len(found) for _, found in rows), default=1)
    figure = Figure(figsize=(2.0 + 1.6 * width, 1.7 * max(1, len(rows))), dpi=100)
    grid = figure.add_gridspec(max(1, len(rows)), width + 1, width_ratios=[2.4] + [1] * width)
    for row, (caption, found) in enumerate(rows):
        text = figure.add_subplot(grid[row, 0])
        text.axis("off")
        text.text(0, 0.5, _wrap(caption, 28), va="center", fontsize=8)
        for column, (image_path, hit) in enumerate(found, start=1):
            axes = figure.add_subplot(grid[row, column])
            with Image.open(image_path) as image:
                axes.imshow(image.convert("RGB"))
            axes.set_xticks([])
            axes.set_yticks([])
            for spine in axes.spines.values():
                spine.set_edgecolor("tab:green" if hit else "lightgrey")
                spine.set_linewidth(4 if hit else 1)
            if row == 0:
                axes.set_title(f"#{column}", fontsize=8)
    figure.suptitle("Validation captions and their top drawings (own drawing outlined in green)")
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)


def similarity_histogram(positives: np.ndarray, negatives: np.ndarray, path: Path) -> Path:
    """Cosine similarity of matching caption/drawing pairs against non-matching ones."""
    figure = Figure(figsize=(7, 4), dpi=100)
    axes = figure.add_subplot()
    bins = np.linspace(min(positives.min(), negatives.min()), max(positives.max(), 1e-6), 50)
    axes.hist(
        negatives, bins=bins, density=True, alpha=0.6, label=f"non-matching ({negatives.size})"
    )
    axes.hist(positives, bins=bins, density=True, alpha=0.6, label=f"matching ({positives.size})")
    axes.set_xlabel("cosine similarity, caption to drawing")
    axes.set_ylabel("density")
    axes.set_title("Similarity of matching and non-matching pairs (validation)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)


def metrics_by_size(table: Mapping[str, Mapping[int, float]], path: Path, title: str) -> Path:
    """One line per metric (`table[metric][size]`) against the Matryoshka size."""
    figure = Figure(figsize=(7, 4), dpi=100)
    axes = figure.add_subplot()
    for metric, by_size in table.items():
        sizes = sorted(by_size)
        axes.plot(sizes, [by_size[size] for size in sizes], marker="o", label=metric)
    sizes = sorted({size for by_size in table.values() for size in by_size})
    axes.set_xscale("log", base=2)
    axes.set_xticks(sizes, [str(size) for size in sizes])
    axes.set_xlabel("embedding size (Matryoshka prefix)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)[:6])
