"""ingest_data: the packaged sources, or the newest snapshot of a data URI, as one Dataset."""

import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kfp import dsl

from components.ingest_data.component import ingest_data
from model_code.data.movielens import source_dir
from model_code.data.storage import MissingSourceData

LIMIT = 40
PARAMETERS = {"preset": "tiny", "data_uri": "", "content1_steps": "2.0", "id2item_steps": "2"}
PARAMETERS |= {f"{stage}_steps": "2" for stage in ("content2", "content3", "seq2item")}


def _ingest(artifact, data_uri: str = ""):
    data, metrics = artifact(dsl.Dataset, "data"), artifact(dsl.Metrics, "metrics")
    ingest_data.python_func(data_uri, LIMIT, PARAMETERS, data, metrics)
    return data, metrics


def test_packaged_sources_become_one_fingerprinted_dataset(home, artifact):
    data, metrics = _ingest(artifact)
    root = Path(data.path)
    assert (root / "openclipart" / "pairs.parquet").is_file()
    assert (root / "movielens" / "sequences.parquet").is_file()
    assert json.loads((root / "snapshot.json").read_text())["snapshot"] == "packaged"
    assert data.metadata["snapshot"] == "packaged"
    assert data.metadata["fingerprint"].startswith("sha256:")
    assert metrics.metadata["movielens.interactions"] == 100_000
    assert 0 < metrics.metadata["openclipart.pairs"] <= LIMIT
    for name, rows in (("tuxpaint.stamps", LIMIT), ("asterisk.prompts", LIMIT)):
        assert 0 < metrics.metadata[name] <= rows
    assert 0 < metrics.metadata["wesnoth.clips"] <= LIMIT
    assert 0 < metrics.metadata["spoken.utterances"] <= 2 * LIMIT
    assert not Path(data.path + ".partial").exists()
    runs = mlflow.search_runs(filter_string="tags.`sail.step` = 'ingest_data'")
    assert list(runs["tags.sail.data_snapshot"]) == ["packaged"]
    (dataset_input,) = mlflow.get_run(runs["run_id"][0]).inputs.dataset_inputs
    assert dataset_input.dataset.name == "sail-data@packaged"
    assert data.metadata["fingerprint"].startswith(f"sha256:{dataset_input.dataset.digest}")
    tags = {tag.key: tag.value for tag in dataset_input.tags}
    assert tags["mlflow.data.context"] == "ingested"
    assert tags["sail.data_fingerprint"] == data.metadata["fingerprint"]


def test_the_first_step_names_the_parent_run_and_records_the_pipeline_parameters(home, artifact):
    _ingest(artifact)
    (parent,) = mlflow.search_runs(filter_string="tags.`sail.role` = 'pipeline'").itertuples()
    run = mlflow.get_run(parent.run_id)
    assert run.info.run_name.startswith("tiny · quick · 20")  # preset, profile, date
    assert run.data.params["content1_steps"] == "2" and run.data.params["preset"] == "tiny"
    assert run.data.tags["sail.profile"] == "quick"


def _snapshot(root: Path, name: str, extra_rows: list[str]) -> None:
    """A MovieLens snapshot: the packaged files, with `extra_rows` appended to the ratings."""
    folder = root / name / "movielens"
    shutil.copytree(source_dir(), folder)
    with (folder / "ml-100k.inter").open("a") as ratings:
        ratings.writelines(f"{row}\n" for row in extra_rows)


def test_the_newest_snapshot_of_a_data_uri_is_ingested(home, artifact, tmp_path):
    snapshots = tmp_path / "snapshots"
    _snapshot(snapshots, "2026-11-01", [])
    _snapshot(snapshots, "2026-11-29", ["1\t50\t5\t1795000000"])  # 2026-11-18
    data, _ = _ingest(artifact, f"file://{snapshots}")
    assert data.metadata["snapshot"] == "2026-11-29"
    assert data.metadata["sources"] == {
        "openclipart": "packaged",
        "movielens": f"{snapshots / '2026-11-29'}/movielens",
        "tuxpaint": "packaged",
        "asterisk": "packaged",
        "wesnoth": "packaged",
        "spoken": "derived",
    }
    ratings = pd.read_parquet(Path(data.path) / "movielens" / "interactions.parquet")
    assert len(ratings) == 100_001 and ratings["timestamp"].max() == 1795000000


def test_a_data_uri_without_snapshots_is_refused_and_leaves_nothing(home, artifact, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingSourceData, match="holds no snapshot"):
        _ingest(artifact, str(tmp_path / "empty"))
    with pytest.raises(MissingSourceData, match="no such folder"):
        _ingest(artifact, str(tmp_path / "missing"))
    assert not list((tmp_path / "artifacts").glob("data*"))
