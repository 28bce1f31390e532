"""train_teacher: BPR on the training interactions beats chance on the validation split."""

import numpy as np
from kfp import dsl

from components.train_teacher.component import train_teacher


def test_teacher_vectors_and_validation_metrics(data, artifact):
    teacher, metrics = artifact(dsl.Artifact, "teacher.npz"), artifact(dsl.Metrics, "metrics")
    train_teacher.python_func(data, teacher, metrics)
    with np.load(teacher.path, allow_pickle=False) as saved:
        assert saved["item_vectors"].shape[0] == 1682
    assert metrics.metadata["validation/hr_10"] > 10 / 1682  # chance over all items
