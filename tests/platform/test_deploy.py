"""The deploy step's library: rendering the InferenceService with the kserve SDK (a pinned model
version only), writing it, the client models' field checks, and the step in its local (no cluster)
mode. The cluster path (patch, wait, roll back) is tests/platform/test_rollout.py."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from sail.deploy.deploy import cluster_configured, deploy
from sail.deploy.inference_service import (
    DEFAULT_RESOURCES,
    URI_KEY,
    VERSION_KEY,
    from_manifest,
    read_manifest,
    render_inference_service,
    to_manifest,
    write_manifest,
)
from sail.deploy.models import InvalidObject, check, from_dict, to_dict

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "ghcr.io/sail-embedding/sail-platform:1.2.3"


def manifest(version="3", uri="s3://sail-mlflow/models/sail/3", canary=None, **kwargs) -> dict:
    isvc = render_inference_service(
        "sail-embedding", uri, version, IMAGE, canary_traffic_percent=canary, **kwargs
    )
    return to_manifest(isvc)


def test_render_round_trips_through_the_kserve_model():
    from kserve import V1beta1InferenceService

    isvc = render_inference_service("sail-embedding", "s3://b/m/7", "7", IMAGE, "ns", 10)
    assert isinstance(isvc, V1beta1InferenceService)
    data = to_manifest(isvc)
    assert (data["apiVersion"], data["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert check(data, V1beta1InferenceService) == []
    back = from_manifest(data)
    assert isinstance(back, V1beta1InferenceService) and to_manifest(back) == data
    assert back.spec.predictor.canary_traffic_percent == 10
    assert back.metadata.annotations[VERSION_KEY] == "7"
    assert back.metadata.annotations[URI_KEY] == "s3://b/m/7"
    assert back.metadata.labels[VERSION_KEY] == back.spec.predictor.labels[VERSION_KEY] == "7"
    assert back.metadata.namespace == "ns"
    container = back.spec.predictor.containers[0]
    assert {(e.name, e.value) for e in container.env} >= {("MODEL_VERSION", "7")}
    assert container.image == IMAGE
    assert container.readiness_probe.http_get.path == "/v2/health/ready"
    assert container.startup_probe.http_get.path == "/v2/health/ready"
    assert container.startup_probe.period_seconds * container.startup_probe.failure_threshold >= 300
    assert container.liveness_probe.http_get.path == "/v2/health/live"
    assert container.resources.limits == DEFAULT_RESOURCES["limits"]


@pytest.mark.parametrize(
    ("uri", "variable"),
    [
        ("s3://sail-mlflow/models/3", "STORAGE_URI"),  # KServe downloads it to /mnt/models
        ("pvc://models/sail/3", "STORAGE_URI"),
        ("models:/sail-embedding/3", "MODEL_URI"),  # the server resolves it via MLflow
        ("/srv/models/sail", "MODEL_URI"),
    ],
)
def test_the_model_uri_goes_where_it_can_be_loaded(uri, variable):
    container = manifest(uri=uri)["spec"]["predictor"]["containers"][0]
    args = ["--model-uri", f"$({variable})", "--host", "0.0.0.0", "--port", "8080"]
    assert container["args"] == args
    assert {"name": variable, "value": uri} in container["env"]


@pytest.mark.parametrize(
    ("uri", "version", "problem"),
    [
        ("models:/sail-embedding@champion", "3", "does not pin a version"),
        ("models:/sail-embedding/latest", "3", "does not pin a version"),
        ("models:/sail-embedding/Production", "3", "does not pin a version"),
        ("models:/sail-embedding/4", "3", "is not version 3"),
    ],
)
def test_render_refuses_a_model_that_is_not_pinned(uri, version, problem):
    with pytest.raises(ValueError, match=problem):
        manifest(version=version, uri=uri)


def test_render_takes_resources_and_replicas_and_rejects_bad_input():
    gpu = {"requests": {"cpu": "4", "nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}
    predictor = manifest(resources=gpu, min_replicas=2, max_replicas=6, device="cuda")["spec"][
        "predictor"
    ]
    assert predictor["containers"][0]["resources"] == gpu
    assert predictor["containers"][0]["args"][-2:] == ["--device", "cuda"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 6)
    assert manifest(version="run 4/final")["metadata"]["labels"][VERSION_KEY] == "run-4-final"
    with pytest.raises(ValueError, match="0-100"):
        manifest(canary=101)
    with pytest.raises(ValueError, match="DNS label"):
        render_inference_service("Sail_Embedding", "s3://b/m", "1", IMAGE)


def test_render_matches_the_base_manifest():
    """The renderer and manifests/base/serving/inferenceservice.yaml describe the same predictor."""
    base = yaml.safe_load((ROOT / "manifests/base/serving/inferenceservice.yaml").read_text())
    predictor = base["spec"]["predictor"]
    container = predictor["containers"][0]
    uri = next(e["value"] for e in container["env"] if e["name"] == "MODEL_URI")
    version = base["metadata"]["annotations"][VERSION_KEY]
    assert uri == f"models:/sail-embedding/{version}"  # pinned, never @champion
    rendered = to_manifest(
        render_inference_service(
            base["metadata"]["name"],
            uri,
            version,
            container["image"],
            min_replicas=predictor["minReplicas"],
            max_replicas=predictor["maxReplicas"],
        )
    )
    assert rendered["spec"] == base["spec"]
    assert rendered["metadata"]["annotations"] == base["metadata"]["annotations"]
    assert base["metadata"]["labels"].items() <= rendered["metadata"]["labels"].items()


def test_write_manifest_writes_yaml_that_reads_back(tmp_path):
    data = manifest(canary=25)
    path = write_manifest(from_manifest(data), tmp_path / "out" / "isvc.yaml")
    assert path.is_file() and read_manifest(path) == data
    assert yaml.safe_load(path.read_text())["spec"]["predictor"]["canaryTrafficPercent"] == 25


def test_check_reports_unknown_fields_wrong_types_and_missing_required():
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {
                    "containers": [
                        {
                            "image": "i:1",
                            "readinesProbe": {},
                            "env": [{"name": "PORT", "value": 8080}],
                            "ports": {"containerPort": 80},
                            "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                        }
                    ]
                },
            },
        },
    }
    problems = check(deployment, "V1Deployment")
    where = "spec.template.spec.containers[0]"
    assert f"{where}.readinesProbe: unknown field for V1Container" in problems
    assert f"{where}.env[0].value: expected str, got int 8080" in problems
    assert f"{where}.ports: expected a list, got a map" in problems
    assert any(p.startswith(f"{where}: ") and "`name`" in p for p in problems)  # required
    assert len(problems) == 4  # `cpu: 1` is a valid quantity
    with pytest.raises(InvalidObject, match="readinesProbe"):
        from_dict(deployment, "V1Deployment")
    fixed = copy.deepcopy(deployment)
    container = fixed["spec"]["template"]["spec"]["containers"][0]
    container.update(name="x", env=[{"name": "PORT", "value": "8080"}])
    container["ports"] = [{"containerPort": 80}]
    del container["readinesProbe"]
    assert to_dict(from_dict(fixed, "V1Deployment")) == fixed


def test_deploy_without_a_cluster_writes_the_manifest(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    result = deploy(model, "5", tmp_path / "artifacts", cluster=False, image=IMAGE)
    assert result.rollout is None and not result.rolled_back
    assert result.manifest == tmp_path / "artifacts" / "inferenceservice.yaml"
    assert result.model_uri == str(model.resolve())
    assert result.serve_command == f"make serve MODEL_URI={model.resolve()}"
    data = read_manifest(result.manifest)
    assert from_manifest(data).metadata.annotations[VERSION_KEY] == "5"
    container = data["spec"]["predictor"]["containers"][0]
    assert {"name": "MODEL_URI", "value": str(model.resolve())} in container["env"]

    remote = deploy("s3://sail-mlflow/models/5", "5", tmp_path / "remote", cluster=False)
    env = read_manifest(remote.manifest)["spec"]["predictor"]["containers"][0]["env"]
    assert {"name": "STORAGE_URI", "value": "s3://sail-mlflow/models/5"} in env

    pinned = deploy("models:/sail-embedding/5", "5", tmp_path / "pinned", cluster=False)
    assert pinned.serve_command == "make serve MODEL_URI=models:/sail-embedding/5"
    text = pinned.manifest.read_text()
    assert "models:/sail-embedding/5" in text and "@champion" not in text


def test_deploy_renders_a_template_with_only_the_release_changed(tmp_path):
    """A rendered overlay (several documents, as `kubectl kustomize` prints them) is the
    template: its settings stay, the model URI and version are set."""
    gpu = {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}
    overlay = manifest(version="1", uri="models:/sail-embedding/1", canary=10, resources=gpu)
    overlay["spec"]["predictor"]["containers"][0]["args"] += ["--device", "cuda"]
    template = tmp_path / "prod.yaml"
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    template.write_text(yaml.safe_dump_all([other, overlay]))
    result = deploy("models:/sail-embedding/5", "5", tmp_path / "out", False, template=template)
    rendered = read_manifest(result.manifest)
    predictor = rendered["spec"]["predictor"]
    container = predictor["containers"][0]
    assert container["resources"] == gpu and container["args"][-2:] == ["--device", "cuda"]
    assert predictor["canaryTrafficPercent"] == 10
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["MODEL_URI"], env["MODEL_VERSION"]) == ("models:/sail-embedding/5", "5")
    assert rendered["metadata"]["annotations"][VERSION_KEY] == "5"
    assert rendered["metadata"]["labels"][VERSION_KEY] == predictor["labels"][VERSION_KEY] == "5"
    with pytest.raises(ValueError, match="the template sets device"):
        deploy("models:/sail-embedding/5", "5", tmp_path, False, template=template, device="cpu")
    with pytest.raises(ValueError, match="does not pin"):
        deploy("models:/sail-embedding@champion", "5", tmp_path, False, template=template)


def test_deploy_refuses_what_a_cluster_cannot_load(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    with pytest.raises(ValueError, match="cannot read the local folder"):
        deploy(model, "5", tmp_path / "out", cluster=True)
    assert not (tmp_path / "out").exists()  # refused before anything was written or applied
    with pytest.raises(FileNotFoundError):
        deploy(tmp_path / "missing", "5", tmp_path / "out", cluster=False)


def test_cluster_configured_from_the_environment(tmp_path):
    kubeconfig = tmp_path / "config"
    assert not cluster_configured({})
    assert not cluster_configured({"KUBECONFIG": str(kubeconfig)})  # named but absent
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    assert cluster_configured({"KUBECONFIG": f"/nonexistent:{kubeconfig}"})
    assert cluster_configured({"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
