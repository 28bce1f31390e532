"""The real pipeline function through kfp.local's SubprocessRunner, on real data prepared small."""

import shutil

import mlflow
import pandas as pd
import pytest

from sail.pipeline.local import run_locally
from sail.tracking.store import configure


@pytest.fixture
def fresh_home(prepared_home, tmp_path, monkeypatch):
    """A SAIL_HOME of this test's own holding a copy of the prepared data, and nothing else."""
    home = tmp_path / "home"
    shutil.copytree(prepared_home / "data", home / "data")
    monkeypatch.setenv("SAIL_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home


def _step_runs(parent_run_id):
    runs = mlflow.search_runs(filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'")
    return dict(zip(runs["tags.mlflow.runName"], runs["status"], strict=True))


def test_whole_pipeline_registers_publishes_and_deploys(fresh_home):
    from sail.feature_store.query import similar

    run = run_locally("tiny", "quick")
    assert run.status == "FINISHED" and run.versions == {"champion": "1", "challenger": "1"}
    configure()
    steps = _step_runs(run.parent_run_id)
    expected = {"validate_data", "train_teacher", "mine_negatives", "evaluate", "register"}
    expected |= {f"train_{s}" for s in ("content1", "content2", "content3", "seq2item", "id2item")}
    expected |= {"publish", "deploy"}
    assert set(steps) == expected and set(steps.values()) == {"FINISHED"}
    assert len(similar("50", 5)) == 5
    manifests = list(run.pipeline_root.glob("*/deploy-endpoint/manifest"))
    assert manifests and "models:/sail-embedding/1" in manifests[0].read_text()


def _duplicate_item_id(data):
    items = data / "movielens" / "items.parquet"
    frame = pd.read_parquet(items)
    frame.loc[1, "item_id"] = frame.loc[0, "item_id"]
    frame.to_parquet(items)


def _drop_sequences(data):
    (data / "movielens" / "sequences.parquet").unlink()


def _truncate_an_image(data):
    image = sorted((data / "openclipart" / "images").glob("*.png"))[0]
    image.write_bytes(image.read_bytes()[:100])


@pytest.mark.parametrize(
    ("corrupt", "named"),
    [
        (_duplicate_item_id, "item_id"),
        pytest.param(_drop_sequences, "sequences", marks=pytest.mark.slow),
        pytest.param(_truncate_an_image, "image_decodes", marks=pytest.mark.slow),
    ],
)
def test_corrupted_data_stops_the_run_at_validation(fresh_home, corrupt, named):
    corrupt(fresh_home / "data")
    with pytest.raises(RuntimeError, match="validate-data"):
        run_locally("tiny", "quick")
    configure()
    (parent,) = mlflow.search_runs(filter_string="tags.`sail.role` = 'pipeline'").itertuples()
    assert parent.status == "FAILED"
    assert _step_runs(parent.run_id) == {"validate_data": "FAILED"}
    validation = mlflow.artifacts.load_dict(f"runs:/{_validation_run()}/validation.json")
    assert named in str(validation["failures"])
    assert mlflow.MlflowClient().search_registered_models() == []
    assert not (fresh_home / "feature_store" / "online.db").exists()


def _validation_run() -> str:
    runs = mlflow.search_runs(filter_string="tags.`sail.step` = 'validate_data'")
    return runs["run_id"][0]


@pytest.mark.slow
def test_a_worse_second_run_is_challenger_but_not_champion(fresh_home):
    """mini (real weights) first, then tiny (random weights): the gate keeps mini as champion."""
    first = run_locally("mini", "quick")
    assert first.versions == {"champion": "1", "challenger": "1"}
    second = run_locally("tiny", "quick")
    assert second.versions == {"champion": "1", "challenger": "2"}
    tags = mlflow.MlflowClient().get_model_version("sail-embedding", "2").tags
    assert tags["sail.gate"] == "rejected"
