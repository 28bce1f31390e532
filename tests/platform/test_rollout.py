"""The deploy step's cluster path against a fake Kubernetes API (tests/platform/fake_kube_api.py,
over HTTP through the real kubernetes client): only the release fields are patched (a JSON patch),
production's settings stay, the wait for Ready and its timeout, and the rollback of a failed canary.
The pure parts (release patches, reading the status) are tested on the objects' JSON first."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from fake_kube_api import FakeKubeApi, apply_json_patch

from sail.deploy.api import ApiError, InferenceServices
from sail.deploy.deploy import deploy
from sail.deploy.inference_service import (
    NAMESPACE,
    VERSION_KEY,
    render_inference_service,
    to_manifest,
)
from sail.deploy.readiness import readiness
from sail.deploy.release import Release, release_of, release_patch, with_release
from sail.deploy.rollout import NotReady, RollbackFailed

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = os.environ.get("KUBECTL") or shutil.which("kubectl")
NAME = "sail-embedding"
IMAGE = "ghcr.io/sail-embedding/sail-platform:1.2.3"
GPU = {
    "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
    "limits": {"cpu": "8", "memory": "24Gi", "nvidia.com/gpu": "1"},
}
V4, V5 = "models:/sail-embedding/4", "models:/sail-embedding/5"
RELEASE_VARIABLES = {"STORAGE_URI", "MODEL_URI", "MODEL_VERSION"}
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl renders the prod overlay")


def production(version: str = "4", uri: str = V4, canary: int | None = 10) -> dict:
    """A production-like InferenceService: GPUs, `--device cuda`, a canary percent, replicas,
    a node selector and tolerations."""
    isvc = to_manifest(
        render_inference_service(
            NAME, uri, version, IMAGE, NAMESPACE, canary, GPU, min_replicas=2, max_replicas=8
        )
    )
    predictor = isvc["spec"]["predictor"]
    predictor["containers"][0]["args"] += ["--device", "cuda"]
    predictor["nodeSelector"] = {"nvidia.com/gpu.present": "true"}
    predictor["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    return isvc


def prod_overlay() -> list[dict]:
    """`kubectl kustomize manifests/overlays/prod`: every object of the prod overlay."""
    done = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / "manifests/overlays/prod")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def without_release(isvc: dict) -> dict:
    """The object with the release fields blanked: what a release must leave as it was."""
    isvc = copy.deepcopy(isvc)
    isvc.pop("status", None)
    meta = isvc["metadata"]
    for key in ("generation", "resourceVersion", "uid"):
        meta.pop(key, None)
    meta["annotations"] = {k: v for k, v in meta["annotations"].items() if "model-" not in k}
    meta["labels"].pop(VERSION_KEY)
    predictor = isvc["spec"]["predictor"]
    predictor["labels"].pop(VERSION_KEY)
    for container in predictor["containers"]:
        container["env"] = [e for e in container["env"] if e["name"] not in RELEASE_VARIABLES]
        container["args"] = [re.sub(r"\$\(\w+_URI\)", "$(URI)", a) for a in container["args"]]
    return isvc


def env_of(isvc: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in isvc["spec"]["predictor"]["containers"][0]["env"]}


@pytest.fixture
def kube():
    with FakeKubeApi(polls_to_ready=2) as api:
        yield api


def roll(kube: FakeKubeApi, uri: str, version: str, out: Path, **options):
    """deploy() with a cluster: the fake's API, no pause between polls."""
    services = InferenceServices(NAMESPACE, kube.api_client())
    options = {"ready_timeout_s": 10, "poll_s": 0, **options}
    return deploy(uri, version, out, cluster=True, services=services, **options)


# --- the release fields, as a JSON patch (pure) -----------------------------------------------


def test_release_patch_changes_the_model_uri_and_version_only():
    live = production()
    patch = release_patch(live, Release(V5, "5"))
    patched = apply_json_patch(live, patch)
    assert without_release(patched) == without_release(live)
    assert release_of(patched) == Release(V5, "5")
    assert env_of(patched)["MODEL_VERSION"] == "5"
    paths = {op["path"] for op in patch}
    assert not any(
        p.endswith(("/containers", "/containers/0", "/resources", "/args")) for p in paths
    )
    assert {op["op"] for op in patch} <= {"test", "replace", "add"}
    # every list element replaced is tested first: a list changed meanwhile fails the patch
    for i, op in enumerate(patch):
        if op["op"] == "replace" and op["path"].rsplit("/", 1)[1].isdigit():
            assert patch[i - 1] == {
                "op": "test",
                "path": op["path"],
                "value": _at(live, op["path"]),
            }
    assert release_patch(patched, Release(V5, "5")) == []  # nothing left to change


def test_release_patch_moves_the_uri_between_variables():
    live = production(uri="s3://sail-mlflow/models/4")
    patched = apply_json_patch(live, release_patch(live, Release(V5, "5")))
    container = patched["spec"]["predictor"]["containers"][0]
    assert container["args"][:2] == ["--model-uri", "$(MODEL_URI)"]
    assert "STORAGE_URI" not in env_of(patched) and env_of(patched)["MODEL_URI"] == V5
    assert without_release(patched) == without_release(live)


def test_release_patch_adds_what_an_older_object_lacks():
    live = production()
    del live["spec"]["predictor"]["labels"]
    container = live["spec"]["predictor"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "MODEL_VERSION"]
    patch = release_patch(live, Release(V5, "5"))
    assert {"op": "add", "path": "/spec/predictor/labels", "value": {VERSION_KEY: "5"}} in patch
    model_version = {"name": "MODEL_VERSION", "value": "5"}
    env_path = "/spec/predictor/containers/0/env/-"
    assert {"op": "add", "path": env_path, "value": model_version} in patch
    patched = apply_json_patch(live, patch)
    assert release_of(patched) == Release(V5, "5") and env_of(patched)["MODEL_VERSION"] == "5"


def test_with_release_sets_a_template_and_keeps_the_rest():
    template = production(version="1", uri="models:/sail-embedding/1")
    rendered = with_release(template, Release(V5, "5"))
    assert release_of(rendered) == Release(V5, "5")
    assert without_release(rendered) == without_release(template)
    assert release_of(template).version == "1"  # the template itself is left alone


def _at(document: dict, pointer: str):
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


# --- reading the status (pure) ----------------------------------------------------------------


def status(observed=3, ready="True", reason="", created="r-2", latest_ready="r-2"):
    condition = {"type": "Ready", "status": ready}
    if reason:
        condition |= {"reason": reason, "message": "it broke"}
    return {
        "metadata": {"generation": 7},  # KServe's observedGeneration is not this one's
        "status": {
            "observedGeneration": observed,
            "conditions": [condition],
            "components": {
                "predictor": {"latestCreatedRevision": created, "latestReadyRevision": latest_ready}
            },
        },
    }


@pytest.mark.parametrize(
    ("isvc", "since", "state", "detail"),
    [
        (status(), 2, "ready", "Ready=True"),
        (status(), None, "ready", "Ready=True"),  # no change awaited
        (status(observed=2), 2, "pending", "not reconciled yet (2)"),  # the status before
        ({"metadata": {}}, 2, "pending", "not reconciled yet (None)"),
        (status(latest_ready="r-1"), 2, "pending", "latest ready is r-1"),  # canary not up yet
        (status(ready="Unknown", reason="RevisionMissing"), 2, "pending", "RevisionMissing"),
        (status(ready="False"), 2, "pending", "Ready=False"),  # a RawDeployment still rolling
        (status(ready="False", reason="RevisionFailed"), 2, "failed", "RevisionFailed: it broke"),
        ({"metadata": {}}, None, "pending", "no Ready condition yet"),  # just created
    ],
)
def test_readiness_from_the_status(isvc, since, state, detail):
    found = readiness(isvc, since)
    assert found.state == state and detail in found.detail


# --- against the fake API -------------------------------------------------------------------


@needs_kubectl
def test_deploy_onto_the_prod_overlay_keeps_its_settings(kube, tmp_path):
    prod = next(o for o in prod_overlay() if o["kind"] == "InferenceService")
    before = kube.seed(prod)
    result = roll(kube, V5, "5", tmp_path)
    after = kube.live(NAMESPACE, NAME)

    # only the model URI and version changed, by one JSON patch
    (patch_request,) = kube.calls("PATCH")
    assert patch_request.content_type == "application/json-patch+json"
    assert without_release(after) == without_release(before)
    assert release_of(after) == Release(V5, "5")
    assert env_of(after)["MODEL_VERSION"] == "5"
    assert after["metadata"]["labels"][VERSION_KEY] == "5"
    # production's settings: GPUs, the device argument, the 10% canary, the image, replicas
    predictor = after["spec"]["predictor"]
    container = predictor["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["args"][-2:] == ["--device", "cuda"]
    assert predictor["canaryTrafficPercent"] == 10
    assert container["image"] == prod["spec"]["predictor"]["containers"][0]["image"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 8)
    # Ready, with the new revision taking the canary's 10%
    assert result.rollout.action == "patch" and not result.rolled_back
    traffic = after["status"]["components"]["predictor"]["traffic"]
    shares = {kube.model_of(NAMESPACE, NAME, t["revisionName"]): t["percent"] for t in traffic}
    assert shares == {V5: 10, "models:/sail-embedding/1": 90}
    assert result.served == {"5": 10, "1": 90}  # read from the revisions' version labels
    assert "v1 -> v5, canary: 10% on sail-embedding-predictor-00002" in result.rollout.report
    # the artifact is the object as applied, pinned
    written = yaml.safe_load(result.manifest.read_text())
    assert written["spec"] == after["spec"] and "status" not in written
    assert "@champion" not in result.manifest.read_text()


@needs_kubectl
def test_first_deploy_creates_from_the_prod_overlay(kube, tmp_path):
    template = tmp_path / "prod.yaml"
    template.write_text(yaml.safe_dump_all(prod_overlay()))
    result = roll(kube, V5, "5", tmp_path / "out", template=template)
    (create,) = kube.calls("POST")
    created = create.body
    assert release_of(created) == Release(V5, "5") and env_of(created)["MODEL_VERSION"] == "5"
    container = created["spec"]["predictor"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["args"][-2:] == ["--device", "cuda"]
    assert created["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert result.rollout.action == "create" and result.served == {"5": 100}
    assert readiness(result.rollout.isvc).state == "ready"
    assert "@champion" not in yaml.safe_dump(created)


def test_deploy_waits_for_ready(tmp_path):
    with FakeKubeApi(polls_to_ready=4) as kube:
        kube.seed(production())
        result = roll(kube, V5, "5", tmp_path)
        (patch_request,) = kube.calls("PATCH")
        after_patch = kube.requests[kube.requests.index(patch_request) + 1 :]
    polls = [r.method for r in after_patch if "/inferenceservices/" in r.path]
    assert polls == ["GET"] * 4  # polled until the 4th answer was Ready
    assert readiness(result.rollout.isvc).state == "ready"
    assert result.rollout.isvc["status"]["components"]["predictor"]["latestReadyRevision"] == (
        "sail-embedding-predictor-00002"
    )


def test_deploy_times_out_with_a_clear_error(kube, tmp_path):
    kube.stuck.add(V5)  # Ready never comes; nothing to roll back to on a first deploy
    started = time.monotonic()
    with pytest.raises(NotReady) as raised:
        roll(kube, V5, "5", tmp_path, ready_timeout_s=0.3, poll_s=0.01)
    assert 0.3 <= time.monotonic() - started < 5
    message = str(raised.value)
    assert message.startswith("InferenceService sail-embedding/sail-embedding:")
    assert "revision sail-embedding-predictor-00001 not Ready after 0.3 s" in message
    assert "Ready=Unknown (RevisionMissing: waiting for the revision)" in message


def test_a_failed_condition_stops_the_wait_at_once(kube, tmp_path):
    kube.failing.add(V5)
    started = time.monotonic()
    with pytest.raises(NotReady, match=r"00001 failed: Ready=False \(RevisionFailed: Revision "):
        roll(kube, V5, "5", tmp_path, ready_timeout_s=60, poll_s=0.01)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("failure", ["failing", "stuck", "check", "check raises"])
def test_a_failed_canary_is_rolled_back(kube, tmp_path, failure):
    before = kube.seed(production())
    if failure in ("failing", "stuck"):
        getattr(kube, failure).add(V5)

    def check(isvc: dict) -> str | None:
        if release_of(isvc).version != "5" or failure not in ("check", "check raises"):
            return None
        if failure == "check raises":
            raise ConnectionError("no route to the canary")
        return "the smoke request answered 500"

    result = roll(kube, V5, "5", tmp_path, ready_timeout_s=0.5, poll_s=0.01, check=check)
    after = kube.live(NAMESPACE, NAME)
    assert result.rolled_back and result.rollout.action == "rolled back"
    assert result.rollout.report.startswith("v5 rolled back to v4: InferenceService")
    # the previous release and every production setting are back, the canary percent included
    assert release_of(after) == Release(V4, "4") and env_of(after)["MODEL_VERSION"] == "4"
    assert without_release(after) == without_release(before)
    assert after["spec"]["predictor"]["canaryTrafficPercent"] == 10
    # every request is served by the previous model
    traffic = after["status"]["components"]["predictor"]["traffic"]
    assert {kube.model_of(NAMESPACE, NAME, t["revisionName"]) for t in traffic} == {V4}
    assert sum(t["percent"] for t in traffic) == 100
    assert result.served == {"4": 100}
    # release; restore with the canary at 0% (KServe's rollback); the canary percent back
    release, restore, canary = (r.body for r in kube.calls("PATCH"))
    assert {"op": "replace", "path": "/spec/predictor/canaryTrafficPercent", "value": 0} in restore
    assert canary == [
        {"op": "replace", "path": "/spec/predictor/canaryTrafficPercent", "value": 10}
    ]
    assert result.rollout.patch == release


def test_a_rollback_that_fails_too_says_what_is_left(kube, tmp_path):
    kube.seed(production())
    kube.failing.update({V5, V4})  # the restored revision fails as well
    with pytest.raises(RollbackFailed) as raised:
        roll(kube, V5, "5", tmp_path, poll_s=0.01)
    message = str(raised.value)
    assert "revision sail-embedding-predictor-00002 failed" in message
    assert "rolling back to v4 did not finish" in message
    assert "revision sail-embedding-predictor-00003 failed" in message
    assert message.endswith("the last rolled-out revision takes all traffic)")


def test_deploying_the_live_release_again_changes_nothing(kube, tmp_path):
    kube.seed(production())
    result = roll(kube, V4, "4", tmp_path)
    assert result.rollout.action == "unchanged" and kube.calls("PATCH") == []


def test_api_errors_name_the_object_and_the_reason(kube):
    kube.seed(production())
    services = InferenceServices(NAMESPACE, kube.api_client())
    stale = [{"op": "test", "path": "/spec/predictor/minReplicas", "value": 1}]
    with pytest.raises(ApiError) as raised:
        services.patch(NAME, stale)
    assert str(raised.value) == (
        "cannot patch InferenceService sail-embedding/sail-embedding: HTTP 422 "
        "Unprocessable Entity: test failed at /spec/predictor/minReplicas"
    )
    assert services.get("missing") is None


def test_the_pipeline_step_fails_after_a_rollback(kube, tmp_path, monkeypatch):
    """steps.deploy on a cluster (KUBECONFIG-style detection, the API client pointed at the fake):
    the manifest is kept, then the step fails with the rollback's report."""
    from sail.pipeline import steps

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("SAIL_PIPELINE_RUN_ID", "run-1")
    monkeypatch.setenv("SAIL_FEATURE_STORE", str(tmp_path / "feature_store"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sail.deploy.deploy.cluster_configured", lambda: True)
    monkeypatch.setattr("sail.deploy.api.kubernetes_api_client", kube.api_client)
    kube.polls_to_ready = 1  # settles at the first poll: the step's 5 s pause is never reached
    kube.seed(production())
    kube.failing.add(V5)
    with pytest.raises(steps.DeployRolledBack, match="^v5 rolled back to v4: InferenceService"):
        steps.deploy("5", tmp_path / "manifest")
    kept = yaml.safe_load((tmp_path / "manifest").read_text())
    assert release_of(kept) == Release(V4, "4")  # what the cluster serves after the rollback


def test_a_revision_without_a_version_label_is_refused():
    from sail.deploy.traffic import UnknownRevision, served_versions, stable_version

    class Revisions:
        def revision_labels(self, revision: str) -> dict:
            return {VERSION_KEY: "4"} if revision.endswith("1") else {}

    isvc = production()
    assert served_versions(Revisions(), isvc) == {"4": 100}  # no traffic status: the spec's
    isvc["status"] = {"components": {"predictor": {"traffic": [
        {"revisionName": "r-00001", "percent": 90},
        {"revisionName": "r-00002", "percent": 10},
    ]}}}  # fmt: skip
    with pytest.raises(UnknownRevision, match="r-00002 takes 10% of the traffic but has no"):
        served_versions(Revisions(), isvc)
    assert stable_version({"4": 90, "5": 10}) == "4"
