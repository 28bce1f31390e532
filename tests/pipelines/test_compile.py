"""The compiled pipeline: checked in, reproducible, loadable, with the documented DAG and the
cluster settings kfp.local cannot show (env from ConfigMap/Secret, volumes, resources,
accelerators, timeouts, retries, caching), read back from the YAML."""

from pathlib import Path

import pytest
import yaml
from kfp import components

from pipelines.sail_pipeline import compile_pipeline

CHECKED_IN = Path(__file__).resolve().parents[2] / "pipelines" / "sail_pipeline.yaml"
TRAINING = {f"train-stage{suffix}" for suffix in ("", "-2", "-3", "-4", "-5")}
CACHED = TRAINING | {"validate-data", "mine-negatives", "train-teacher", "evaluate-model"}
SERVICE_STEPS = {"ingest-data", "register-model", "publish-embeddings", "deploy-endpoint"}
CACHE_USERS = TRAINING | {"ingest-data", "mine-negatives", "evaluate-model", "publish-embeddings"}


@pytest.fixture(scope="module")
def spec():
    """The IR document and the Kubernetes platform document of the checked-in YAML."""
    ir, platform = yaml.safe_load_all(CHECKED_IN.read_text())
    return ir, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def _tasks(ir) -> dict[str, dict]:
    """Every task of the pipeline by name, at whatever DAG depth it sits."""
    tasks = dict(ir["root"]["dag"]["tasks"])
    for component in ir["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def test_recompiling_gives_the_checked_in_yaml(tmp_path):
    fresh = Path(compile_pipeline(str(tmp_path / "pipeline.yaml")))
    assert fresh.read_text() == CHECKED_IN.read_text(), "run `make compile` and commit the YAML"


def test_the_yaml_loads_with_kfp_and_has_the_dag(spec):
    pipeline = components.load_component_from_file(str(CHECKED_IN))
    assert pipeline.name == "sail-embedding"
    ir, _ = spec
    exit_dag = ir["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    after = {name: set(task.get("dependentTasks", [])) for name, task in exit_dag.items()}
    assert after["ingest-data"] == set()  # data enters through the DAG's first step
    assert after["validate-data"] == {"ingest-data"}
    assert after["train-stage"] == {"ingest-data", "validate-data"}  # content1 after validation
    assert after["train-teacher"] == {"ingest-data", "validate-data"}
    assert after["train-stage-2"] >= {"train-stage", "validate-data"}  # content2
    assert after["mine-negatives"] == {"ingest-data", "train-stage-2"}
    assert "train-teacher" in after["train-stage-5"]  # id2item distils the ID teacher
    assert after["register-model"] >= {"evaluate-model", "train-stage-5"}
    assert "register-model" in after["condition-2"]  # publish + deploy only when promoted
    condition = ir["components"]["comp-condition-2"]["dag"]["tasks"]
    assert set(condition) == {"publish-embeddings", "deploy-endpoint"}
    assert ir["root"]["dag"]["tasks"]["finish-run"]["triggerPolicy"]["strategy"] == (
        "ALL_UPSTREAM_TASKS_COMPLETED"
    )
    parameters = ir["root"]["inputDefinitions"]["parameters"]
    assert "sail_home" not in parameters and {"data_uri", "data_limit"} <= set(parameters)


def test_only_steps_whose_inputs_are_artifacts_are_cached(spec):
    ir, _ = spec
    tasks = _tasks(ir)
    cached = {
        name for name, task in tasks.items() if task.get("cachingOptions", {}).get("enableCache")
    }
    assert cached == CACHED


def test_service_steps_retry_with_backoff_and_training_does_not(spec):
    ir, _ = spec
    tasks = _tasks(ir)
    retried = {name for name, task in tasks.items() if "retryPolicy" in task}
    assert retried == SERVICE_STEPS | {"finish-run"}
    policy = tasks["register-model"]["retryPolicy"]
    assert policy["maxRetryCount"] == 2 and policy["backoffDuration"] == "30s"
    assert policy["backoffFactor"] == 2.0 and policy["backoffMaxDuration"] == "600s"


def test_every_pod_gets_its_run_id_endpoints_and_a_timeout(spec):
    _, executors = spec
    assert len(executors) == 14
    for name, executor in executors.items():
        assert int(executor["activeDeadlineSeconds"]) > 0, name
        (run_id,) = executor["fieldPathAsEnv"]
        assert run_id == {
            "name": "SAIL_PIPELINE_RUN_ID",
            "fieldPath": "metadata.labels['pipeline/runid']",
        }
        env = {
            item["envVar"]: (source["configMapName"], item["configMapKey"])
            for source in executor["configMapAsEnv"]
            for item in source["keyToEnv"]
        }
        assert env["MLFLOW_TRACKING_URI"] == ("sail-platform-config", "MLFLOW_TRACKING_URI")
        assert env["SAIL_CACHE_DIR"] == ("sail-platform-config", "SAIL_CACHE_DIR")
    assert int(executors["exec-train-stage"]["activeDeadlineSeconds"]) == 6 * 3600


def test_caches_and_the_feature_store_are_volumes_and_publish_and_deploy_get_its_secrets(spec):
    ir, executors = spec
    executor_of = {
        name: ir["components"][task["componentRef"]["name"]]["executorLabel"]
        for name, task in _tasks(ir).items()
        if "componentRef" in task
        and task["componentRef"]["name"] in ir["components"]
        and "executorLabel" in ir["components"][task["componentRef"]["name"]]
    }
    mounting = {
        name
        for name, label in executor_of.items()
        if any(m["constant"] == "sail-cache" for m in executors[label].get("pvcMount", []))
    }
    assert mounting == CACHE_USERS
    for step in ("publish-embeddings", "deploy-endpoint"):
        _check_feature_store(executors[executor_of[step]])
    assert {m["constant"] for m in executors[executor_of["deploy-endpoint"]]["pvcMount"]} == {
        "sail-feature-store"
    }


def _check_feature_store(step: dict) -> None:
    """The Feast settings, secrets, config volume and store folder of a step."""
    secrets = {
        item["envVar"]: (secret["secretName"], item["secretKey"])
        for secret in step["secretAsEnv"]
        if secret["secretName"] != "sail-mlflow-pipeline"  # every step's (test_manifests.py)
        for item in secret["keyToEnv"]
    }
    assert secrets == {
        "AWS_ACCESS_KEY_ID": ("sail-s3-credentials", "AWS_ACCESS_KEY_ID"),
        "AWS_SECRET_ACCESS_KEY": ("sail-s3-credentials", "AWS_SECRET_ACCESS_KEY"),
        **{
            variable: ("sail-feast-online", key)
            for key, variable in {
                "host": "FEAST_ONLINE_HOST",
                "database": "FEAST_ONLINE_DATABASE",
                "username": "FEAST_ONLINE_USER",
                "password": "FEAST_ONLINE_PASSWORD",
                "sslmode": "FEAST_ONLINE_SSLMODE",
            }.items()
        },
    }
    assert step["configMapAsVolume"][0]["mountPath"] == "/etc/feast"
    assert "sail-feature-store" in {m["constant"] for m in step["pvcMount"]}
    feast_env = {i["envVar"] for s in step["configMapAsEnv"] for i in s["keyToEnv"]}
    assert {"SAIL_FEAST_CONFIG", "SAIL_FEATURE_STORE"} <= feast_env


def test_training_asks_for_a_gpu_and_the_rest_does_not(spec):
    ir, _ = spec
    for label, executor in ir["deploymentSpec"]["executors"].items():
        resources = executor["container"].get("resources", {})
        if label.startswith("exec-train-stage"):
            assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
            assert resources["accelerator"]["resourceCount"] == "1"
            assert resources["resourceMemoryRequest"] == "16G"
        else:
            assert "accelerator" not in resources, label


def test_components_use_the_project_image(spec):
    ir, _ = spec
    images = {e["container"]["image"] for e in ir["deploymentSpec"]["executors"].values()}
    assert images == {"ghcr.io/sail-embedding/sail-platform:0.1.0"}


def test_platform_config_defines_every_key_the_pipeline_reads():
    from pipelines.sail_pipeline import FEAST_ENV, STEP_ENV

    config = yaml.safe_load(
        (CHECKED_IN.parents[1] / "manifests" / "base" / "platform-config.yaml").read_text()
    )
    assert set(STEP_ENV) | set(FEAST_ENV) <= set(config["data"])


def test_compile_with_a_built_image_pins_every_step_to_it(tmp_path):
    from typer.testing import CliRunner

    from components.image import BASE_IMAGE
    from sail.cli import app

    checked_in = yaml.safe_load_all(CHECKED_IN.read_text()).__next__()
    placeholder = {
        e["container"]["image"] for e in checked_in["deploymentSpec"]["executors"].values()
    }
    assert placeholder == {BASE_IMAGE}  # the documented placeholder, replaced at compile time
    built = "registry.example/sail-platform@sha256:" + "ab" * 32
    out = tmp_path / "pipeline.yaml"
    compiled = CliRunner().invoke(
        app, ["pipeline", "compile", "--output", str(out), "--image", built]
    )
    assert compiled.exit_code == 0, compiled.output
    ir = next(yaml.safe_load_all(out.read_text()))
    executors = ir["deploymentSpec"]["executors"].values()
    assert {e["container"]["image"] for e in executors} == {built}
    for executor in executors:  # the deploy step renders the InferenceService with it
        assert {"name": "SAIL_IMAGE", "value": built} in executor["container"]["env"]
    assert components.load_component_from_file(str(out)).name == "sail-embedding"


def test_the_deploy_step_renders_the_image_it_runs_in(monkeypatch):
    from sail.deploy.inference_service import default_image, render_inference_service

    built = "registry.example/sail-platform@sha256:" + "cd" * 32
    monkeypatch.setenv("SAIL_IMAGE", built)
    assert default_image() == built
    isvc = render_inference_service("sail-embedding", "models:/sail-embedding/3", "3")
    assert isvc.spec.predictor.containers[0].image == built
