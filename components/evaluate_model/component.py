"""evaluate_model: every held-out test metric of the trained model."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate_model(
    data: Input[Dataset],
    model: Input[Model],
    metrics: Output[Metrics],
    evaluation: Output[Artifact],
    report: Output[Markdown],
):
    """openclipart retrieval and MovieLens next-item metrics; `evaluation` is their JSON."""
    from pathlib import Path

    from sail.pipeline import steps
    from sail.pipeline.isolation import step_scope

    with step_scope("evaluate", data.path):
        model_dir = steps.exported_model(model.path)
        results = steps.evaluate(model_dir, Path(evaluation.path), Path(report.path))
    for name, value in results.items():
        metrics.log_metric(name.replace("/", "."), value)
