"""train_stage: a stage trains from the previous stage's model artifact and logs to MLflow."""

import json
import math

import mlflow
from kfp import dsl

from components.train_stage.component import train_stage
from model_code.training.stages import load_stage


def test_a_stage_trains_from_the_previous_model_and_logs_its_curve_and_settings(
    data, artifact, trained_tiny
):
    model, metrics = artifact(dsl.Model, "model"), artifact(dsl.Metrics, "metrics")
    init = artifact(dsl.Model, "init")
    init.uri = str(trained_tiny)
    overrides = {"content2": {"lr": 3e-5, "head_lr_scale": 4}, "content1": {"lr": 1.0}}
    train_stage.python_func(
        "tiny", "content2", 3, data, model, metrics, init=init, stage_overrides=overrides
    )
    assert (model.path + "/model/config.json") and math.isfinite(metrics.metadata["final_loss"])
    assert model.metadata["model_dir"] == "model" and metrics.metadata["steps"] == 3
    (run,) = mlflow.search_runs(filter_string="tags.`sail.step` = 'train_content2'").itertuples()
    history = mlflow.MlflowClient().get_metric_history(run.run_id, "loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert "plots/loss_content2.png" in [
        a.path for a in mlflow.MlflowClient().list_artifacts(run.run_id, "plots")
    ]
    # every setting it trained with, as params and as the config artifact
    params = mlflow.get_run(run.run_id).data.params
    stage = load_stage("content2", steps=3, **overrides["content2"])
    assert params["stage.steps"] == "3" and params["stage.lr"] == "3e-05"  # its own overrides
    assert params["stage.head_lr_scale"] == "4.0"
    assert json.loads(params["overrides"]) == overrides["content2"]
    assert params["stage.batch_size"] == str(stage.batch_size)
    assert params["stage.hard_negatives"] == str(stage.hard_negatives)
    for dataset in stage.datasets:  # loss weights and temperature of every data set
        for loss, weight in dataset.losses.items():
            assert params[f"stage.datasets.{dataset.name}.losses.{loss}"] == str(weight)
        assert params[f"stage.datasets.{dataset.name}.temperature"] == str(dataset.temperature)
    assert params["deepspeed.train_micro_batch_size_per_gpu"] == str(stage.batch_size)
    assert params["deepspeed.zero_optimization.stage"] == "0"  # one process: nothing to partition
    assert params["model.name"] == "tiny" and params["run.world_size"] == "1"
    config = mlflow.artifacts.load_dict(f"runs:/{run.run_id}/config/stage.json")
    assert config == json.loads(json.dumps(stage.to_dict()))
