"""mine_negatives: hard negatives for content stage 3, mined with the stage 2 model."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def mine_negatives(
    preset: str,
    data: Input[Dataset],
    model: Input[Model],
    negatives: Output[Dataset],
    metrics: Output[Metrics],
    stage: str = "content3",
):
    """F1-threshold mining; `negatives` is JSON: per data set, item id -> negative item ids."""
    from pathlib import Path

    from sail.pipeline import steps
    from sail.pipeline.isolation import step_scope

    with step_scope("mine_negatives", data.path):
        init = steps.exported_model(model.path)
        summary = steps.mine_negatives(preset, stage, init, Path(negatives.path))
    for name, value in summary.items():
        metrics.log_metric(name, value)
