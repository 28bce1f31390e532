"""train_stage: a stage trains from the previous stage's model artifact and logs to MLflow."""

import math

import mlflow
from kfp import dsl

from components.train_stage.component import train_stage


def test_a_stage_trains_from_the_previous_model_and_logs_its_curve(data, artifact, trained_tiny):
    model, metrics = artifact(dsl.Model, "model"), artifact(dsl.Metrics, "metrics")
    init = artifact(dsl.Model, "init")
    init.uri = str(trained_tiny)
    train_stage.python_func("tiny", "content2", 3, data, model, metrics, init=init)
    assert (model.path + "/model/config.json") and math.isfinite(metrics.metadata["final_loss"])
    assert model.metadata["model_dir"] == "model" and metrics.metadata["steps"] == 3
    (run,) = mlflow.search_runs(filter_string="tags.`sail.step` = 'train_content2'").itertuples()
    history = mlflow.MlflowClient().get_metric_history(run.run_id, "loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert "plots/loss_content2.png" in [
        a.path for a in mlflow.MlflowClient().list_artifacts(run.run_id, "plots")
    ]
