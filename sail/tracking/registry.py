"""The model registry: versions with lineage tags, the `challenger` and `champion` aliases, and
the gate that promotes a version to champion only when it is not worse on the primary metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo

from sail.tracking import runs
from sail.tracking.names import metric_name, numeric
from sail.tracking.runs import GIT_COMMIT_TAG, PIPELINE_RUN_TAG
from sail.tracking.store import connect

MODEL_NAME = "sail-embedding"
CHAMPION = "champion"
CHALLENGER = "challenger"
METRIC_TAG = "metric."
DATA_TAG = "sail.data_fingerprint"
PARENT_TAG = "sail.parent_model"
GATE_TAG = "sail.gate"


@dataclass
class GateDecision:
    """The gate's verdict on one version against the champion (None when there was none).

    `challenger` and `champion` hold `version` and `metrics`; `deltas` is challenger minus
    champion for each primary metric both have.
    """

    promoted: bool
    reason: str
    challenger: dict[str, Any]
    champion: dict[str, Any] | None
    deltas: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def record_metrics(name: str, version: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """Store evaluation metrics on a version as tags `metric.<name>`; returns them by tag name."""
    stored = {}
    for key, value in metrics.items():
        number = numeric(value)
        if number is None:
            raise ValueError(f"metric {key!r} of {name} v{version} is not a number: {value!r}")
        stored[metric_name(key)] = number
    client = mlflow.MlflowClient()
    for key, number in stored.items():
        client.set_model_version_tag(name, str(version), METRIC_TAG + key, repr(number))
    return stored


def version_metrics(name: str, version: str) -> dict[str, float]:
    """The metrics recorded on a version (tags `metric.<name>`), by metric name."""
    tags = mlflow.MlflowClient().get_model_version(name, str(version)).tags
    return {k[len(METRIC_TAG) :]: float(v) for k, v in tags.items() if k.startswith(METRIC_TAG)}


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


def promote_if_not_worse(
    name: str,
    version: str,
    metrics: Mapping[str, float],
    primary: Sequence[str],
    tolerance: float = 0.0,
    tracking_uri: str | None = None,
) -> GateDecision:
    """Record `metrics` on the version, then move `champion` to it when there is no champion or
    every primary metric (higher is better) satisfies new >= champion - tolerance.

    Otherwise the champion stays and the reason names each worse metric and by how much. A
    primary metric the champion never recorded is not compared (the reason says so). The
    decision is tagged on the version: `sail.gate` = promoted | rejected, `sail.gate.reason`,
    `sail.gate.champion` (the champion it was compared with).
    """
    connect(tracking_uri)
    version = str(version)
    if not primary:
        raise ValueError("the gate needs at least one primary metric")
    if tolerance < 0 or math.isnan(tolerance):
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    missing = [m for m in primary if m not in metrics]
    if missing:
        raise ValueError(f"{name} v{version}: primary metric(s) {missing} not in the metrics given")
    client = mlflow.MlflowClient()
    client.get_model_version(name, version)  # raises when the version does not exist
    new = record_metrics(name, version, metrics)
    challenger = {"version": version, "metrics": new}
    champion_version = version_by_alias(name, CHAMPION)
    if champion_version is None:
        decision = GateDecision(True, "no champion yet", challenger, None)
    elif champion_version == version:
        old = version_metrics(name, version)
        champion = {"version": version, "metrics": old}
        decision = GateDecision(True, f"v{version} is already the champion", challenger, champion)
    else:
        champion = {"version": champion_version, "metrics": version_metrics(name, champion_version)}
        decision = _compare(challenger, champion, primary, tolerance)
    if decision.promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(
        name, version, GATE_TAG, "promoted" if decision.promoted else "rejected"
    )
    client.set_model_version_tag(name, version, f"{GATE_TAG}.reason", decision.reason)
    client.set_model_version_tag(name, version, f"{GATE_TAG}.champion", champion_version or "none")
    return decision


def _compare(
    challenger: dict[str, Any], champion: dict[str, Any], primary: Sequence[str], tolerance: float
) -> GateDecision:
    """The not-worse rule over the primary metrics, with the reason spelled out."""
    deltas, worse, unknown = {}, [], []
    for metric in primary:
        key = metric_name(metric)
        new = challenger["metrics"][key]
        old = champion["metrics"].get(key)
        if old is None:
            unknown.append(metric)
            continue
        deltas[metric] = new - old
        if not new >= old - tolerance:  # NaN counts as worse
            worse.append(
                f"{metric} {new:.4f} < champion v{champion['version']} {old:.4f} "
                f"(delta {new - old:+.4f}, tolerance {tolerance:g})"
            )
    note = f"; not compared (champion has no value): {', '.join(unknown)}" if unknown else ""
    if worse:
        reason = "worse than the champion: " + "; ".join(worse) + note
        return GateDecision(False, reason, challenger, champion, deltas)
    compared = ", ".join(f"{m} {d:+.4f}" for m, d in deltas.items()) or "nothing comparable"
    reason = f"not worse than champion v{champion['version']} ({compared})" + note
    return GateDecision(True, reason, challenger, champion, deltas)
