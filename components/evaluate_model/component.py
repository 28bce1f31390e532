"""evaluate_model: every held-out test metric of the trained model."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate_model(
    pipeline_run_id: str,
    sail_home: str,
    data: Input[Dataset],
    model: Input[Model],
    metrics: Output[Metrics],
    evaluation: Output[Artifact],
    report: Output[Markdown],
):
    """openclipart retrieval and MovieLens next-item metrics; `evaluation` is their JSON."""
    import json
    from pathlib import Path

    from sail.pipeline import steps

    steps.use_home(sail_home)
    results = steps.evaluate(pipeline_run_id, steps.exported_model(model.path), Path(report.path))
    Path(evaluation.path).write_text(json.dumps(results, indent=2))
    for name, value in results.items():
        metrics.log_metric(name.replace("/", "."), value)
