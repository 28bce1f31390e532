"""register_model: every version becomes challenger; champion moves only past the gate."""

import json
from pathlib import Path

import mlflow
from kfp import dsl

from components.register_model.component import register_model

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


def test_a_retried_register_reuses_the_version_its_run_registered(
    home, in_run, artifact, trained_tiny
):
    metrics = {"openclipart/t2i_recall@10": 0.30, "movielens/hr@10": 0.05}
    first, _ = _register(artifact, in_run, trained_tiny, "run-1", metrics)
    retried, _ = _register(artifact, in_run, trained_tiny, "run-1", metrics)
    assert first == retried == ("1", True)
    assert len(mlflow.MlflowClient().search_model_versions("name = 'sail-embedding'")) == 1
