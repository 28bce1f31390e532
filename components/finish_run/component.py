"""finish_run: the exit handler that closes the pipeline's parent MLflow run."""

from kfp import dsl

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def finish_run(pipeline_run_id: str, sail_home: str, status: dsl.PipelineTaskFinalStatus) -> str:
    """Mark the parent run FINISHED, FAILED or KILLED from the pipeline's final state."""
    from sail.pipeline import steps

    steps.use_home(sail_home)
    return steps.finish(pipeline_run_id, status.state)
