"""finish_run: the pipeline's final state closes the parent MLflow run."""

import mlflow
import pytest
from kfp.dsl import PipelineTaskFinalStatus

from components.finish_run.component import finish_run
from sail.tracking.runs import start_pipeline_run


@pytest.mark.parametrize(("state", "status"), [("SUCCEEDED", "FINISHED"), ("FAILED", "FAILED")])
def test_parent_run_gets_the_final_state(home, in_run, state, status):
    parent = start_pipeline_run(f"run-{state}", {})
    final = PipelineTaskFinalStatus(state, f"run-{state}", "x", None, None)
    in_run(f"run-{state}")
    assert finish_run.python_func(final) == status
    assert mlflow.get_run(parent).info.status == status
