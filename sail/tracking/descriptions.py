"""What the registry says about the model and each version, in Markdown (the MLflow UI renders
it): the data snapshot, the stages trained, the headline metrics against the frozen baselines on
both splits, and the gate's decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sail.tracking.names import metric_name

SPLITS = ("validation", "test")


@dataclass(frozen=True)
class VersionFacts:
    """What a version was made from and how it did."""

    version: str
    preset: str
    stage_steps: Mapping[str, int]
    snapshot: str
    fingerprint: str
    pipeline_run: str
    git_commit: str | None
    evaluation: Mapping[str, Mapping]  # {"validation", "test", "baselines": {...}}
    primary: Sequence[str]
    promoted: bool
    reason: str


def headline_metrics(evaluation: Mapping[str, Mapping], primary: Sequence[str]) -> dict[str, float]:
    """The primary metrics of the model and the frozen baselines on each split, by MLflow name:
    `<split>/<metric>` and `baseline/<split>/<metric>`."""
    figures = {}
    for split in SPLITS:
        for metric in primary:
            for prefix, source in (
                ("", evaluation[split]),
                ("baseline/", _baselines(evaluation, split)),
            ):
                value = _lookup(source, metric)
                if value is not None:
                    figures[metric_name(f"{prefix}{split}/{metric}")] = value
    return figures


def version_description(facts: VersionFacts) -> str:
    """Markdown for a model version: lineage, training, metrics against baselines, the verdict."""
    verdict = "promoted to **champion**" if facts.promoted else "**not promoted**"
    stages = " → ".join(f"{stage} {steps}" for stage, steps in facts.stage_steps.items())
    commit = f"`{facts.git_commit[:12]}`" if facts.git_commit else "unknown"
    trained = f"trained {stages} steps" if stages else "stages not recorded"
    lines = [
        f"Preset `{facts.preset}`, {trained}.",
        "",
        f"Data snapshot `{facts.snapshot}` (`{facts.fingerprint}`); pipeline run "
        f"`{facts.pipeline_run}`; source commit {commit}.",
        "",
        "| metric | split | model | frozen baseline |",
        "|---|---|---|---|",
    ]
    for split in SPLITS:
        for metric in facts.primary:
            model = _lookup(facts.evaluation[split], metric)
            baseline = _lookup(_baselines(facts.evaluation, split), metric)
            lines.append(f"| {metric} | {split} | {_cell(model)} | {_cell(baseline)} |")
    lines += [
        "",
        "The gate decides on validation; test is reported beside it.",
        "",
        f"Gate: {verdict}. {facts.reason}",
    ]
    return "\n".join(lines)


def model_description(name: str, matryoshka_dims: Sequence[int], champion: str) -> str:
    """Markdown for the registered model: what it is, how its aliases move, the champion now."""
    sizes = ", ".join(str(d) for d in matryoshka_dims)
    return "\n".join(
        [
            f"**{name}**: one omni-modal SAIL embedding encoder for text fields, images and video "
            "frames and audio, fused by a bidirectional transformer. It returns unit vectors; "
            f"any Matryoshka size ({sizes}) is a prefix of the full vector.",
            "",
            "Trained by the `sail-embedding` pipeline: content stages 1-3, then sequence-to-item "
            "and ID-to-item distillation.",
            "",
            "Aliases: `challenger` is the newest version; `champion` is the version the gate "
            "promoted (it beats each frozen baseline on validation data by the configured margin "
            "and is not worse than the previous champion). Publishing and serving use the "
            "champion.",
            "",
            f"Champion now: {champion}",
        ]
    )


def _baselines(evaluation: Mapping[str, Mapping], split: str) -> Mapping[str, float]:
    return evaluation.get("baselines", {}).get(split, {})


def _lookup(metrics: Mapping[str, float], metric: str) -> float | None:
    """`metric` in `metrics`, whether keyed by its own or its MLflow name."""
    wanted = metric_name(metric)
    for key, value in metrics.items():
        if metric_name(key) == wanted:
            return float(value)
    return None


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
