"""What each pipeline step does: the KFP components are thin wrappers around these functions.

Every step runs in its own process (a kfp task), attaches to the pipeline's parent MLflow run by
the pipeline run id, and records itself as a nested run. Paths in and out are plain folders and
files (the components map them to typed KFP artifacts).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MODEL_NAME = "sail-embedding"
PRIMARY_METRICS = ("openclipart/t2i_recall@10", "movielens/hr@10")


def use_home(sail_home: str) -> None:
    """Point SAIL_HOME (data, MLflow store, feature store, caches) at `sail_home` when given."""
    import os

    if sail_home:
        os.environ["SAIL_HOME"] = sail_home


def exported_model(training_dir: str | Path) -> Path:
    """The exported model inside a training stage's output folder."""
    from model_code.training.trainer import MODEL_DIR

    return Path(training_dir) / MODEL_DIR


@contextmanager
def tracked(pipeline_run_id: str, step: str, params: dict | None = None) -> Iterator[str]:
    """The step's nested MLflow run under the pipeline's parent run (created on first use)."""
    import mlflow

    from sail.tracking.runs import start_pipeline_run, step_run

    parent = start_pipeline_run(pipeline_run_id, {})
    with step_run(parent, step) as run_id:
        if params:
            mlflow.log_params({k: str(v) for k, v in params.items()})
        yield run_id


def data_fingerprint(data_root: Path) -> str:
    """One fingerprint over the prepared data sets' manifests (their files' digests)."""
    import hashlib

    digest = hashlib.sha256()
    for manifest in sorted(Path(data_root).glob("*/manifest.json")):
        digest.update(manifest.parent.name.encode())
        digest.update(json.loads(manifest.read_text())["fingerprint"].encode())
    return f"sha256:{digest.hexdigest()}"


def validate_data(pipeline_run_id: str, report_dir: Path) -> dict:
    """Great Expectations over every prepared table; raises DataValidationError on a failure,
    after the HTML report is written and logged (so it is there to read)."""
    import mlflow

    from model_code.paths import data_dir
    from sail.validation import check, validate_prepared_data

    with tracked(pipeline_run_id, "validate_data", {"data_root": data_dir()}):
        report = validate_prepared_data(data_dir(), Path(report_dir))
        mlflow.log_artifacts(str(report_dir), "data_docs")
        mlflow.log_dict(report.to_dict(), "validation.json")
        for table, counts in report.statistics.items():
            mlflow.log_metric(f"expectations_failed/{table}", counts["failed"])
        check(report)
        fingerprint = data_fingerprint(data_dir())
        mlflow.set_tag("sail.data_fingerprint", fingerprint)
        return {"root": str(data_dir()), "fingerprint": fingerprint, "tables": report.tables}


def train(
    pipeline_run_id: str,
    preset: str,
    stage: str,
    steps: int,
    out_dir: Path,
    init: Path | None = None,
    teacher: Path | None = None,
    negatives: Path | None = None,
) -> dict:
    """One training stage from the previous stage's model, loss curves logged to MLflow."""
    from model_code.training.run import StageInputs, train_stage
    from sail.tracking.callback import MlflowTrainingCallback

    params = {"preset": preset, "stage": stage, "steps": steps or "stage default"}
    with tracked(pipeline_run_id, f"train_{stage}", params) as run_id:
        mined = json.loads(Path(negatives).read_text()) if negatives else None
        result = train_stage(
            preset,
            stage,
            Path(out_dir),
            steps=steps or None,
            init=init,
            synthetic=False,
            inputs=StageInputs(teacher=teacher, negatives=mined),
            callbacks=[MlflowTrainingCallback(run_id, stage)],
        )
        return {
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "final_loss": result.final_loss,
            "model_dir": str(result.model_dir),
        }


def train_teacher(pipeline_run_id: str, out_path: Path) -> dict:
    """The collaborative ID teacher (BPR on training interactions), with its validation HR@10."""
    import mlflow

    from model_code.cre.teacher import TeacherConfig, train_bpr
    from model_code.data.movielens import load_movielens
    from model_code.evaluation.suite import score_baseline
    from sail.tracking.names import metric_name

    config = TeacherConfig()
    with tracked(pipeline_run_id, "train_teacher", vars(config)):
        tables = load_movielens()
        began = time.time()
        teacher = train_bpr(
            tables["interactions"], config, item_ids=list(tables["items"]["item_id"])
        )
        seconds = time.time() - began
        teacher.save(Path(out_path))
        rows = [teacher.user_index[u] for u in tables["sequences"]["user_id"]]
        metrics = score_baseline(
            teacher.score_matrix()[rows], list(teacher.item_ids), tables, "validation"
        )
        metrics = {metric_name(f"validation/{k}"): float(v) for k, v in metrics.items()}
        mlflow.log_metrics({**metrics, "seconds": seconds})
        return metrics


def mine_negatives(pipeline_run_id: str, preset: str, stage: str, init: Path, out_path: Path):
    """The hard negatives of `stage`, mined with the previous stage's model, as JSON."""
    import mlflow

    from model_code.training.run import mine_stage_negatives

    with tracked(pipeline_run_id, "mine_negatives", {"preset": preset, "stage": stage}):
        mined = mine_stage_negatives(preset, stage, init, synthetic=False)
        Path(out_path).write_text(json.dumps(mined))
        summary = {
            f"{name}/{key}": float(result[key])
            for name, result in mined.items()
            for key in ("threshold", "f1", "false_negatives")
        }
        mlflow.log_metrics(summary)
        return summary


def evaluate(pipeline_run_id: str, model_dir: Path, report_path: Path) -> dict[str, float]:
    """Every held-out test metric of the model; a Markdown table is written to `report_path`."""
    from model_code.evaluation.suite import evaluate_model
    from sail.tracking.reports import log_evaluation, markdown_table

    with tracked(pipeline_run_id, "evaluate"):
        metrics = evaluate_model(Path(model_dir), split="test")
        table = _by_dataset(metrics)
        log_evaluation(table, "test")
        Path(report_path).write_text(markdown_table(table, title="Held-out test metrics"))
        return metrics


@dataclass
class Registration:
    version: str
    promoted: bool
    reason: str


def register(
    pipeline_run_id: str,
    model_dir: Path,
    metrics: dict[str, float],
    fingerprint: str,
    tolerance: float,
    primary: tuple[str, ...] = PRIMARY_METRICS,
) -> Registration:
    """Log the model as a pyfunc, register a version (alias challenger), then let the gate
    decide whether it becomes the champion."""
    import mlflow

    from sail.tracking.pyfunc import log_model
    from sail.tracking.registry import promote_if_not_worse
    from sail.tracking.registry import register as register_version

    with tracked(pipeline_run_id, "register", {"tolerance": tolerance, "primary": primary}):
        info = log_model(Path(model_dir))
        version = register_version(
            info, pipeline_run_id=pipeline_run_id, data_fingerprint=fingerprint, name=MODEL_NAME
        )
        decision = promote_if_not_worse(MODEL_NAME, version, metrics, list(primary), tolerance)
        mlflow.log_dict(decision.to_dict(), "gate.json")
        mlflow.set_tags({"sail.model_version": version, "sail.gate": decision.promoted})
        return Registration(version, decision.promoted, decision.reason)


def registration_markdown(registration: Registration) -> str:
    """The registry outcome as a short Markdown note (a pipeline artifact)."""
    alias = "champion" if registration.promoted else "challenger"
    return (
        f"# {MODEL_NAME} version {registration.version}\n\n"
        f"Alias: **{alias}**. Gate: {registration.reason}.\n"
    )


def publish(pipeline_run_id: str, version: str, dim: int) -> dict:
    """Embed the catalogues with the registered version and publish them to the feature store."""
    import mlflow

    from sail.feature_store.publish import publish as publish_embeddings
    from sail.tracking.pyfunc import model_dir_from_uri

    with tracked(pipeline_run_id, "publish", {"model_version": version, "dim": dim}):
        model_dir = model_dir_from_uri(f"models:/{MODEL_NAME}/{version}")
        report = publish_embeddings(model_dir, version, dim=dim)
        summary = report.to_dict()
        mlflow.log_dict(summary, "publish.json")
        return summary


def deploy(pipeline_run_id: str, version: str, out_dir: Path) -> dict:
    """Render (and with a cluster configured, apply) the InferenceService for the version."""
    import mlflow

    from sail.deploy.deploy import deploy as deploy_endpoint

    with tracked(pipeline_run_id, "deploy", {"model_version": version}):
        result = deploy_endpoint(f"models:/{MODEL_NAME}/{version}", version, Path(out_dir))
        mlflow.log_artifact(str(result.manifest))
        return {"manifest": str(result.manifest), "serve": result.serve_command}


def finish(pipeline_run_id: str, state: str) -> str:
    """Close the parent run with the pipeline's final state."""
    from sail.tracking.runs import finish_pipeline_run, start_pipeline_run

    status = {"SUCCEEDED": "FINISHED", "CANCELLED": "KILLED"}.get(state.upper(), "FAILED")
    finish_pipeline_run(start_pipeline_run(pipeline_run_id, {}), status)
    return status


def _by_dataset(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        dataset, name = key.split("/", 1)
        table.setdefault(dataset, {})[name] = value
    return table
