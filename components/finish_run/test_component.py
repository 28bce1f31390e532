"""finish_run: the pipeline's final state closes the parent MLflow run."""

import mlflow
import pytest
from kfp.dsl import PipelineTaskFinalStatus

from components.finish_run.component import finish_run
from sail.tracking.runs import start_pipeline_run


@pytest.mark.parametrize(("state", "status"), [("SUCCEEDED", "FINISHED"), ("FAILED", "FAILED")])
def test_parent_run_gets_the_final_state(home, state, status):
    parent = start_pipeline_run(f"run-{state}", {})
    final = PipelineTaskFinalStatus(state, f"run-{state}", "x", None, None)
    assert finish_run.python_func(f"run-{state}", str(home), final) == status
    assert mlflow.get_run(parent).info.status == status
