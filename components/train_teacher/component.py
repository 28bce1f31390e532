"""train_teacher: the collaborative item-ID teacher (BPR) for ID-to-item distillation."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_teacher(data: Input[Dataset], teacher: Output[Artifact], metrics: Output[Metrics]):
    """Fit BPR on the training interactions; `teacher` is its .npz of item and user vectors."""
    from pathlib import Path

    from sail.pipeline import steps
    from sail.pipeline.isolation import step_scope

    with step_scope("train_teacher", data.path):
        summary = steps.train_teacher(Path(teacher.path))
    for name, value in summary.items():
        metrics.log_metric(name, value)
