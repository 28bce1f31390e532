"""deploy_endpoint: the KServe InferenceService for a registered version."""

from kfp import dsl
from kfp.dsl import Artifact, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def deploy_endpoint(pipeline_run_id: str, sail_home: str, version: str, manifest: Output[Artifact]):
    """Render the InferenceService (applied when a cluster is configured); `manifest` is its
    YAML. On one machine, `make serve` serves the champion instead."""
    import shutil
    from pathlib import Path

    from sail.pipeline import steps

    steps.use_home(sail_home)
    result = steps.deploy(pipeline_run_id, version, Path(manifest.path + "-render"))
    shutil.copyfile(result["manifest"], manifest.path)
    manifest.metadata.update({"model_version": version, "serve": result["serve"]})
