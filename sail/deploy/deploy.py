"""The pipeline's deploy step: the InferenceService for a registered model, kept as an artifact, and
rolled out to the cluster when there is one.

On one machine (the default) it writes the rendered manifest and hands back the command that serves
the same model locally (`make serve`). With a cluster configured (`cluster=True`, or KUBECONFIG /
an in-cluster service account when `cluster` is left None) it rolls the release out
(`sail.deploy.rollout.roll_out`: create, or patch only the model URI and version, wait for Ready,
roll a failed canary back) and writes the object as the cluster then holds it. Either way the
result says which model versions serve and with what share of the traffic (`served`): locally the
manifest's version takes it all; on a cluster it is read from the rolled-out object
(`sail.deploy.traffic`).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sail.deploy.inference_service import (
    NAME,
    NAMESPACE,
    check_pinned,
    read_inference_service,
    render_inference_service,
    to_manifest,
    without_server_fields,
    write_manifest,
)
from sail.deploy.release import Release, with_release
from sail.deploy.rollout import DEFAULT_POLL_S, DEFAULT_READY_TIMEOUT_S, Check, Rollout, roll_out
from sail.deploy.traffic import served_versions

MANIFEST_NAME = "inferenceservice.yaml"
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/")


@dataclass(frozen=True)
class DeployResult:
    manifest: Path  # the InferenceService YAML written under out_dir (as applied, on a cluster)
    model_uri: str  # what the predictor loads (a local folder resolved to an absolute path)
    serve_command: str  # serves the same model on this machine
    served: dict[str, int]  # model version -> percent of the traffic, after the deploy
    rollout: Rollout | None = None  # what was done on the cluster; None without one

    @property
    def rolled_back(self) -> bool:
        return self.rollout is not None and self.rollout.rolled_back


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


def render(
    model_uri: str,
    model_version: str,
    name: str = NAME,
    namespace: str = NAMESPACE,
    template: str | Path | dict | None = None,
    **options,
) -> dict:
    """The InferenceService for the release: `template`'s (a rendered overlay, e.g. prod's GPU
    resources, `--device cuda` and 10% canary) with the model URI and version set, else the
    default one rendered with `options` (image, canary_traffic_percent, resources, device)."""
    if template is None:
        isvc = render_inference_service(
            name, model_uri, model_version, namespace=namespace, **options
        )
        return to_manifest(isvc)
    given = sorted(k for k, v in options.items() if v is not None)
    if given:
        raise ValueError(f"the template sets {', '.join(given)}: change them there, not as options")
    check_pinned(model_uri, model_version)
    isvc = with_release(read_inference_service(template, name), Release(model_uri, model_version))
    isvc["metadata"]["namespace"] = namespace
    return isvc


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
    template: str | Path | dict | None = None,
    services: Any = None,
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    poll_s: float = DEFAULT_POLL_S,
    check: Check | None = None,
) -> DeployResult:
    """Render the InferenceService for `model_dir_or_uri` at `model_version` (`render`), and
    write it to `out_dir/inferenceservice.yaml`; with a cluster (see module doc) roll it out
    instead and write the object as the cluster holds it afterwards.

    A cluster cannot read this machine's folders: with `cluster` on, the model must be a URI the
    serving pods can reach (s3://, gs://, pvc://, https://, or a pinned models:/NAME/VERSION).
    Cluster options: `services` (default: `InferenceServices(namespace)` from the kubeconfig or
    the pod's account), `ready_timeout_s` and `poll_s` for each wait, `check` run on the Ready
    new revision (None when healthy, else the problem: the canary is rolled back).
    """
    model_uri = resolve_model_uri(model_dir_or_uri)
    version = str(model_version)
    if cluster is None:
        cluster = cluster_configured()
    if cluster and is_local(model_uri):
        raise ValueError(
            f"the cluster cannot read the local folder {model_uri}: deploy a registered model "
            "(models:/NAME/VERSION) or upload the folder to object storage (s3://...) first"
        )
    desired = render(
        model_uri,
        version,
        name,
        namespace,
        template,
        image=image,
        canary_traffic_percent=canary_traffic_percent,
        resources=resources,
        device=device,
    )
    path = Path(out_dir) / MANIFEST_NAME
    serve_command = f"make serve MODEL_URI={shlex.quote(model_uri)}"
    if not cluster:
        manifest = write_manifest(desired, path)
        return DeployResult(manifest, model_uri, serve_command, {version: 100})
    if services is None:
        from sail.deploy.api import InferenceServices

        services = InferenceServices(namespace)
    rollout = roll_out(services, desired, timeout_s=ready_timeout_s, poll_s=poll_s, check=check)
    manifest = write_manifest(without_server_fields(rollout.isvc), path)
    served = served_versions(services, rollout.isvc)
    return DeployResult(manifest, model_uri, serve_command, served, rollout)
