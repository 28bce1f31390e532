"""train_stage: one SAIL training stage on DeepSpeed, from the previous stage's model."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_stage(
    preset: str,
    stage: str,
    steps: int,
    data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    init: Input[Model] = None,
    teacher: Input[Artifact] = None,
    negatives: Input[Dataset] = None,
    stage_overrides: dict = {},  # noqa: B006 (a KFP default, never mutated)
):
    """Train `stage` (`steps` 0: the stage config's count) with its settings from
    `stage_overrides[stage]`, if any, in place of the config's. `model` holds the run folder
    (metrics.jsonl; checkpoints only while the stage runs) with the exported model in `model/`."""
    from pathlib import Path

    from sail.pipeline import steps as step_logic
    from sail.pipeline.isolation import step_scope

    with step_scope(f"train_{stage}", data.path):
        summary = step_logic.train(
            preset,
            stage,
            steps,
            Path(model.path),
            init=step_logic.exported_model(init.path) if init else None,
            teacher=Path(teacher.path) if teacher else None,
            negatives=Path(negatives.path) if negatives else None,
            overrides=stage_overrides.get(stage),
        )
    model.metadata.update({"stage": stage, "preset": preset, "model_dir": "model"})
    for name in ("final_loss", "steps", "seconds"):
        metrics.log_metric(name, summary[name])
