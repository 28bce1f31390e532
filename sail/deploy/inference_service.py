"""The KServe InferenceService serving the embedding model: render it, write it, read it back.

`render_inference_service` builds the object with the kserve SDK's models (the same predictor as
manifests/base/serving/inferenceservice.yaml, with a pinned model URI and its version filled in);
`to_manifest` and `write_manifest` turn it into the YAML a pipeline step keeps as an artifact;
`read_inference_service` picks it out of a rendered overlay (`kubectl kustomize ...` output).
What a release changes on a live object is `sail.deploy.release`; the cluster calls are
`sail.deploy.rollout`.
"""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import (
    V1Capabilities,
    V1ConfigMapKeySelector,
    V1Container,
    V1ContainerPort,
    V1EmptyDirVolumeSource,
    V1EnvVar,
    V1EnvVarSource,
    V1HTTPGetAction,
    V1ObjectMeta,
    V1PodSecurityContext,
    V1Probe,
    V1ResourceRequirements,
    V1SeccompProfile,
    V1SecretKeySelector,
    V1SecurityContext,
    V1Volume,
    V1VolumeMount,
)

from sail.deploy.models import from_dict, to_dict

NAME = "sail-embedding"
NAMESPACE = "sail-embedding"
IMAGE_REPOSITORY = "ghcr.io/sail-embedding/sail-platform"
IMAGE_ENV = "SAIL_IMAGE"  # the image a compiled pipeline's steps run in
SERVICE_ACCOUNT = "sail-serving"
PORT = 8080
VERSION_KEY = "sail-embedding.io/model-version"  # label and annotation
URI_KEY = "sail-embedding.io/model-uri"  # annotation
PLATFORM_CONFIG = "sail-platform-config"  # the ConfigMap holding MLFLOW_TRACKING_URI
MLFLOW_READER = "sail-mlflow-reader"  # the Secret with the predictor's MLflow user (READ)
USER_ID = 1000  # the image's user sail
# The root filesystem is read-only: these emptyDirs are the only writable paths (the model MLflow
# downloads, SAIL_HOME, caches under ~).
WRITABLE = {"tmp": "/tmp", "sail-home": "/var/lib/sail", "home": "/home/sail"}
URI_VARIABLES = ("STORAGE_URI", "MODEL_URI")  # the container variable holding the model URI
VERSION_VARIABLE = "MODEL_VERSION"  # the served version, which the server reports
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
_PINNED_MODEL = re.compile(r"models:/[^/@]+/\d+")
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.-]")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def check_image(image: str) -> str:
    """`image` if it is pinned: a digest (`REPO@sha256:...`) or a fixed tag, never `:latest` or no
    tag at all (which pulls `:latest`, whatever it is on the day a pod starts)."""
    name, at, digest = image.partition("@")
    if at:
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"image {image!r}: {digest!r} is not a sha256 digest")
        return image
    tag = name.rpartition("/")[2].partition(":")[2]
    if not _TAG.fullmatch(tag) or tag == "latest":
        raise ValueError(
            f"image {image!r} has no fixed tag: name a release tag (REPO:0.1.0) or a digest "
            "(REPO@sha256:...), never :latest or none"
        )
    return image


def default_image() -> str:
    """The image the pipeline was compiled with (`SAIL_IMAGE`, `sail pipeline compile --image`),
    else the project image tagged with the installed package's version; never an untagged one."""
    if compiled := os.environ.get(IMAGE_ENV):
        return check_image(compiled)
    try:
        tag = metadata.version("sail-embedding-platform")
    except metadata.PackageNotFoundError:
        raise ValueError(
            f"no image to deploy: set {IMAGE_ENV} or pass image= (REPO:TAG or REPO@sha256:...); "
            "the package sail-embedding-platform is not installed, so there is no release tag"
        ) from None
    return check_image(f"{IMAGE_REPOSITORY}:{tag}")


def model_uri_variable(model_uri: str) -> str:
    """STORAGE_URI where KServe downloads the model first, MODEL_URI where the server loads it."""
    return "STORAGE_URI" if model_uri.startswith(STORAGE_PREFIXES) else "MODEL_URI"


def check_pinned(model_uri: str, model_version: str) -> None:
    """A registry URI must name one version, the one deployed: `models:/NAME/VERSION`, never an
    alias (`@champion`) or a stage that moves while the pods run."""
    if not model_uri.startswith("models:"):
        return
    if not _PINNED_MODEL.fullmatch(model_uri):
        raise ValueError(
            f"{model_uri} does not pin a version: deploy models:/NAME/VERSION (an alias or stage "
            "would load whatever it points at when a pod restarts)"
        )
    if model_uri.rsplit("/", 1)[1] != str(model_version):
        raise ValueError(f"{model_uri} is not version {model_version}")


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
    `model_version`, carried as a label, an annotation and $MODEL_VERSION) with the project
    image's KServe model server. A registry URI must pin that version (`check_pinned`).

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
    check_pinned(storage_uri, version)
    variable = model_uri_variable(storage_uri)
    container = V1Container(
        name="kserve-container",
        image=check_image(image) if image else default_image(),
        command=["python", "-m", "sail.serving"],
        args=["--model-uri", f"$({variable})", "--host", "0.0.0.0", "--port", str(PORT)]
        + (["--device", device] if device else []),
        env=[
            V1EnvVar(name=variable, value=storage_uri),
            V1EnvVar(name=VERSION_VARIABLE, value=version),
            V1EnvVar(
                name="MLFLOW_TRACKING_URI",
                value_from=V1EnvVarSource(
                    config_map_key_ref=V1ConfigMapKeySelector(
                        name=PLATFORM_CONFIG, key="MLFLOW_TRACKING_URI"
                    )
                ),
            ),
            *(
                V1EnvVar(
                    name=f"MLFLOW_TRACKING_{key.upper()}",
                    value_from=V1EnvVarSource(
                        secret_key_ref=V1SecretKeySelector(name=MLFLOW_READER, key=key)
                    ),
                )
                for key in ("username", "password")
            ),
        ],
        ports=[V1ContainerPort(container_port=PORT, protocol="TCP")],
        # Loading the model (download, weights) may take minutes: the startup probe allows 5,
        # and holds the other two back until the model is ready.
        startup_probe=V1Probe(
            http_get=V1HTTPGetAction(path="/v2/health/ready", port=PORT),
            period_seconds=10,
            failure_threshold=30,
        ),
        readiness_probe=V1Probe(
            http_get=V1HTTPGetAction(path="/v2/health/ready", port=PORT),
            period_seconds=10,
            failure_threshold=3,
        ),
        # 503 once the batcher thread has stopped (`VersionedDataPlane.live`)
        liveness_probe=V1Probe(
            http_get=V1HTTPGetAction(path="/v2/health/live", port=PORT),
            period_seconds=20,
            failure_threshold=3,
        ),
        resources=_resources(resources),
        security_context=V1SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=V1Capabilities(drop=["ALL"]),
        ),
        volume_mounts=[V1VolumeMount(name=n, mount_path=p) for n, p in WRITABLE.items()],
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
                automount_service_account_token=False,
                security_context=V1PodSecurityContext(
                    run_as_non_root=True,
                    run_as_user=USER_ID,
                    run_as_group=USER_ID,
                    seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
                ),
                volumes=[V1Volume(name=n, empty_dir=V1EmptyDirVolumeSource()) for n in WRITABLE],
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


def without_server_fields(isvc: dict) -> dict:
    """The object as a manifest: no status, and none of the metadata the API server sets."""
    server_set = {"resourceVersion", "uid", "generation", "creationTimestamp", "managedFields"}
    metadata = {k: v for k, v in isvc["metadata"].items() if k not in server_set}
    return {k: v for k, v in isvc.items() if k != "status"} | {"metadata": metadata}


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


def read_inference_service(source: str | Path | dict, name: str = NAME) -> dict:
    """The InferenceService `name` of a rendered manifest: a dict, or a YAML file of one or more
    documents (`kubectl kustomize manifests/overlays/prod > prod.yaml`)."""
    if isinstance(source, dict):
        documents = [source]
    else:
        documents = list(yaml.safe_load_all(Path(source).read_text()))
    for doc in documents:
        if doc and doc.get("kind") == "InferenceService" and doc["metadata"]["name"] == name:
            return doc
    raise ValueError(f"{source} holds no InferenceService named {name}")
