"""The compiled pipeline: checked in, reproducible, loadable, with the documented DAG."""

from pathlib import Path

import yaml
from kfp import components

from pipelines.sail_pipeline import compile_pipeline

CHECKED_IN = Path(__file__).resolve().parents[2] / "pipelines" / "sail_pipeline.yaml"


def test_recompiling_gives_the_checked_in_yaml(tmp_path):
    fresh = Path(compile_pipeline(str(tmp_path / "pipeline.yaml")))
    assert fresh.read_text() == CHECKED_IN.read_text(), "run `make compile` and commit the YAML"


def test_the_yaml_loads_with_kfp_and_has_the_dag():
    pipeline = components.load_component_from_file(str(CHECKED_IN))
    assert pipeline.name == "sail-embedding"
    spec = yaml.safe_load(CHECKED_IN.read_text())
    exit_dag = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    after = {name: set(task.get("dependentTasks", [])) for name, task in exit_dag.items()}
    assert after["train-stage"] == {"validate-data"}  # content1
    assert after["train-stage-2"] == {"train-stage", "validate-data"}  # content2
    assert after["mine-negatives"] == {"train-stage-2"}
    assert after["train-stage-3"] == {"mine-negatives", "train-stage-2", "validate-data"}
    assert "train-teacher" in after["train-stage-5"]  # id2item distils the ID teacher
    assert after["register-model"] >= {"evaluate-model", "train-stage-5"}
    assert "register-model" in after["condition-2"]  # publish + deploy only when promoted
    condition = spec["components"]["comp-condition-2"]["dag"]["tasks"]
    assert set(condition) == {"publish-embeddings", "deploy-endpoint"}
    assert spec["root"]["dag"]["tasks"]["finish-run"]["triggerPolicy"]["strategy"] == (
        "ALL_UPSTREAM_TASKS_COMPLETED"
    )


def test_no_task_is_cached_and_components_use_the_project_image():
    text = CHECKED_IN.read_text()
    assert "enableCache: true" not in text
    executors = yaml.safe_load(text)["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values()}
    assert images == {"ghcr.io/sail-embedding/sail-platform:0.1.0"}
