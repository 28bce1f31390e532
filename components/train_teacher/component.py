"""train_teacher: the collaborative item-ID teacher (BPR) for ID-to-item distillation."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_teacher(
    pipeline_run_id: str,
    sail_home: str,
    data: Input[Dataset],
    teacher: Output[Artifact],
    metrics: Output[Metrics],
):
    """Fit BPR on the training interactions; `teacher` is its .npz of item and user vectors."""
    from pathlib import Path

    from sail.pipeline import steps

    steps.use_home(sail_home)
    for name, value in steps.train_teacher(pipeline_run_id, Path(teacher.path)).items():
        metrics.log_metric(name, value)
