"""evaluate_model: the trained model and the frozen baselines on the validation and test splits."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate_model(
    preset: str,
    data: Input[Dataset],
    model: Input[Model],
    metrics: Output[Metrics],
    evaluation: Output[Artifact],
    report: Output[Markdown],
):
    """openclipart retrieval and MovieLens next-item metrics of the model and of `preset`'s frozen
    baselines, on validation (the gate decides on it) and test; `evaluation` is their JSON."""
    from pathlib import Path

    from sail.pipeline import steps
    from sail.pipeline.isolation import step_scope

    with step_scope("evaluate", data.path):
        model_dir = steps.exported_model(model.path)
        results = steps.evaluate(preset, model_dir, Path(evaluation.path), Path(report.path))
    for split in ("validation", "test"):
        for name, value in results[split].items():
            metrics.log_metric(f"{split}.{name.replace('/', '.')}", value)
