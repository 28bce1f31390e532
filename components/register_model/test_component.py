"""register_model: every version becomes challenger; champion moves only past the gate."""

import json
from pathlib import Path

import mlflow
from kfp import dsl

from components.register_model.component import register_model
from sail.tracking.registry import logged_model_id

BASELINES = {"openclipart/t2i_recall@10": 0.25, "movielens/hr@10": 0.03}


def _register(artifact, in_run, trained_tiny, run_id, metrics, margin=0.01):
    in_run(run_id)
    data = artifact(dsl.Dataset, "data", fingerprint="sha256:abc", snapshot="2026-11-29")
    model = artifact(dsl.Model, "model")
    model.uri = str(trained_tiny)
    evaluation = artifact(dsl.Artifact, f"{run_id}.json")
    figures = {"validation": metrics, "test": metrics}
    figures["baselines"] = {"validation": BASELINES, "test": BASELINES}
    Path(evaluation.path).write_text(json.dumps(figures))
    report = artifact(dsl.Markdown, f"{run_id}.md")
    version = Path(artifact(dsl.Artifact, f"{run_id}.version").path)
    promoted = register_model.python_func(
        data, model, evaluation, 0.01, margin, report, str(version)
    )
    return (version.read_text(), promoted), Path(report.path).read_text()


def test_gate(home, in_run, artifact, trained_tiny):
    below = {"openclipart/t2i_recall@10": 0.255, "movielens/hr@10": 0.05}
    first, note = _register(artifact, in_run, trained_tiny, "run-0", below)
    assert first == ("1", False) and "frozen baseline" in note  # fails closed: no champion
    good = {"openclipart/t2i_recall@10": 0.30, "movielens/hr@10": 0.05}
    second, note = _register(artifact, in_run, trained_tiny, "run-1", good)
    assert second == ("2", True) and "champion" in note
    worse = {"openclipart/t2i_recall@10": 0.28, "movielens/hr@10": 0.05}
    third, note = _register(artifact, in_run, trained_tiny, "run-2", worse)
    assert third == ("3", False) and "t2i_recall" in note and "champion v2" in note
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("sail-embedding", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("sail-embedding", "challenger").version) == "3"
    tags = client.get_model_version("sail-embedding", "3").tags
    assert tags["sail.pipeline_run_id"] == "run-2" and tags["sail.data_fingerprint"] == "sha256:abc"
    assert tags["sail.data_snapshot"] == "2026-11-29"
    within = {"openclipart/t2i_recall@10": 0.295, "movielens/hr@10": 0.05}
    fourth, _ = _register(artifact, in_run, trained_tiny, "run-3", within)
    assert fourth == ("4", True)
    (run,) = mlflow.search_runs(
        filter_string="tags.`sail.step` = 'register' and tags.`sail.model_version` = '1'"
    ).itertuples()
    assert mlflow.get_run(run.run_id).data.tags["sail.gate"] == "rejected"


def test_the_outcome_is_readable_in_the_registry_and_the_runs(home, in_run, artifact, trained_tiny):
    below = {"openclipart/t2i_recall@10": 0.255, "movielens/hr@10": 0.05}
    _register(artifact, in_run, trained_tiny, "run-0", below)
    good = {"openclipart/t2i_recall@10": 0.30, "movielens/hr@10": 0.05}
    _register(artifact, in_run, trained_tiny, "run-1", good)
    client = mlflow.MlflowClient()
    first = client.get_model_version("sail-embedding", "1").description
    assert "| openclipart/t2i_recall@10 | validation | 0.2550 | 0.2500 |" in first
    assert "**not promoted**" in first and "0.2550 < 0.2600" in first
    assert "`2026-11-29` (`sha256:abc`)" in first and "`run-0`" in first
    second = client.get_model_version("sail-embedding", "2")
    assert "promoted to **champion**" in second.description
    described = client.get_registered_model("sail-embedding").description
    assert "Champion now: version 2 (validation: openclipart/t2i_recall@10 0.3000" in described
    # the evaluation on the logged model, and the headline figures on the pipeline's parent run
    logged = client.get_logged_model(logged_model_id("sail-embedding", "2"))
    on_model = {(m.key, m.value) for m in logged.metrics}
    assert ("validation/openclipart/t2i_recall_10", 0.30) in on_model
    assert ("test/movielens/hr_10", 0.05) in on_model
    (parent,) = mlflow.search_runs(
        filter_string="tags.`sail.role` = 'pipeline' and tags.`sail.pipeline_run_id` = 'run-1'"
    ).itertuples()
    parent = client.get_run(parent.run_id).data
    assert parent.metrics["validation/openclipart/t2i_recall_10"] == 0.30
    assert parent.metrics["baseline/validation/openclipart/t2i_recall_10"] == 0.25
    assert parent.tags["sail.gate"] == "promoted" and parent.tags["sail.model_version"] == "2"
    assert parent.tags["mlflow.note.content"] == second.description  # the run's description


def test_a_retried_register_reuses_the_version_its_run_registered(
    home, in_run, artifact, trained_tiny
):
    metrics = {"openclipart/t2i_recall@10": 0.30, "movielens/hr@10": 0.05}
    first, _ = _register(artifact, in_run, trained_tiny, "run-1", metrics)
    retried, _ = _register(artifact, in_run, trained_tiny, "run-1", metrics)
    assert first == retried == ("1", True)
    assert len(mlflow.MlflowClient().search_model_versions("name = 'sail-embedding'")) == 1
