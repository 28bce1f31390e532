"""finish_run: the exit handler that closes the pipeline's parent MLflow run."""

from kfp import dsl

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def finish_run(status: dsl.PipelineTaskFinalStatus) -> str:
    """Mark the parent run FINISHED, FAILED or KILLED from the pipeline's final state."""
    from sail.pipeline import steps
    from sail.pipeline.isolation import step_scope

    with step_scope("finish_run"):
        return steps.finish(status.state)
