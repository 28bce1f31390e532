"""The model registry: versions with lineage tags, the `challenger` and `champion` aliases, and
the gate (`sail.tracking.gate`) that moves `champion` only to a version that beats the frozen
baselines and is not worse than the champion, on validation metrics of the same data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo

from sail.tracking import runs
from sail.tracking.descriptions import VersionFacts, model_description, version_description
from sail.tracking.gate import DEFAULT_POLICY, GateDecision, GatePolicy, decide
from sail.tracking.names import metric_name, numeric
from sail.tracking.runs import GIT_COMMIT_TAG, PIPELINE_RUN_TAG
from sail.tracking.store import connect

MODEL_NAME = "sail-embedding"
CHAMPION = "champion"
CHALLENGER = "challenger"
METRICS_TAG = "sail.metrics."  # + split: JSON {metric: value}
DATA_TAG = "sail.data_fingerprint"
PARENT_TAG = "sail.parent_model"
GATE_TAG = "sail.gate"
EVALUATED_ON_TAG = "sail.evaluated_on"
REPLACED_TAG = "sail.champion.replaced"  # on a champion: the version it took the alias from


def register(
    model: ModelInfo | str,
    *,
    pipeline_run_id: str,
    data_fingerprint: str,
    name: str = MODEL_NAME,
    parent_model: str | None = None,
    git_commit: str | None = None,
    tags: Mapping[str, str] | None = None,
    tracking_uri: str | None = None,
) -> str:
    """Register a logged model (its ModelInfo or model URI) as a new version of `name`.

    The version gets the lineage tags `sail.pipeline_run_id`, `sail.data_fingerprint`,
    `sail.git_commit` (given, or the current commit when known), `sail.parent_model` (the model
    this one was trained from, if any) and `tags`; the alias `challenger` moves to it.
    Returns the version number as a string.
    """
    connect(tracking_uri)
    uri = model.model_uri if isinstance(model, ModelInfo) else str(model)
    lineage = {PIPELINE_RUN_TAG: pipeline_run_id, DATA_TAG: data_fingerprint}
    if commit := git_commit or runs.git_commit():
        lineage[GIT_COMMIT_TAG] = commit
    if parent_model:
        lineage[PARENT_TAG] = parent_model
    all_tags = {**{str(k): str(v) for k, v in (tags or {}).items()}, **lineage}
    version = mlflow.register_model(uri, name, tags=all_tags).version
    mlflow.MlflowClient().set_registered_model_alias(name, CHALLENGER, str(version))
    return str(version)


def version_of_pipeline_run(name: str, pipeline_run_id: str) -> str | None:
    """The version of `name` that pipeline run `pipeline_run_id` registered, if any."""
    quoted = pipeline_run_id.replace("'", "\\'")
    found = mlflow.MlflowClient().search_model_versions(
        f"name = '{name}' and tags.`{PIPELINE_RUN_TAG}` = '{quoted}'"
    )
    return str(max(int(v.version) for v in found)) if found else None


def logged_model_id(name: str, version: str) -> str | None:
    """The id of the logged model (MLflow 3) a version was registered from, if any."""
    found = mlflow.MlflowClient().get_model_version(name, str(version))
    if found.model_id:
        return found.model_id
    source = found.source or ""  # the sqlite store leaves model_id empty; the source names it
    return source.removeprefix("models:/") if source.startswith("models:/m-") else None


def record_metrics(name: str, version: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """Store evaluation metrics (keys `<split>/<metric>`) on a version: one tag per split,
    `sail.metrics.<split>`, holding JSON {metric: value} (merged with what the tag held);
    returns them by MLflow metric name. The logged model carries them as model metrics too."""
    stored: dict[str, float] = {}
    by_split: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        number = numeric(value)
        if number is None:
            raise ValueError(f"metric {key!r} of {name} v{version} is not a number: {value!r}")
        if "/" not in key:
            raise ValueError(f"metric {key!r} of {name} v{version} names no split (<split>/...)")
        split, metric = metric_name(key).split("/", 1)
        by_split.setdefault(split, {})[metric] = stored[f"{split}/{metric}"] = number
    client = mlflow.MlflowClient()
    tags = client.get_model_version(name, str(version)).tags
    for split, figures in by_split.items():
        merged = {**json.loads(tags.get(METRICS_TAG + split, "{}")), **figures}
        client.set_model_version_tag(
            name, str(version), METRICS_TAG + split, json.dumps(merged, sort_keys=True)
        )
    return stored


def version_metrics(name: str, version: str) -> dict[str, float]:
    """The metrics recorded on a version, as `<split>/<metric>`."""
    tags = mlflow.MlflowClient().get_model_version(name, str(version)).tags
    return {
        f"{key[len(METRICS_TAG) :]}/{metric}": float(value)
        for key, text in tags.items()
        if key.startswith(METRICS_TAG)
        for metric, value in json.loads(text).items()
    }


def version_by_alias(name: str, alias: str) -> str | None:
    """The version an alias points to, or None when the alias (or the model) does not exist."""
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        # mlflow 3.17 answers a missing model with RESOURCE_DOES_NOT_EXIST but a missing alias
        # with INVALID_PARAMETER_VALUE ("... alias x not found."), like an invalid alias name
        missing_alias = error.error_code == "INVALID_PARAMETER_VALUE" and "not found" in str(error)
        if error.error_code == "RESOURCE_DOES_NOT_EXIST" or missing_alias:
            return None
        raise


def gate(
    name: str,
    version: str,
    evaluation: Mapping[str, Mapping[str, float]],
    data_fingerprint: str,
    policy: GatePolicy = DEFAULT_POLICY,
    evaluate_champion: Callable[[str], Mapping[str, float]] | None = None,
    tracking_uri: str | None = None,
) -> GateDecision:
    """Record the version's metrics, then move `champion` to it only when the gate's rule
    (`sail.tracking.gate`) passes on the validation metrics of `data_fingerprint`.

    `evaluation` holds `validation` and `test` metrics and the frozen `baselines` of both
    splits (what the evaluate step writes). When the champion's validation figures are not from
    this data (another snapshot, or none recorded), `evaluate_champion(version)` measures it on
    the current validation data first; without it, the gate refuses. After moving the alias it
    checks again: when another version took it meanwhile, the better of the two on this data
    keeps it. The decision is tagged on the version (`sail.gate`, `sail.gate.reason`,
    `sail.gate.champion`).
    """
    connect(tracking_uri)
    version = str(version)
    client = mlflow.MlflowClient()
    client.get_model_version(name, version)  # raises when the version does not exist
    rule = replace(policy, primary=tuple(metric_name(m) for m in policy.primary))
    candidate = {metric_name(k): v for k, v in evaluation["validation"].items()}
    baselines = {metric_name(k): v for k, v in evaluation["baselines"]["validation"].items()}
    for split in ("validation", "test"):
        record_metrics(name, version, {f"{split}/{k}": v for k, v in evaluation[split].items()})
    client.set_model_version_tag(name, version, EVALUATED_ON_TAG, data_fingerprint)
    holder = version_by_alias(name, CHAMPION)
    if holder == version:
        decision = GateDecision(True, f"v{version} is already the champion", champion=version)
    else:
        champion = None
        if holder is not None:  # unknown figures compare as missing, never as no champion
            champion = _champion_figures(name, holder, data_fingerprint, evaluate_champion) or {}
        decision = decide(candidate, baselines, champion, holder, rule)
    if decision.promoted:
        move_champion(name, version)
        winner = _settle(name, version, candidate, data_fingerprint, rule.primary)
        if winner != version:
            decision = GateDecision(
                False,
                f"refused: v{winner} took the champion alias meanwhile and is better on this data",
                decision.checks,
                winner,
            )
    client.set_model_version_tag(
        name, version, GATE_TAG, "promoted" if decision.promoted else "rejected"
    )
    client.set_model_version_tag(name, version, f"{GATE_TAG}.reason", decision.reason[:5000])
    client.set_model_version_tag(name, version, f"{GATE_TAG}.champion", holder or "none")
    return decision


def move_champion(name: str, version: str, *, remember: bool = True) -> str | None:
    """Point `champion` at `version`; return the version that held it. With `remember`, the
    version records which one it replaced (`sail.champion.replaced`), where a rollback goes."""
    client = mlflow.MlflowClient()
    holder = version_by_alias(name, CHAMPION)
    client.set_registered_model_alias(name, CHAMPION, str(version))
    if remember and holder != str(version):
        client.set_model_version_tag(name, str(version), REPLACED_TAG, holder or "none")
    return holder


def replaced_champion(name: str, version: str) -> str | None:
    """The version that `version` replaced as champion (None when it replaced none)."""
    tags = mlflow.MlflowClient().get_model_version(name, str(version)).tags
    replaced = tags.get(REPLACED_TAG) or tags.get(f"{GATE_TAG}.champion")
    return None if replaced in (None, "none") else replaced


def describe(name: str, facts: VersionFacts, matryoshka_dims: Sequence[int]) -> None:
    """Write the version's description (`facts`) and the registered model's (what it is, and
    the champion now: its validation figures, or why there is none)."""
    client = mlflow.MlflowClient()
    client.update_model_version(name, facts.version, description=version_description(facts))
    holder = version_by_alias(name, CHAMPION)
    if holder is None:
        champion = rejection(name) or "none"
    else:
        figures = version_metrics(name, holder)
        shown = [
            f"{metric} {figures[key]:.4f}"
            for metric in facts.primary
            if (key := metric_name(f"validation/{metric}")) in figures
        ]
        champion = f"version {holder}" + (f" (validation: {', '.join(shown)})" if shown else "")
    client.update_registered_model(
        name, description=model_description(name, matryoshka_dims, champion)
    )


def validation_metrics(name: str, version: str, data_fingerprint: str) -> dict[str, float] | None:
    """The version's validation metrics when they were measured on `data_fingerprint`."""
    tags = mlflow.MlflowClient().get_model_version(name, str(version)).tags
    if tags.get(EVALUATED_ON_TAG) != data_fingerprint:
        return None
    figures = json.loads(tags.get(METRICS_TAG + "validation", "{}"))
    return {metric: float(value) for metric, value in figures.items()} or None


def rejection(name: str) -> str | None:
    """Why there is no champion: the latest version's gate reason; None when there is one."""
    if version_by_alias(name, CHAMPION) is not None:
        return None
    try:
        versions = mlflow.MlflowClient().search_model_versions(f"name = '{name}'")
    except MlflowException:
        versions = []
    if not versions:
        return f"no version of {name} is registered yet"
    latest = max(versions, key=lambda v: int(v.version))
    reason = latest.tags.get(f"{GATE_TAG}.reason", "the gate has not judged it")
    return f"{name} has no champion: version {latest.version} was not promoted: {reason}"


def _champion_figures(name, holder, data_fingerprint, evaluate_champion):
    """The champion's validation metrics on this data: recorded, else measured now."""
    recorded = validation_metrics(name, holder, data_fingerprint)
    if recorded is not None or evaluate_champion is None:
        return recorded
    measured = {metric_name(k): v for k, v in evaluate_champion(holder).items()}
    record_metrics(name, holder, {f"validation/{k}": v for k, v in measured.items()})
    mlflow.MlflowClient().set_model_version_tag(name, holder, EVALUATED_ON_TAG, data_fingerprint)
    return measured


def _settle(name, version, candidate, data_fingerprint, primary) -> str:
    """Re-check after moving the alias: a racer that took it keeps it only when it is better on
    this data (primary metrics in order, then the higher version); returns the champion."""
    mine = (*[candidate[m] for m in primary], int(version))
    for _ in range(3):
        holder = version_by_alias(name, CHAMPION)
        if holder in (None, version):
            return version
        figures = validation_metrics(name, holder, data_fingerprint) or {}
        theirs = (*[figures.get(m, -math.inf) for m in primary], int(holder))
        if theirs > mine:
            return holder
        mlflow.MlflowClient().set_registered_model_alias(name, CHAMPION, version)
    return version_by_alias(name, CHAMPION) or version
