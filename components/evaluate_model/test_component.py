"""evaluate_model: held-out metrics as JSON, Markdown and MLflow metrics."""

import json
from pathlib import Path

import mlflow
from kfp import dsl
from PIL import Image

from components.evaluate_model.component import evaluate_model


def test_model_and_frozen_baselines_on_validation_and_test(data, artifact, trained_tiny):
    model = artifact(dsl.Model, "model")
    model.uri = str(trained_tiny)
    metrics, evaluation = artifact(dsl.Metrics, "metrics"), artifact(dsl.Artifact, "eval.json")
    report = artifact(dsl.Markdown, "report.md")
    evaluate_model.python_func("tiny", data, model, metrics, evaluation, report)
    results = json.loads(Path(evaluation.path).read_text())
    assert set(results) == {"validation", "test", "baselines"}
    assert set(results["baselines"]) == {"validation", "test"}
    primary = {"openclipart/t2i_recall@10", "movielens/hr@10"}
    for figures in (results["validation"], results["test"], *results["baselines"].values()):
        assert primary <= set(figures)
        assert all(0 <= v <= 1 for k, v in figures.items() if "recall" in k or "hr@" in k)
    # the MovieLens baseline is the real frozen MiniLM: well above chance (10 of 1,682 items)
    assert results["baselines"]["validation"]["movielens/hr@10"] > 3 * 10 / 1682
    text = Path(report.path).read_text()
    assert "Validation split" in text and "frozen baselines / movielens" in text
    assert (
        metrics.metadata["validation.openclipart.t2i_recall@10"]
        == (results["validation"]["openclipart/t2i_recall@10"])
    )
    (run,) = mlflow.search_runs(filter_string="tags.`sail.step` = 'evaluate'").itertuples()
    assert run.status == "FINISHED"
    # the pictures people look at in the UI (sail.tracking.pictures)
    client = mlflow.MlflowClient()
    pictures = {a.path for a in client.list_artifacts(run.run_id, "pictures")}
    assert pictures == {
        f"pictures/{name}"
        for name in (
            "retrieval_grid.png",
            "similarity_histogram.png",
            "metrics_by_size.png",
            "metrics_by_size.json",
            "movielens_users.html",
        )
    }
    folder = Path(mlflow.artifacts.download_artifacts(run_id=run.run_id, artifact_path="pictures"))
    with Image.open(folder / "retrieval_grid.png") as grid:
        assert grid.width > 600 and grid.height > 8 * 100  # 8 captions, a row each
    by_size = json.loads((folder / "metrics_by_size.json").read_text())
    assert set(by_size["MovieLens HR@10"]) == {"16", "32", "64"}  # tiny's Matryoshka sizes
    recall = by_size["text->image recall@10"]["64"]  # the full size: the very same vectors
    assert recall == results["validation"]["openclipart/t2i_recall@10"]
    users = (folder / "movielens_users.html").read_text()
    assert users.count("<tr>") == 1 + 5 and users.count("<li>") == 5 * 10
