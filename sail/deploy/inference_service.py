"""The KServe InferenceService serving the embedding model: render it, write it, create or patch it.

`render_inference_service` builds the object with the kserve SDK's models (the same predictor as
manifests/base/serving/inferenceservice.yaml, with a model URI and version filled in); `to_manifest`
and `write_manifest` turn it into the YAML a pipeline step keeps as an artifact.
`apply_inference_service` is the cluster path: it lists the InferenceServices in the namespace with
`kserve.KServeClient`, lets `plan_apply` decide (create, patch, or nothing to do) and carries the
decision out. `plan_apply` and `find_inference_service` are pure functions of the objects' JSON:
they are what the tests cover here, with no cluster; the KServeClient calls around them run only
against a real API server.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import yaml
from kubernetes.client import (
    V1ConfigMapKeySelector,
    V1Container,
    V1ContainerPort,
    V1EnvVar,
    V1EnvVarSource,
    V1HTTPGetAction,
    V1ObjectMeta,
    V1Probe,
    V1ResourceRequirements,
)

from sail.deploy.models import from_dict, to_dict

NAME = "sail-embedding"
NAMESPACE = "sail-embedding"
IMAGE_REPOSITORY = "ghcr.io/sail-embedding/sail-platform"
SERVICE_ACCOUNT = "sail-serving"
PORT = 8080
VERSION_KEY = "sail-embedding.io/model-version"  # label and annotation
URI_KEY = "sail-embedding.io/model-uri"  # annotation
PLATFORM_CONFIG = "sail-platform-config"  # the ConfigMap holding MLFLOW_TRACKING_URI
# URI prefixes KServe's storage initializer downloads into /mnt/models (it then points STORAGE_URI
# there). Anything else (an MLflow models:/ URI, a local folder) goes to the server as MODEL_URI.
STORAGE_PREFIXES = (
    "s3://",
    "gs://",
    "pvc://",
    "hdfs://",
    "webhdfs://",
    "https://",
    "http://",
    "hf://",
)
DEFAULT_RESOURCES = {
    "requests": {"cpu": "1", "memory": "3Gi"},
    "limits": {"cpu": "2", "memory": "4Gi"},
}
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def default_image() -> str:
    """The project image tagged with the installed package's version."""
    try:
        tag = metadata.version("sail-embedding-platform")
    except metadata.PackageNotFoundError:
        tag = "latest"
    return f"{IMAGE_REPOSITORY}:{tag}"


def model_uri_variable(model_uri: str) -> str:
    """STORAGE_URI where KServe downloads the model first, MODEL_URI where the server loads it."""
    return "STORAGE_URI" if model_uri.startswith(STORAGE_PREFIXES) else "MODEL_URI"


def label_value(value: str) -> str:
    """`value` made a valid label value (63 characters of [A-Za-z0-9_.-], alphanumeric ends)."""
    return _LABEL_VALUE_BAD.sub("-", str(value))[:63].strip("-_.")


def _resources(resources: dict | V1ResourceRequirements | None) -> V1ResourceRequirements:
    if isinstance(resources, V1ResourceRequirements):
        return resources
    spec = DEFAULT_RESOURCES if resources is None else resources
    return V1ResourceRequirements(requests=spec.get("requests"), limits=spec.get("limits"))


def render_inference_service(
    model_name: str,
    storage_uri: str,
    model_version: str,
    image: str | None = None,
    namespace: str = NAMESPACE,
    canary_traffic_percent: int | None = None,
    resources: dict | V1ResourceRequirements | None = None,
    *,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    service_account: str | None = SERVICE_ACCOUNT,
    device: str | None = None,
):
    """The InferenceService `model_name` serving the model at `storage_uri` (version
    `model_version`, carried as a label and an annotation) with the project image's KServe model
    server.

    `canary_traffic_percent` (0-100) gives a new revision that share of the traffic while the
    previous one keeps the rest (KServe's Serverless mode); `resources` is a dict with
    requests/limits (default DEFAULT_RESOURCES) or a V1ResourceRequirements; `device` (e.g. "cuda")
    is passed to the server (its default: cpu).
    """
    from kserve import (
        V1beta1InferenceService,
        V1beta1InferenceServiceSpec,
        V1beta1PredictorSpec,
        constants,
    )

    if not _DNS_LABEL.fullmatch(model_name):
        raise ValueError(f"name {model_name!r} must be a DNS label (a-z, 0-9, '-', letter first)")
    if canary_traffic_percent is not None and not 0 <= canary_traffic_percent <= 100:
        raise ValueError(f"canary_traffic_percent must be 0-100, got {canary_traffic_percent}")
    if not storage_uri:
        raise ValueError("storage_uri is empty")
    version = str(model_version)
    variable = model_uri_variable(storage_uri)
    container = V1Container(
        name="kserve-container",
        image=image or default_image(),
        command=["python", "-m", "sail.serving"],
        args=["--model-uri", f"$({variable})", "--host", "0.0.0.0", "--port", str(PORT)]
        + (["--device", device] if device else []),
        env=[
            V1EnvVar(name=variable, value=storage_uri),
            V1EnvVar(
                name="MLFLOW_TRACKING_URI",
                value_from=V1EnvVarSource(
                    config_map_key_ref=V1ConfigMapKeySelector(
                        name=PLATFORM_CONFIG, key="MLFLOW_TRACKING_URI"
                    )
                ),
            ),
        ],
        ports=[V1ContainerPort(container_port=PORT, protocol="TCP")],
        readiness_probe=V1Probe(
            http_get=V1HTTPGetAction(path="/v2/health/ready", port=PORT),
            initial_delay_seconds=10,
            period_seconds=10,
            failure_threshold=30,
        ),
        liveness_probe=V1Probe(
            http_get=V1HTTPGetAction(path="/v2/health/live", port=PORT),
            initial_delay_seconds=60,
            period_seconds=20,
        ),
        resources=_resources(resources),
    )
    version_label = {VERSION_KEY: label_value(version)}
    return V1beta1InferenceService(
        api_version=f"{constants.KSERVE_GROUP}/{constants.KSERVE_V1BETA1_VERSION}",
        kind=constants.KSERVE_KIND_INFERENCESERVICE,
        metadata=V1ObjectMeta(
            name=model_name,
            namespace=namespace,
            labels={
                "app.kubernetes.io/name": model_name,
                "app.kubernetes.io/component": "serving",
                "app.kubernetes.io/part-of": "sail-embedding",
                **version_label,
            },
            annotations={VERSION_KEY: version, URI_KEY: storage_uri},
        ),
        spec=V1beta1InferenceServiceSpec(
            predictor=V1beta1PredictorSpec(
                containers=[container],
                service_account_name=service_account,
                canary_traffic_percent=canary_traffic_percent,
                min_replicas=min_replicas,
                max_replicas=max_replicas,
                labels=dict(version_label),  # on the predictor pods: tells canary from stable
            )
        ),
    )


def to_manifest(isvc: Any) -> dict:
    """The InferenceService as a plain manifest dict (camelCase keys, unset fields left out)."""
    return to_dict(isvc)


def from_manifest(manifest: dict):
    """A manifest as a V1beta1InferenceService (InvalidObject names each field that misfits)."""
    from kserve import V1beta1InferenceService

    return from_dict(manifest, V1beta1InferenceService)


def write_manifest(isvc: Any, path: str | Path) -> Path:
    """Write the InferenceService (model or dict) as YAML to `path`; returns the path."""
    manifest = isvc if isinstance(isvc, dict) else to_manifest(isvc)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def read_manifest(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


@dataclass(frozen=True)
class ApplyPlan:
    """What `apply_inference_service` does: `create` or `patch` with `manifest`, or nothing
    (`unchanged`), and why."""

    action: Literal["create", "patch", "unchanged"]
    manifest: dict
    reason: str


def find_inference_service(listing: dict, name: str) -> dict | None:
    """The item called `name` in a list response (`KServeClient.get(namespace=...)`), or None."""
    for item in listing.get("items") or []:
        if (item.get("metadata") or {}).get("name") == name:
            return item
    return None


def _contains(have: Any, want: Any) -> bool:
    """Whether `have` holds all of `want` (a server adds defaults and status, never removes)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(_contains(have.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(have) == len(want)
            and all(_contains(h, w) for h, w in zip(have, want, strict=True))
        )
    return have == want


def _canary(manifest: dict | None) -> int | None:
    return (((manifest or {}).get("spec") or {}).get("predictor") or {}).get("canaryTrafficPercent")


def plan_apply(desired: dict, existing: dict | None) -> ApplyPlan:
    """Decide how to bring the cluster from `existing` (the live object, or None) to `desired`.

    - none yet: create (the first revision takes all the traffic, whatever the canary percent);
    - the live object already holds the desired labels, annotations and spec: nothing to do;
    - otherwise patch. A merge patch keeps fields it does not name, so when the live predictor has a
      canaryTrafficPercent and the desired one has none, the patch sets 100: the new revision takes
      all the traffic (promotion), rather than silently inheriting the old canary split.
    """
    name = desired["metadata"]["name"]
    version = (desired["metadata"].get("annotations") or {}).get(VERSION_KEY)
    if existing is None:
        return ApplyPlan("create", desired, f"no InferenceService {name} yet: create (v{version})")
    body = copy.deepcopy(desired)
    promote = _canary(existing) is not None and _canary(desired) is None
    if promote:
        body["spec"]["predictor"]["canaryTrafficPercent"] = 100
    meta = body["metadata"]
    wanted = {"metadata": {k: meta[k] for k in ("labels", "annotations") if k in meta}}
    wanted["spec"] = body["spec"]
    if _contains(existing, wanted):
        return ApplyPlan("unchanged", body, f"{name} already serves v{version} as desired")
    live = (existing["metadata"].get("annotations") or {}).get(VERSION_KEY)
    if promote:
        how = "all traffic to the new revision (canary promoted)"
    elif _canary(desired) is not None:
        how = f"{_canary(desired)}% of the traffic to the new revision (canary)"
    else:
        how = "the new revision takes all traffic when ready"
    return ApplyPlan("patch", body, f"{name}: v{live} -> v{version}, {how}")


def apply_inference_service(
    isvc: Any, namespace: str | None = None, client: Any = None, wait_seconds: int | None = None
) -> ApplyPlan:
    """Create or patch `isvc` on the cluster of the current kubeconfig (or in-cluster config) and
    return the plan that was carried out. `client`: a configured `kserve.KServeClient` (default: a
    new one); `wait_seconds`: also wait that long for the InferenceService to report Ready.

    Needs a cluster with KServe; not exercised by the test suite (see docs/deploy.md).
    """
    from kserve import KServeClient

    client = client or KServeClient()
    desired = to_manifest(isvc)
    name = desired["metadata"]["name"]
    namespace = namespace or desired["metadata"].get("namespace") or NAMESPACE
    desired["metadata"]["namespace"] = namespace
    existing = find_inference_service(client.get(namespace=namespace), name)
    plan = plan_apply(desired, existing)
    if plan.action == "create":
        client.create(from_manifest(plan.manifest), namespace=namespace)
    elif plan.action == "patch":
        client.patch(name, from_manifest(plan.manifest), namespace=namespace)
    if wait_seconds and plan.action != "unchanged":
        client.wait_isvc_ready(name, namespace=namespace, timeout_seconds=wait_seconds)
    return plan
