"""The parent run's chart of every stage's loss (sail.tracking.pictures), on a real MLflow store;
the evaluation's pictures are checked in components/evaluate_model."""

import mlflow
from PIL import Image

from sail.tracking.pictures import log_stage_losses
from sail.tracking.runs import start_pipeline_run, step_run


def test_the_parent_run_gets_one_chart_of_every_stages_loss(tmp_path, monkeypatch):
    monkeypatch.setenv("SAIL_HOME", str(tmp_path / "home"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = start_pipeline_run("run-1", {"preset": "tiny"}, tracking_uri=uri)
    with step_run(parent, "validate_data", tracking_uri=uri):
        pass
    assert log_stage_losses(parent) is None  # nothing trained yet: no chart
    for stage, losses in (("content1", [3.0, 2.5, 2.0]), ("content2", [2.2, 1.9])):
        with step_run(parent, f"train_{stage}", tracking_uri=uri):
            for step, loss in enumerate(losses, 1):
                mlflow.log_metric("loss", loss, step=step)
    with step_run(parent, "train_teacher", tracking_uri=uri):
        mlflow.log_metric("loss", 99.0, step=1)  # the ID teacher is not a stage of the model
    assert log_stage_losses(parent) == "plots/loss_all_stages.png"
    folder = mlflow.artifacts.download_artifacts(run_id=parent, artifact_path="plots")
    with Image.open(f"{folder}/loss_all_stages.png") as chart:
        assert chart.size == (900, 450)
