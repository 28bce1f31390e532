"""register_model: every version becomes challenger; champion moves only when not worse."""

import json
from pathlib import Path

import mlflow
from kfp import dsl

from components.register_model.component import register_model


def _register(artifact, in_run, trained_tiny, run_id, metrics, tolerance=0.01):
    in_run(run_id)
    data = artifact(dsl.Dataset, "data", fingerprint="sha256:abc", snapshot="2026-11-29")
    model = artifact(dsl.Model, "model")
    model.uri = str(trained_tiny)
    evaluation = artifact(dsl.Artifact, f"{run_id}.json")
    Path(evaluation.path).write_text(json.dumps(metrics))
    report = artifact(dsl.Markdown, f"{run_id}.md")
    version = Path(artifact(dsl.Artifact, f"{run_id}.version").path)
    promoted = register_model.python_func(data, model, evaluation, tolerance, report, str(version))
    return (version.read_text(), promoted), Path(report.path).read_text()


def test_gate(home, in_run, artifact, trained_tiny):
    good = {"openclipart/t2i_recall@10": 0.30, "movielens/hr@10": 0.05}
    first, note = _register(artifact, in_run, trained_tiny, "run-1", good)
    assert first == ("1", True) and "champion" in note
    worse = {"openclipart/t2i_recall@10": 0.20, "movielens/hr@10": 0.05}
    second, note = _register(artifact, in_run, trained_tiny, "run-2", worse)
    assert second == ("2", False) and "t2i_recall" in note
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("sail-embedding", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("sail-embedding", "challenger").version) == "2"
    tags = client.get_model_version("sail-embedding", "2").tags
    assert tags["sail.pipeline_run_id"] == "run-2" and tags["sail.data_fingerprint"] == "sha256:abc"
    assert tags["sail.data_snapshot"] == "2026-11-29"
    within = {"openclipart/t2i_recall@10": 0.295, "movielens/hr@10": 0.05}
    third, _ = _register(artifact, in_run, trained_tiny, "run-3", within)
    assert third == ("3", True)


def test_a_retried_register_reuses_the_version_its_run_registered(
    home, in_run, artifact, trained_tiny
):
    metrics = {"openclipart/t2i_recall@10": 0.30, "movielens/hr@10": 0.05}
    first, _ = _register(artifact, in_run, trained_tiny, "run-1", metrics)
    retried, _ = _register(artifact, in_run, trained_tiny, "run-1", metrics)
    assert first == retried == ("1", True)
    assert len(mlflow.MlflowClient().search_model_versions("name = 'sail-embedding'")) == 1
