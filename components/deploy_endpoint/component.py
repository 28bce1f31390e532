"""deploy_endpoint: the KServe InferenceService for a registered version."""

from kfp import dsl
from kfp.dsl import Artifact, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def deploy_endpoint(version: str, manifest: Output[Artifact]):
    """Render the InferenceService for the pinned version and, with a cluster configured, roll it
    out: patch the release, wait for Ready, roll a failed canary back (docs/deploy.md);
    `manifest` is its YAML. On one machine, `make serve` serves the champion instead."""
    from pathlib import Path

    from sail.pipeline import steps
    from sail.pipeline.isolation import step_scope

    with step_scope("deploy"):
        result = steps.deploy(version, Path(manifest.path))
    manifest.metadata.update({"model_version": version, "serve": result["serve"]})
