"""deploy_endpoint: without a cluster, the InferenceService manifest is the artifact."""

from pathlib import Path

import yaml
from kfp import dsl

from components.deploy_endpoint.component import deploy_endpoint


def test_manifest_for_the_registered_version(home, artifact, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    manifest = artifact(dsl.Artifact, "isvc.yaml")
    deploy_endpoint.python_func("7", manifest)
    rendered = yaml.safe_load(Path(manifest.path).read_text())
    assert rendered["kind"] == "InferenceService"
    assert "models:/sail-embedding/7" in str(rendered["spec"])
    assert manifest.metadata["model_version"] == "7" and "make serve" in manifest.metadata["serve"]
