"""The pipeline's deploy step: the InferenceService for a registered model, kept as an artifact, and
applied to the cluster when there is one.

On one machine (the default) it writes the manifest and hands back the command that serves the same
model locally (`make serve`); with a cluster configured (`cluster=True`, or KUBECONFIG / an
in-cluster service account when `cluster` is left None) it also creates or patches the
InferenceService.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from sail.deploy.inference_service import (
    NAME,
    NAMESPACE,
    ApplyPlan,
    apply_inference_service,
    render_inference_service,
    write_manifest,
)

MANIFEST_NAME = "inferenceservice.yaml"
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/")


@dataclass(frozen=True)
class DeployResult:
    manifest: Path  # the InferenceService YAML written under out_dir
    model_uri: str  # what the predictor loads (a local folder resolved to an absolute path)
    serve_command: str  # serves the same model on this machine
    applied: ApplyPlan | None = None  # what was done on the cluster; None when nothing was applied


def cluster_configured(environ: dict[str, str] | None = None) -> bool:
    """Whether a Kubernetes API is configured: a KUBECONFIG naming an existing file, or the service
    account environment of a pod (KUBERNETES_SERVICE_HOST)."""
    env = os.environ if environ is None else environ
    if env.get("KUBERNETES_SERVICE_HOST"):
        return True
    paths = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    return any(Path(p).expanduser().is_file() for p in paths)


def is_local(model_uri: str) -> bool:
    """A folder on this machine (a path, a file:// URI), not something a cluster can fetch."""
    return not _URI.match(model_uri) or model_uri.startswith("file:")


def resolve_model_uri(model_dir_or_uri: str | Path) -> str:
    """A URI as given; a local model folder as its absolute path (it must exist)."""
    text = str(model_dir_or_uri)
    if _URI.match(text) and not text.startswith("file:"):
        return text
    path = Path(text.removeprefix("file://")).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"no model folder at {path}")
    return str(path)


def deploy(
    model_dir_or_uri: str | Path,
    model_version: str,
    out_dir: str | Path,
    cluster: bool | None = None,
    *,
    name: str = NAME,
    namespace: str = NAMESPACE,
    image: str | None = None,
    canary_traffic_percent: int | None = None,
    resources: dict | None = None,
    device: str | None = None,
) -> DeployResult:
    """Render the InferenceService for `model_dir_or_uri` at `model_version`, write it to
    `out_dir/inferenceservice.yaml`, and with a cluster (see module doc) create or patch it there.

    A cluster cannot read this machine's folders: with `cluster` on, the model must be a URI the
    serving pods can reach (s3://, gs://, pvc://, https://, or an MLflow models:/ URI).
    """
    model_uri = resolve_model_uri(model_dir_or_uri)
    if cluster is None:
        cluster = cluster_configured()
    if cluster and is_local(model_uri):
        raise ValueError(
            f"the cluster cannot read the local folder {model_uri}: deploy a registered model "
            "(models:/...) or upload the folder to object storage (s3://...) first"
        )
    isvc = render_inference_service(
        name,
        model_uri,
        model_version,
        image=image,
        namespace=namespace,
        canary_traffic_percent=canary_traffic_percent,
        resources=resources,
        device=device,
    )
    manifest = write_manifest(isvc, Path(out_dir) / MANIFEST_NAME)
    applied = apply_inference_service(isvc, namespace) if cluster else None
    serve_command = f"make serve MODEL_URI={shlex.quote(model_uri)}"
    return DeployResult(manifest, model_uri, serve_command, applied)
