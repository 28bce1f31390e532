"""The cluster manifests: every kustomization renders, and what it renders holds together.

No cluster and no Kubernetes OpenAPI schema here, so validation is: `kubectl kustomize` renders each
kustomization; every core object is read into the kubernetes client's model for its kind, and the
InferenceService into the kserve SDK's, field by field (`sail.deploy.models.check`: unknown fields,
wrong shapes and types, missing required fields); the PyTorchJob gets a structural check with its
pod templates read as V1PodTemplateSpec; then cross-object checks: selectors, Services to pods and
ports, references to ConfigMaps / Secrets / claims / service accounts, `$(VAR)`s in commands,
images.

kubectl comes from scripts/system-deps.sh (or $KUBECTL names one): the manifests are written so that
kubectl 1.20 (kustomize v2) and current ones (kustomize v5) render the same objects.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from kubernetes.utils import parse_quantity

from sail.deploy.inference_service import check_image
from sail.deploy.models import check, model_class_for

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
PIPELINE = ROOT / "pipelines" / "sail_pipeline.yaml"
KUSTOMIZATIONS = ["base", "overlays/local", "overlays/prod"]
KUBECTL = os.environ.get("KUBECTL") or shutil.which("kubectl")
NAMESPACE = "sail-embedding"
IMAGE = "ghcr.io/sail-embedding/sail-platform"
IMAGE_TAGS = {"base": "0.1.0", "overlays/local": "dev", "overlays/prod": "0.1.0"}
# Created beforehand in production (docs/deploy.md); the local overlay ships development ones.
EXTERNAL_SECRETS = {
    "sail-mlflow-db": {"uri"},
    "sail-s3-credentials": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
    "sail-feast-online": {"host", "database", "username", "password", "sslmode"},
    "sail-mlflow-auth": {"admin-username", "admin-password", "flask-secret-key", "basic_auth.ini"},
    "sail-mlflow-pipeline": {"username", "password"},
    "sail-mlflow-reader": {"username", "password"},
}
# The images' users: the project image's sail, the official PostgreSQL image's postgres.
IMAGE_USERS = {
    IMAGE: 1000,
    "pgvector/pgvector": 999,
    "quay.io/minio/minio": 1000,
    "quay.io/minio/mc": 1000,
}
CORE_KINDS = {
    "Namespace",
    "ConfigMap",
    "Secret",
    "Service",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "Job",
    "CronJob",
}
CUSTOM_KINDS = {"InferenceService", "PyTorchJob"}
CLUSTER_SCOPED = {"Namespace"}

pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed: scripts/system-deps.sh installs it"
)


@cache
def _render(name: str) -> str:
    done = subprocess.run(
        [KUBECTL, "kustomize", str(MANIFESTS / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl kustomize manifests/{name} failed:\n{done.stderr}"
    return done.stdout


def render(name: str) -> list[dict]:
    """The objects `kubectl kustomize manifests/<name>` prints (a fresh copy each call)."""
    return [doc for doc in yaml.safe_load_all(_render(name)) if doc]


def one(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_specs(obj: dict) -> list[tuple[str, dict, dict]]:
    """(where, pod spec, pod labels) for every pod an object makes."""
    kind, spec = obj["kind"], obj.get("spec") or {}
    where = f"{kind}/{obj['metadata']['name']}"
    if kind in ("Deployment", "StatefulSet", "Job"):
        templates = [("", spec["template"])]
    elif kind == "CronJob":
        templates = [("", spec["jobTemplate"]["spec"]["template"])]
    elif kind == "PyTorchJob":
        templates = [(f" {r}", s["template"]) for r, s in spec["pytorchReplicaSpecs"].items()]
    elif kind == "InferenceService":  # the predictor is a pod spec plus KServe's fields
        return [(where, spec["predictor"], spec["predictor"].get("labels") or {})]
    else:
        return []
    return [
        (where + r, t["spec"], (t.get("metadata") or {}).get("labels") or {}) for r, t in templates
    ]


def containers(pod: dict) -> list[dict]:
    return (pod.get("initContainers") or []) + (pod.get("containers") or [])


def env_value(container: dict, name: str) -> dict:
    found = [e for e in container.get("env") or [] if e["name"] == name]
    assert found, f"container {container['name']} has no env {name}"
    return found[0]


def args_map(args: list[str]) -> dict[str, str]:
    """--flag value pairs of an argument list."""
    return {a: b for a, b in zip(args, args[1:], strict=False) if a.startswith("--")}


def config_data(objects: list[dict]) -> dict[str, str]:
    return one(objects, "ConfigMap", "sail-platform-config")["data"]


def secret_data(objects: list[dict], name: str) -> dict[str, str]:
    return one(objects, "Secret", name).get("stringData") or {}


def recurring_parameters(objects: list[dict]) -> dict:
    """The file the CronJob passes with --params-file, read from the ConfigMap mounted there."""
    [(_, pod, _)] = pod_specs(one(objects, "CronJob", "sail-pipeline-recurring"))
    (container,) = pod["containers"]
    path = Path(args_map(container["args"])["--params-file"])
    (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == path.parent]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    data = one(objects, "ConfigMap", volume["configMap"]["name"])["data"]
    return yaml.safe_load(data[path.name])


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, render(request.param)


def test_every_object_is_named_namespaced_and_labelled(rendered):
    name, objects = rendered
    assert objects
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), "duplicate objects"
    assert {o["kind"] for o in objects} <= CORE_KINDS | CUSTOM_KINDS
    for obj in objects:
        meta = obj["metadata"]
        assert obj["apiVersion"] and meta["name"]
        if obj["kind"] not in CLUSTER_SCOPED:
            assert meta.get("namespace") == NAMESPACE, f"{keys} namespace"
        labels = meta.get("labels") or {}
        assert labels.get("app.kubernetes.io/part-of") == "sail-embedding", meta["name"]
        if name != "base":
            assert labels.get("sail-embedding.io/environment") == name.split("/")[1]
    one(objects, "Namespace", NAMESPACE)


def test_core_objects_fit_the_kubernetes_models(rendered):
    _, objects = rendered
    for obj in objects:
        if obj["kind"] in CORE_KINDS:
            cls = model_class_for(obj)
            assert cls is not None and cls.__module__.startswith("kubernetes."), obj["kind"]
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            assert check(obj, cls) == [], where


def test_containers_run_pinned_images(rendered):
    name, objects = rendered
    for obj in objects:
        for where, pod, _ in pod_specs(obj):
            assert pod.get("containers"), where
            for container in containers(pod):
                image = check_image(container.get("image", ""))  # a digest or a fixed tag
                if image.rpartition(":")[0] == IMAGE:
                    assert image == f"{IMAGE}:{IMAGE_TAGS[name]}", where


def test_the_pipeline_and_the_rendered_endpoint_run_pinned_images(monkeypatch):
    from sail.deploy.inference_service import default_image, render_inference_service, to_manifest

    ir = next(yaml.safe_load_all(PIPELINE.read_text()))
    for executor in ir["deploymentSpec"]["executors"].values():
        check_image(executor["container"]["image"])
    monkeypatch.delenv("SAIL_IMAGE", raising=False)
    isvc = to_manifest(render_inference_service("sail-embedding", "models:/sail-embedding/2", "2"))
    check_image(isvc["spec"]["predictor"]["containers"][0]["image"])
    for moving in (
        "ghcr.io/x/y",
        "ghcr.io/x/y:latest",
        "localhost:5000/y",
        "ghcr.io/x/y@sha256:12",
    ):
        monkeypatch.setenv("SAIL_IMAGE", moving)
        with pytest.raises(ValueError, match="image"):
            default_image()
        with pytest.raises(ValueError, match="image"):
            render_inference_service("sail-embedding", "models:/sail-embedding/2", "2", moving)
    monkeypatch.delenv("SAIL_IMAGE")

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    with pytest.raises(ValueError, match="SAIL_IMAGE"):  # no silent fallback to :latest
        default_image()
    assert check_image("localhost:5000/y:1.0") and check_image("y@sha256:" + "0" * 64)


def test_every_pod_runs_unprivileged(rendered):
    """Non-root with the image's own uid, RuntimeDefault seccomp, no privilege escalation, no
    capabilities, a read-only root filesystem with emptyDirs where the programs write."""
    _, objects = rendered
    for obj in objects:
        for where, pod, _ in pod_specs(obj):
            security = pod.get("securityContext") or {}
            assert security.get("runAsNonRoot") is True, where
            assert security.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            if obj["kind"] != "CronJob":  # only the submission calls an API (KFP's)
                assert pod.get("automountServiceAccountToken") is False, where
            empty_dirs = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}
            for container in containers(pod):
                repository = re.sub(r"(:[^/:]*)?(@.*)?$", "", container["image"])
                assert security.get("runAsUser") == IMAGE_USERS[repository], where
                context = container.get("securityContext") or {}
                assert context.get("allowPrivilegeEscalation") is False, where
                assert context.get("readOnlyRootFilesystem") is True, where
                assert context.get("capabilities") == {"drop": ["ALL"]}, where
                assert not {"privileged", "runAsUser"} & set(context), where
                writable = {
                    m["mountPath"]: m["name"]
                    for m in container.get("volumeMounts") or []
                    if m["name"] in empty_dirs
                }
                assert "/tmp" in writable, f"{where} {container['name']}: no writable /tmp"
                if repository == IMAGE:
                    assert "/home/sail" in writable, f"{where}: caches under ~"


def test_no_secret_reaches_a_command_line(rendered):
    """Process arguments are readable by every user of a node (/proc/PID/cmdline): a variable from
    a Secret is never expanded into one, by Kubernetes ($(VAR)) or a shell ($VAR), and no Secret's
    value is written in a command."""
    name, objects = rendered
    values = {
        value
        for o in objects
        if o["kind"] == "Secret"
        for key, value in (o.get("stringData") or {}).items()
        if re.search(r"password|secret|uri|\.ini", key, re.IGNORECASE)
    }
    for obj in objects:
        for where, pod, _ in pod_specs(obj):
            for container in containers(pod):
                secret = {
                    e["name"]
                    for e in container.get("env") or []
                    if "secretKeyRef" in (e.get("valueFrom") or {})
                    or "$(" in e.get("value", "")  # composed from others, e.g. MC_HOST_local
                }
                assert not any("secretRef" in s for s in container.get("envFrom") or []), where
                for word in (container.get("command") or []) + (container.get("args") or []):
                    used = set(re.findall(r"\$\(?\{?([A-Za-z_][A-Za-z0-9_]*)", word))
                    assert not used & secret, f"{where}: {used & secret} on the command line"
                    assert not [v for v in values if v in word], f"{where}: a secret in {word!r}"


def test_selectors_match_their_pod_templates(rendered):
    _, objects = rendered
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            selector = obj["spec"]["selector"]["matchLabels"]
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert selector and selector.items() <= labels.items(), obj["metadata"]["name"]
        if obj["kind"] == "StatefulSet":
            service = one(objects, "Service", obj["spec"]["serviceName"])
            assert service["spec"].get("clusterIP") == "None", "a StatefulSet wants a headless one"


def test_services_select_pods_and_their_ports(rendered):
    _, objects = rendered
    pods = [
        (labels, pod)
        for obj in objects
        if obj["kind"] in ("Deployment", "StatefulSet")
        for _, pod, labels in pod_specs(obj)
    ]
    for service in (o for o in objects if o["kind"] == "Service"):
        selector = service["spec"]["selector"]
        matching = [pod for labels, pod in pods if selector.items() <= labels.items()]
        assert len(matching) == 1, f"Service {service['metadata']['name']} selects {len(matching)}"
        ports = [p for c in matching[0]["containers"] for p in c.get("ports") or []]
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert any(target in (p.get("name"), p["containerPort"]) for p in ports), target


def test_references_resolve(rendered):
    """ConfigMaps, Secrets (and their keys), claims and service accounts that pods name exist in the
    render; only production's external Secrets (docs/deploy.md) may come from outside."""
    name, objects = rendered
    present = {(o["kind"], o["metadata"]["name"]): o for o in objects}

    def keys_of(kind: str, ref: str) -> set[str] | None:
        obj = present.get((kind, ref))
        if obj is None:
            return None
        return set(obj.get("data") or {}) | set(obj.get("stringData") or {})

    def need(kind: str, ref: str, key: str | None, where: str) -> None:
        keys = keys_of(kind, ref)
        if keys is None:
            external = kind == "Secret" and name != "overlays/local" and ref in EXTERNAL_SECRETS
            assert external, f"{where}: {kind} {ref} is not in manifests/{name}"
            assert key is None or key in EXTERNAL_SECRETS[ref], f"{where}: {ref}.{key}"
        elif key is not None:
            assert key in keys, f"{where}: {kind} {ref} has no key {key}"

    for obj in objects:
        if obj["kind"] == "ServiceAccount":
            for secret in obj.get("secrets") or []:
                need("Secret", secret["name"], None, obj["metadata"]["name"])
        if obj["kind"] == "RoleBinding":
            assert ("Role", obj["roleRef"]["name"]) in present
        for where, pod, _ in pod_specs(obj):
            if account := pod.get("serviceAccountName"):
                need("ServiceAccount", account, None, where)
            for volume in pod.get("volumes") or []:
                if "configMap" in volume:
                    need("ConfigMap", volume["configMap"]["name"], None, where)
                if "secret" in volume:
                    need("Secret", volume["secret"]["secretName"], None, where)
                if "persistentVolumeClaim" in volume:
                    claim = volume["persistentVolumeClaim"]["claimName"]
                    need("PersistentVolumeClaim", claim, None, where)
            for container in containers(pod):
                defined = set()
                for source in container.get("envFrom") or []:
                    for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                        if field in source:
                            need(kind, source[field]["name"], None, where)
                            defined |= keys_of(kind, source[field]["name"]) or set()
                for env in container.get("env") or []:
                    defined.add(env["name"])
                    ref = env.get("valueFrom") or {}
                    for kind, field in (
                        ("ConfigMap", "configMapKeyRef"),
                        ("Secret", "secretKeyRef"),
                    ):
                        if field in ref:
                            need(kind, ref[field]["name"], ref[field]["key"], where)
                words = (container.get("command") or []) + (container.get("args") or [])
                for variable in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", " ".join(words)):
                    assert variable in defined, f"{where}: $({variable}) is not in the environment"


def test_production_ships_no_secrets_and_the_docs_name_them():
    objects = render("overlays/prod")
    assert not [o for o in objects if o["kind"] == "Secret"]
    assert not {"postgres", "minio", "redis"} & {o["metadata"]["name"] for o in objects}
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for secret, keys in EXTERNAL_SECRETS.items():
        assert secret in docs
        assert all(key in docs for key in keys), secret
    local = render("overlays/local")
    for secret, keys in EXTERNAL_SECRETS.items():
        assert keys <= set(secret_data(local, secret)), f"local {secret} lacks keys"


@pytest.mark.parametrize("overlay", ["overlays/local", "overlays/prod"])
def test_inference_service(overlay):
    from kserve import V1beta1InferenceService

    objects = render(overlay)
    isvc = one(objects, "InferenceService", "sail-embedding")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert check(isvc, V1beta1InferenceService) == []
    assert isvc["metadata"]["annotations"]["sail-embedding.io/model-version"]
    predictor = isvc["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert container["image"] == f"{IMAGE}:{IMAGE_TAGS[overlay]}"
    assert container["command"] == ["python", "-m", "sail.serving"]
    flags = args_map(container["args"])
    assert (flags["--host"], flags["--port"]) == ("0.0.0.0", "8080")  # reachable from the node
    uri_variable = re.fullmatch(r"\$\((STORAGE_URI|MODEL_URI)\)", flags["--model-uri"])[1]
    version = isvc["metadata"]["annotations"]["sail-embedding.io/model-version"]
    # a pinned version, the one the annotation and MODEL_VERSION name; never an alias (@champion)
    assert env_value(container, uri_variable)["value"] == f"models:/sail-embedding/{version}"
    assert env_value(container, "MODEL_VERSION")["value"] == version
    tracking = env_value(container, "MLFLOW_TRACKING_URI")["valueFrom"]["configMapKeyRef"]
    assert config_data(objects)[tracking["key"]].startswith("http://mlflow.")
    assert [p["containerPort"] for p in container["ports"]] == [8080]
    probe = container["readinessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == ("/v2/health/ready", 8080)
    memory = parse_quantity(container["resources"]["limits"]["memory"])
    if overlay == "overlays/prod":
        assert 0 < predictor["canaryTrafficPercent"] < 100
        assert 2 <= predictor["minReplicas"] <= predictor["maxReplicas"]
        assert "serving.kserve.io/deploymentMode" not in isvc["metadata"].get("annotations", {})
        local = one(render("overlays/local"), "InferenceService")["spec"]["predictor"]
        local_memory = parse_quantity(local["containers"][0]["resources"]["limits"]["memory"])
        assert memory > local_memory
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert flags["--device"] == "cuda"
    else:
        assert "canaryTrafficPercent" not in predictor and "--device" not in flags
        annotations = isvc["metadata"]["annotations"]
        assert annotations["serving.kserve.io/deploymentMode"] == "RawDeployment"


@pytest.mark.parametrize("overlay", ["overlays/local", "overlays/prod"])
def test_mlflow_server(overlay):
    objects = render(overlay)
    (container,) = one(objects, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["mlflow", "server"]
    flags = args_map(container["args"])
    assert flags["--host"] == "0.0.0.0"
    assert flags["--app-name"] == "basic-auth"  # every request authenticated
    # the CLI reads the store and the destination from the environment, never from its arguments
    assert not {"--backend-store-uri", "--artifacts-destination"} & set(flags)
    db = env_value(container, "MLFLOW_BACKEND_STORE_URI")["valueFrom"]["secretKeyRef"]
    assert (db["name"], db["key"]) == ("sail-mlflow-db", "uri")
    for variable, key in (
        ("MLFLOW_AUTH_ADMIN_USERNAME", "admin-username"),
        ("MLFLOW_AUTH_ADMIN_PASSWORD", "admin-password"),
        ("MLFLOW_FLASK_SERVER_SECRET_KEY", "flask-secret-key"),
    ):
        ref = env_value(container, variable)["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == ("sail-mlflow-auth", key)
    ini = Path(env_value(container, "MLFLOW_AUTH_CONFIG_PATH")["value"])
    pod = one(objects, "Deployment", "mlflow")["spec"]["template"]["spec"]
    (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == ini.parent]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "sail-mlflow-auth"
    assert [i["path"] for i in volume["secret"]["items"]] == [ini.name]
    users = one(objects, "Job", "mlflow-users")["spec"]["template"]["spec"]["containers"][0]
    for variable in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert env_value(users, variable)["valueFrom"]["secretKeyRef"]["name"] == "sail-mlflow-auth"
    # the predictor reads with its own user, training writes with the pipeline's
    predictor = one(objects, "InferenceService")["spec"]["predictor"]["containers"][0]
    training = one(objects, "PyTorchJob")["spec"]["pytorchReplicaSpecs"]
    for container_, user in [(predictor, "sail-mlflow-reader")] + [
        (r["template"]["spec"]["containers"][0], "sail-mlflow-pipeline") for r in training.values()
    ]:
        for variable in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            assert env_value(container_, variable)["valueFrom"]["secretKeyRef"]["name"] == user
    config = config_data(objects)
    assert config["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    if overlay == "overlays/local":
        ini = configparser.ConfigParser()
        ini.read_string(secret_data(objects, "sail-mlflow-auth")["basic_auth.ini"])
        assert ini["mlflow"]["default_permission"] == "READ"
        assert ini["mlflow"]["database_uri"].endswith("/mlflow_auth")
        assert (
            "CREATE DATABASE mlflow_auth"
            in one(objects, "ConfigMap", "postgres-initdb")["data"]["auth.sql"]
        )
        assert secret_data(objects, "sail-mlflow-db")["uri"].startswith(
            "postgresql://mlflow:mlflow-dev-password@postgres.sail-embedding.svc"
        )
        postgres = one(objects, "StatefulSet", "postgres")
        assert postgres["spec"]["volumeClaimTemplates"]
        assert (
            config["MLFLOW_S3_ENDPOINT_URL"] == "http://minio.sail-embedding.svc.cluster.local:9000"
        )
        # the bucket job creates the buckets the config points at
        job = one(objects, "Job", "minio-buckets")["spec"]["template"]["spec"]["containers"][0]
        for key in ("MLFLOW_ARTIFACTS_DESTINATION", "FEAST_REGISTRY_PATH"):
            bucket = config[key].removeprefix("s3://").split("/")[0]
            assert f"local/{bucket}" in " ".join(job["args"]), bucket
        one(objects, "Service", "minio")


@pytest.mark.parametrize("overlay", ["overlays/local", "overlays/prod"])
def test_feast_feature_server(overlay):
    objects = render(overlay)
    pod = one(objects, "Deployment", "feast")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][0] == "feast" and "serve" in container["command"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/feast")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    config_map = one(objects, "ConfigMap", volume["configMap"]["name"])
    text = config_map["data"]["feature_store.yaml"]
    store = yaml.safe_load(text)
    assert store["online_store"]["type"] == "postgres" and store["online_store"]["vector_enabled"]
    assert store["project"] and store["registry"]["path"]
    # every ${VAR} Feast expands is in the server's environment
    defined = {e["name"] for e in container["env"]} | set(config_data(objects))
    assert set(re.findall(r"\$\{(\w+)\}", text)) <= defined
    if overlay == "overlays/local":
        online = secret_data(objects, "sail-feast-online")
        one(objects, "Service", online["host"].split(".")[0])
        postgres = one(objects, "StatefulSet", "postgres")["spec"]["template"]["spec"]
        assert postgres["containers"][0]["image"].startswith("pgvector/pgvector:")
        initdb = one(objects, "ConfigMap", "postgres-initdb")["data"]
        assert "CREATE EXTENSION IF NOT EXISTS vector" in "".join(initdb.values())


@pytest.mark.parametrize("overlay", KUSTOMIZATIONS)
def test_pytorchjob(overlay):
    objects = render(overlay)
    job = one(objects, "PyTorchJob")
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "PyTorchJob")
    config = job["metadata"]["annotations"]["sail-embedding.io/deepspeed-config"]
    assert config == "model_code/training/configs/deepspeed_zero2.json"
    assert json.loads((ROOT / config).read_text())["zero_optimization"]["stage"] == 2
    assert job["spec"]["runPolicy"]["suspend"] is True  # applying the platform trains nothing
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert set(replicas) == {"Master", "Worker"}
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] >= 1
    procs = int(job["spec"]["nprocPerNode"])
    for role, replica in replicas.items():
        assert replica["restartPolicy"] == "OnFailure"
        assert check(replica["template"], "V1PodTemplateSpec") == [], role
        pod = replica["template"]["spec"]
        (container,) = pod["containers"]
        assert container["name"] == "pytorch"  # the operator injects its env into this one
        assert container["command"] == ["torchrun"]
        assert container["args"][:3] == ["-m", "sail", "train"]
        flags = args_map(container["args"])
        assert flags["--stage"] == "content1" and flags["--out"].startswith("/runs/")
        assert any(m["mountPath"] == "/runs" for m in container["volumeMounts"])
        gpus = container["resources"]["limits"].get("nvidia.com/gpu")
        if overlay == "overlays/local":
            assert flags["--preset"] == "mini" and gpus is None and procs == 1
        else:
            assert flags["--preset"] == "base"
        if overlay == "overlays/prod":
            assert int(gpus) == procs == 8
            assert container["resources"]["requests"]["nvidia.com/gpu"] == gpus
    if overlay == "overlays/prod":
        claim = one(objects, "PersistentVolumeClaim", "sail-training-runs")
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


@pytest.mark.parametrize("overlay", KUSTOMIZATIONS)
def test_recurring_pipeline_cronjob(overlay):
    objects = render(overlay)
    cron = one(objects, "CronJob", "sail-pipeline-recurring")["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    assert 0 < cron["startingDeadlineSeconds"] <= 3600  # missed runs are skipped, not caught up
    (container,) = cron["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["sail", "pipeline", "submit"]
    assert args_map(container["args"]) == {
        "--host": "$(KFP_HOST)",
        "--package": "pipelines/sail_pipeline.yaml",
        "--params-file": "/etc/sail-pipeline/parameters.yaml",
    }
    assert isinstance(recurring_parameters(objects), dict)  # the file is mounted there
    assert config_data(objects)["KFP_HOST"].startswith("http://")
    assert cron.get("suspend", False) is (overlay == "overlays/local")


@pytest.mark.parametrize("overlay", KUSTOMIZATIONS)
def test_recurring_parameters_fit_the_compiled_pipeline(overlay):
    from sail.pipeline.arguments import check_arguments, parameters

    known = parameters(PIPELINE)
    if "sail_home" in known and "data_uri" not in known:
        pytest.skip(
            "pipelines/sail_pipeline.yaml predates the pipeline's data_uri parameter (it still has "
            "sail_home): recompile it from the rewritten pipeline"
        )
    listed = recurring_parameters(render(overlay))
    assert check_arguments(PIPELINE, listed) == listed  # every parameter listed, every one valid


def test_every_pipeline_step_runs_as_the_image_user_with_the_pipeline_mlflow_user():
    """KFP's backend adds no privilege escalation, no capabilities and RuntimeDefault seccomp."""
    platform = list(yaml.safe_load_all(PIPELINE.read_text()))[1]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors
    for name, executor in executors.items():
        context = executor["securityContext"]
        assert context["runAsNonRoot"] is True and int(context["runAsUser"]) == 1000, name
        secrets = {
            item["envVar"]: (secret["secretName"], item["secretKey"])
            for secret in executor["secretAsEnv"]
            for item in secret["keyToEnv"]
        }
        assert secrets["MLFLOW_TRACKING_USERNAME"] == ("sail-mlflow-pipeline", "username"), name
        assert secrets["MLFLOW_TRACKING_PASSWORD"] == ("sail-mlflow-pipeline", "password"), name
