"""What each pipeline step does: the KFP components are thin wrappers around these functions.

Every step runs in its own process (a kfp task, a pod on a cluster) inside `step_scope`: a
scratch home of its own, the data from its input Dataset artifact, MLflow reached only through
$MLFLOW_TRACKING_URI. It attaches to the pipeline's parent MLflow run by the pipeline run id
($SAIL_PIPELINE_RUN_ID: set by the local runner, and on a cluster from the pod's `pipeline/runid`
label) and records itself as a nested run. Outputs are written under a partial name and renamed
into place when the step succeeds (`sail.pipeline.outputs`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sail.pipeline.outputs import staged, write_output
from sail.tracking.gate import GatePolicy

logger = logging.getLogger(__name__)

MODEL_NAME = "sail-embedding"
RUN_ID_ENV = "SAIL_PIPELINE_RUN_ID"


class StepEnvironmentError(RuntimeError):
    """A step started without what its pod must be given (run id, tracking URI)."""


def pipeline_run_id() -> str:
    """The pipeline run this step belongs to ($SAIL_PIPELINE_RUN_ID)."""
    run_id = os.environ.get(RUN_ID_ENV, "").strip()
    if not run_id:
        raise StepEnvironmentError(
            f"${RUN_ID_ENV} is not set: pipeline steps attach to their MLflow parent run by it "
            "(the local runner sets it; on Kubeflow it comes from the pod's pipeline/runid label)"
        )
    return run_id


def exported_model(training_dir: str | Path) -> Path:
    """The exported model inside a training stage's output folder."""
    from model_code.training.trainer import MODEL_DIR

    return Path(training_dir) / MODEL_DIR


@contextmanager
def tracked(step: str, params: dict | None = None, pipeline: dict | None = None) -> Iterator[str]:
    """The step's nested MLflow run under the pipeline's parent run (created on first use).

    The tracking server must answer at $MLFLOW_TRACKING_URI (checked first, in seconds). The
    nested run starts when the step's scope began (`step_scope`), so its duration is the step's.
    `params` are the step's; `pipeline` (the pipeline's parameters, given by the first step)
    go on the parent run, which is named from them (preset, profile, start time). The step's
    input data folder ($SAIL_DATA_DIR) is recorded as a dataset input of the step's run.
    """
    import mlflow

    from sail.pipeline.isolation import current_scope
    from sail.pipeline.profiles import profile_of, readable_parameters, run_title
    from sail.tracking.lineage import log_data_input
    from sail.tracking.runs import start_pipeline_run, step_run
    from sail.tracking.store import ENV_URI, check_reachable

    uri = os.environ.get(ENV_URI, "").strip()
    if not uri:
        raise StepEnvironmentError(
            f"${ENV_URI} is not set: pipeline steps log to a tracking server reached by URI "
            "(`make run` starts one; on a cluster it comes from the sail-platform-config ConfigMap)"
        )
    check_reachable(uri)
    scope = current_scope()
    began = scope.began if scope else None
    named = {}
    if pipeline:
        named = {
            "run_name": run_title(pipeline, began),
            "tags": {
                "sail.preset": str(pipeline.get("preset")),
                "sail.profile": profile_of(pipeline),
            },
        }
    parameters = readable_parameters(pipeline or {})
    parent = start_pipeline_run(pipeline_run_id(), parameters, started=began, **named)
    with step_run(parent, step, started=began) as run_id:
        if params:
            mlflow.log_params({k: str(v) for k, v in params.items()})
        log_data_input(None, context=step)  # the step's input Dataset, if it has one
        yield run_id


def ingest_data(
    out_dir: Path, data_uri: str, data_limit: int, pipeline: dict | None = None
) -> dict:
    """Prepare the run's data sets from the packaged sources or the newest snapshot under
    `data_uri`; records which snapshot in MLflow (params, tags and the dataset it produced).
    As the first step, it opens the pipeline's parent run with the `pipeline` parameters."""
    import mlflow

    from model_code.data.ingest import ingest
    from sail.tracking.lineage import log_data_input

    limit = data_limit or None
    params = {"data_uri": data_uri or "(packaged)", "data_limit": limit or "all"}
    with tracked("ingest_data", params, pipeline):
        with staged(out_dir) as partial:
            report = ingest(partial, data_uri, limit)
        summary = report.to_dict()
        mlflow.log_dict(summary, "snapshot.json")
        mlflow.set_tags(
            {"sail.data_snapshot": report.snapshot, "sail.data_fingerprint": report.fingerprint}
        )
        mlflow.log_metrics({f"rows/{name}": count for name, count in report.rows.items()})
        log_data_input(out_dir, context="ingested")
    return summary


def validate_data(data_root: Path, report_dir: Path) -> dict:
    """Great Expectations over every table of the ingested data; raises DataValidationError on a
    failure, after the HTML report is written and logged (so it is there to read)."""
    import mlflow

    from model_code.data.ingest import fingerprint, read_snapshot
    from sail.tracking.lineage import log_config
    from sail.validation import check, validate_prepared_data

    snapshot = read_snapshot(data_root)
    with tracked("validate_data", {"snapshot": snapshot.get("snapshot", "unknown")}):
        report = validate_prepared_data(Path(data_root), Path(report_dir))
        log_config("policy", report.policy)
        mlflow.log_artifacts(str(report_dir), "data_docs")
        mlflow.log_dict(report.to_dict(), "validation.json")
        for table, counts in report.statistics.items():
            mlflow.log_metric(f"expectations_failed/{table}", counts["failed"])
        check(report)
        digest = fingerprint(data_root)
        mlflow.set_tag("sail.data_fingerprint", digest)
        return {"fingerprint": digest, "tables": report.tables}


def train(
    preset: str,
    stage: str,
    steps: int,
    out_dir: Path,
    init: Path | None = None,
    teacher: Path | None = None,
    negatives: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict:
    """One training stage from the previous stage's model, loss curves logged to MLflow. A
    partial run folder left by a killed attempt is resumed from its last checkpoint. The
    finished folder (the step's artifact) keeps the exported model and metrics.jsonl: its
    checkpoints only served a resume, and no later step reads them. `overrides` replace
    settings of the stage config for this run (`steps`, when given, wins over theirs); the
    run logs them as the param `overrides` beside the resolved config."""
    from model_code.training.run import StageInputs, train_stage
    from model_code.training.trainer import CHECKPOINTS
    from sail.tracking.callback import MlflowTrainingCallback

    settings = {**(overrides or {}), **({"steps": steps} if steps else {})}
    params = {"preset": preset, "stage": stage, "steps": steps or "stage default"}
    if overrides:
        params["overrides"] = json.dumps(dict(overrides), sort_keys=True)
    with tracked(f"train_{stage}", params) as run_id, staged(out_dir, resume=True) as partial:
        resume = partial if (partial / CHECKPOINTS / "latest").is_file() else None
        mined = json.loads(Path(negatives).read_text()) if negatives else None
        result = train_stage(
            preset,
            stage,
            partial,
            init=init,
            resume=resume,
            synthetic=False,
            inputs=StageInputs(teacher=teacher, negatives=mined),
            callbacks=[MlflowTrainingCallback(run_id, stage)],
            **settings,
        )
        shutil.rmtree(partial / CHECKPOINTS)
    return {
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "final_loss": result.final_loss,
        "resumed": resume is not None,
    }


def train_teacher(out_path: Path) -> dict:
    """The collaborative ID teacher (BPR on training interactions), with its validation HR@10."""
    import mlflow

    from model_code.cre.teacher import TeacherConfig, train_catalogue_teacher
    from model_code.data.movielens import load_movielens
    from model_code.evaluation.suite import score_baseline
    from sail.tracking.names import metric_name

    config = TeacherConfig()
    with tracked("train_teacher", vars(config)):
        tables = load_movielens()
        began = time.time()
        teacher = train_catalogue_teacher(tables, config)
        seconds = time.time() - began
        with staged(out_path) as partial:
            teacher.save(partial)
        rows = [teacher.user_index[u] for u in tables["sequences"]["user_id"]]
        metrics = score_baseline(
            teacher.score_matrix()[rows], list(teacher.item_ids), tables, "validation"
        )
        metrics = {metric_name(f"validation/{k}"): float(v) for k, v in metrics.items()}
        mlflow.log_metrics({**metrics, "seconds": seconds})
        return metrics


def mine_negatives(preset: str, stage: str, init: Path, out_path: Path) -> dict:
    """The hard negatives of `stage`, mined with the previous stage's model, as JSON."""
    import mlflow

    from model_code.training.run import mine_stage_negatives
    from model_code.training.stages import load_stage
    from sail.tracking.lineage import log_config

    with tracked("mine_negatives", {"preset": preset}):
        log_config("stage", load_stage(stage).to_dict())
        mined = mine_stage_negatives(preset, stage, init, synthetic=False)
        write_output(out_path, json.dumps(mined))
        summary = {
            f"{name}/{key}": float(result[key])
            for name, result in mined.items()
            for key in ("threshold", "f1", "false_negatives")
        }
        mlflow.log_metrics(summary)
        return summary


def evaluate(preset: str, model_dir: Path, evaluation_path: Path, report_path: Path) -> dict:
    """The model and the frozen baselines of `preset` on the validation split (what the gate
    decides on) and the test split (reported beside it); JSON in `evaluation_path`
    ({"validation", "test", "baselines": {"validation", "test"}}), Markdown in `report_path`."""
    from model_code.evaluation.baselines import MINILM, RIDGE, frozen_baselines
    from model_code.evaluation.suite import embed_splits, split_metrics
    from sail.tracking.lineage import data_input
    from sail.tracking.pictures import log_evaluation_pictures
    from sail.tracking.reports import log_evaluation, markdown_table

    params = {"preset": preset, "decides_on": "validation", "baselines": f"{RIDGE}, {MINILM}"}
    with tracked("evaluate", params):
        dataset = data_input()
        embedder, vectors = embed_splits(Path(model_dir))
        figures = {split: split_metrics(found) for split, found in vectors.items()}
        log_evaluation_pictures(embedder, vectors["validation"])
        baselines = frozen_baselines(preset)
        report = []
        for split, metrics in figures.items():
            table = {"model": metrics, "frozen baselines": baselines[split]}
            log_evaluation(table, split, dataset=dataset)
            report.append(markdown_table(_by_metric(table), title=f"{split.title()} split"))
        evaluation = {**figures, "baselines": baselines}
        write_output(evaluation_path, json.dumps(evaluation, indent=2))
        write_output(report_path, "\n".join(report))
        return evaluation


@dataclass
class Registration:
    version: str
    promoted: bool
    reason: str


def register(
    model_dir: Path,
    evaluation: dict,
    fingerprint: str,
    policy: GatePolicy,
    snapshot: str | None = None,
) -> Registration:
    """Log the model as a pyfunc, register a version (alias challenger; lineage: the pipeline
    run, the data fingerprint and `snapshot`), then let the gate decide on the validation
    metrics whether it becomes the champion (re-measuring the champion on this data when its
    figures are from other data). A retry of the same pipeline run reuses the version its first
    attempt registered instead of registering another."""
    import mlflow
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

    from model_code.config import ModelConfig
    from model_code.factory import CONFIG_FILE
    from sail.tracking.descriptions import VersionFacts, version_description
    from sail.tracking.pyfunc import log_model
    from sail.tracking.registry import describe, gate, version_of_pipeline_run
    from sail.tracking.registry import register as register_version
    from sail.tracking.runs import git_commit

    run_id = pipeline_run_id()
    params = {"baseline_margin": policy.baseline_margin, "tolerance": policy.tolerance}
    with tracked("register", {**params, "primary": policy.primary, "decides_on": "validation"}):
        version = version_of_pipeline_run(MODEL_NAME, run_id)
        if version is None:
            info = log_model(Path(model_dir))
            version = register_version(
                info,
                pipeline_run_id=run_id,
                data_fingerprint=fingerprint,
                name=MODEL_NAME,
                tags={"sail.data_snapshot": snapshot} if snapshot else None,
            )
        decision = gate(MODEL_NAME, version, evaluation, fingerprint, policy, _measure_validation)
        mlflow.log_dict(decision.to_dict(), "gate.json")
        verdict = "promoted" if decision.promoted else "rejected"
        tags = {
            "sail.model_version": version,
            "sail.gate": verdict,
            "sail.gate.reason": decision.reason[:5000],
        }
        mlflow.set_tags(tags)
        parent = _log_outcome(version, evaluation, policy, tags)
        config = ModelConfig.load(Path(model_dir) / CONFIG_FILE)
        facts = VersionFacts(
            version=version,
            preset=config.name,
            stage_steps=_stage_steps(parent),
            snapshot=snapshot or "unknown",
            fingerprint=fingerprint,
            pipeline_run=run_id,
            git_commit=git_commit(),
            evaluation=evaluation,
            primary=policy.primary,
            promoted=decision.promoted,
            reason=decision.reason,
        )
        describe(MODEL_NAME, facts, config.matryoshka_dims)
        mlflow.MlflowClient().set_tag(parent, MLFLOW_RUN_NOTE, version_description(facts))
        return Registration(version, decision.promoted, decision.reason)


def _log_outcome(version: str, evaluation: dict, policy: GatePolicy, tags: dict) -> str:
    """The evaluation on the logged model (linked to the step's data) and the headline figures
    and verdict on the pipeline's parent run, whose id is returned."""
    import mlflow
    from mlflow.entities import RunTag
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    from sail.tracking.descriptions import headline_metrics
    from sail.tracking.lineage import data_input
    from sail.tracking.names import metric_name
    from sail.tracking.registry import logged_model_id

    client = mlflow.MlflowClient()
    dataset = data_input()
    figures = {
        metric_name(f"{split}/{key}"): float(value)
        for split in ("validation", "test")
        for key, value in evaluation[split].items()
    }
    mlflow.log_metrics(figures, model_id=logged_model_id(MODEL_NAME, version), dataset=dataset)
    parent = client.get_run(mlflow.active_run().info.run_id).data.tags[MLFLOW_PARENT_RUN_ID]
    mlflow.log_metrics(headline_metrics(evaluation, policy.primary), run_id=parent)
    client.log_batch(parent, tags=[RunTag(key, value) for key, value in tags.items()])
    return parent


def _stage_steps(parent: str) -> dict[str, int]:
    """Steps per stage from the parent run's pipeline parameters ({} when it has none)."""
    import mlflow

    from sail.pipeline.profiles import stage_steps

    parameters = mlflow.MlflowClient().get_run(parent).data.params
    return stage_steps(parameters) if "content1_steps" in parameters else {}


def _measure_validation(version: str) -> dict[str, float]:
    """A registered version's validation metrics on this step's data."""
    from model_code.evaluation.suite import evaluate_model
    from sail.tracking.pyfunc import model_dir_from_uri

    return evaluate_model(model_dir_from_uri(f"models:/{MODEL_NAME}/{version}"), "validation")


def registration_markdown(registration: Registration) -> str:
    """The registry outcome as a short Markdown note (a pipeline artifact)."""
    alias = "champion" if registration.promoted else "challenger"
    return (
        f"# {MODEL_NAME} version {registration.version}\n\n"
        f"Alias: **{alias}**. Gate: {registration.reason}.\n"
    )


def publish(version: str, dim: int) -> dict:
    """Embed the catalogues (of the input Dataset) with the registered version and publish them
    to the feature store that $SAIL_FEATURE_STORE or $SAIL_FEAST_CONFIG names."""
    import mlflow

    from sail.feature_store.publish import publish as publish_embeddings
    from sail.feature_store.repo import check_store
    from sail.tracking.pyfunc import model_dir_from_uri

    with tracked("publish", {"model_version": version, "dim": dim}):
        check_store()
        model_dir = model_dir_from_uri(f"models:/{MODEL_NAME}/{version}")
        report = publish_embeddings(model_dir, version, dim=dim)
        summary = report.to_dict()
        mlflow.log_dict(summary, "publish.json")
        return summary


class DeployRolledBack(RuntimeError):
    """The new version failed on the cluster and the previous one serves again."""


def deploy(version: str, out_path: Path) -> dict:
    """Render the InferenceService for the pinned version (models:/sail-embedding/VERSION) and,
    with a cluster configured, roll it out (`sail.deploy.deploy.deploy`); its manifest is written
    to `out_path`. Then the catalogue follows what serves (`sail.feature_store.online.follow`):
    the served versions' rows online, the stable version the default, the rest retired. A
    rolled-back canary fails the step (DeployRolledBack) once that is recorded."""
    import mlflow

    from sail.deploy.deploy import deploy as deploy_endpoint
    from sail.deploy.traffic import stable_version
    from sail.feature_store.online import follow

    with tracked("deploy", {"model_version": version}):
        result = deploy_endpoint(f"models:/{MODEL_NAME}/{version}", version, Path.cwd())
        mlflow.log_artifact(str(result.manifest))
        with staged(out_path) as partial:
            shutil.copyfile(result.manifest, partial)
        catalogue = follow(result.served, stable_version(result.served)).summary()
        summary = {
            "manifest": str(out_path),
            "serve": result.serve_command,
            "served": result.served,
            "catalogue": catalogue,
        }
        mlflow.set_tag("sail.catalogue", catalogue)
        if result.rollout is not None:
            summary |= {"rollout": result.rollout.action, "report": result.rollout.report}
            mlflow.set_tag("sail.deploy", result.rollout.report)
        if result.rolled_back:
            raise DeployRolledBack(result.rollout.report)
        return summary


def finish(state: str) -> str:
    """Close the parent run with the pipeline's final state, after drawing the loss of every
    stage that trained on one chart in it (a chart that cannot be drawn is logged, and the run
    still closes)."""
    from sail.tracking.pictures import log_stage_losses
    from sail.tracking.runs import finish_pipeline_run, start_pipeline_run
    from sail.tracking.store import ENV_URI, check_reachable

    check_reachable(os.environ.get(ENV_URI, ""))
    status = {"SUCCEEDED": "FINISHED", "CANCELLED": "KILLED"}.get(state.upper(), "FAILED")
    parent = start_pipeline_run(pipeline_run_id(), {})
    try:
        log_stage_losses(parent)
    except Exception:  # a picture must never leave the run open
        logger.exception("could not draw the stages' losses in run %s", parent)
    finish_pipeline_run(parent, status)
    return status


def _by_metric(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Rows "<model> / <data set>" with the data set's metrics as columns (short headers)."""
    rows: dict[str, dict[str, float]] = {}
    for model, metrics in table.items():
        for key, value in metrics.items():
            dataset, name = key.split("/", 1)
            rows.setdefault(f"{model} / {dataset}", {})[name] = value
    return rows
