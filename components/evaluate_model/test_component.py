"""evaluate_model: held-out metrics as JSON, Markdown and MLflow metrics."""

import json
from pathlib import Path

import mlflow
from kfp import dsl

from components.evaluate_model.component import evaluate_model


def test_every_held_out_metric_is_reported(data, artifact, trained_tiny):
    model = artifact(dsl.Model, "model")
    model.uri = str(trained_tiny)
    metrics, evaluation = artifact(dsl.Metrics, "metrics"), artifact(dsl.Artifact, "eval.json")
    report = artifact(dsl.Markdown, "report.md")
    evaluate_model.python_func(data, model, metrics, evaluation, report)
    results = json.loads(Path(evaluation.path).read_text())
    assert {"openclipart/t2i_recall@10", "movielens/hr@10"} <= set(results)
    assert all(0 <= v <= 1 for k, v in results.items() if "recall" in k or "hr@" in k)
    assert "t2i_recall@10" in Path(report.path).read_text()
    (run,) = mlflow.search_runs(filter_string="tags.`sail.step` = 'evaluate'").itertuples()
    assert run.status == "FINISHED"
