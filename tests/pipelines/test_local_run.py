"""The real pipeline function through kfp.local's SubprocessRunner, in the cluster's shape: data
enters through the ingest step (the packaged sources, drawings capped small), every step runs in a
scratch home of its own, and MLflow is a real `mlflow server` on 127.0.0.1."""

import tempfile
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from hostile.validation import DUPLICATE_ITEM, snapshot
from model_code.data.movielens import source_dir
from sail.cli import app
from sail.feature_store.repo import read_state
from sail.pipeline.isolation import find_sharing
from sail.pipeline.local import run_locally, shared_roots
from sail.tracking.server import local_server
from sail.tracking.store import configure

LIMIT = 300  # openclipart pairs: enough for every stage's batches, rendered from the session cache
OPEN = (
    -0.99
)  # a baseline margin that lets the 2-step models through, to exercise publish and deploy
STEPS = {"ingest_data", "validate_data", "train_teacher", "mine_negatives", "evaluate", "register"}
STEPS |= {f"train_{s}" for s in ("content1", "content2", "content3", "seq2item", "id2item")}


@pytest.fixture
def fresh_home(prepared_home, tmp_path, monkeypatch):
    """An empty SAIL_HOME of this test's own (no data, no stores); the session's render and
    tower-feature caches."""
    home = tmp_path / "home"
    monkeypatch.setenv("SAIL_HOME", str(home))
    monkeypatch.setenv("SAIL_CACHE_DIR", str(prepared_home / "cache"))
    for name in ("MLFLOW_TRACKING_URI", "SAIL_FEATURE_STORE", "SAIL_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return home


def _new_ratings(users: int, per_user: int, since: int) -> list[str]:
    """Positive ratings, from `since` on, of movies each of the first `users` users never rated."""
    rated: dict[str, set[str]] = {}
    for line in (source_dir() / "ml-100k.inter").read_text().splitlines()[1:]:
        user, item = line.split("\t")[:2]
        rated.setdefault(user, set()).add(item)
    rows = []
    for user in map(str, range(1, users + 1)):
        unseen = [str(item) for item in range(1, 1683) if str(item) not in rated[user]]
        for item in unseen[:per_user]:
            rows.append(f"{user}\t{item}\t5\t{since + len(rows) * 60}")
    return rows


def _step_runs(parent_run_id):
    runs = mlflow.search_runs(filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'")
    return dict(zip(runs["tags.mlflow.runName"], runs["status"], strict=True))


def test_whole_pipeline_in_isolated_steps(fresh_home, tmp_path):
    from sail.feature_store.query import similar

    audit = tmp_path / "audit"
    scratch_before = set(Path(tempfile.gettempdir()).glob("sail-step-*"))
    run = run_locally("tiny", "quick", data_limit=LIMIT, baseline_margin=OPEN, audit_dir=audit)
    assert run.status == "FINISHED" and run.versions == {"champion": "1", "challenger": "1"}
    assert run.snapshot == "packaged" and run.gate.startswith("v1 promoted: promoted (no champion")
    assert set(run.step_seconds) == STEPS | {"publish", "deploy"}
    assert 0 < run.orchestration_seconds < run.seconds
    with local_server(fresh_home / "mlflow") as uri:
        configure(uri)
        assert set(_step_runs(run.parent_run_id).values()) == {"FINISHED"}
        _check_lineage(run.parent_run_id)
    neighbours = similar("50", 5)
    assert len(neighbours) == 5 and all(n.title for n in neighbours)
    manifests = list(run.pipeline_root.glob("*/deploy-endpoint/manifest"))
    assert manifests and "models:/sail-embedding/1" in manifests[0].read_text()
    # data entered through the DAG, steps met only through artifacts, services and caches
    assert not (fresh_home / "data").exists()
    assert find_sharing(audit, shared_roots()) == []
    assert len(list(audit.glob("*.json"))) == 14  # every step recorded (finish_run too)
    assert set(Path(tempfile.gettempdir()).glob("sail-step-*")) == scratch_before
    assert not list(run.pipeline_root.rglob("*.partial"))
    trained = list(run.pipeline_root.glob("*/train-stage*/model"))
    assert len(trained) == 5 and all((folder / "model").is_dir() for folder in trained)
    assert not list(run.pipeline_root.rglob("checkpoints"))  # only a resume needs them


def _check_lineage(parent_run_id: str) -> None:
    """A readable parent run with the pipeline's parameters and headline figures; every step
    that read the data records the same dataset input; the version describes itself."""
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_run_id)
    assert parent.info.run_name.startswith("tiny · quick · 20")
    assert parent.data.params["baseline_margin"] == str(OPEN)
    assert "validation/openclipart/t2i_recall_10" in parent.data.metrics
    assert parent.data.tags["sail.gate"] == "promoted"
    steps = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_run_id}'"
    )
    inputs = {
        step.info.run_name: {(d.dataset.name, d.dataset.digest) for d in step.inputs.dataset_inputs}
        for step in steps
    }
    commits = {step.data.tags.get("mlflow.source.git.commit") for step in steps}
    assert commits == {parent.data.tags["sail.git_commit"]}  # every step, the same source
    read = {name for name, found in inputs.items() if found}
    assert read == STEPS | {"publish"}  # deploy reads only the registry
    assert len(set().union(*inputs.values())) == 1  # one snapshot, one digest
    # pictures: every stage's loss on one chart in the parent, the evaluation's in its step
    assert "plots/loss_all_stages.png" in {
        a.path for a in client.list_artifacts(parent_run_id, "plots")
    }
    evaluate = next(step for step in steps if step.info.run_name == "evaluate")
    pictures = {a.path for a in client.list_artifacts(evaluate.info.run_id, "pictures")}
    assert {"pictures/retrieval_grid.png", "pictures/movielens_users.html"} <= pictures
    deploy = next(step for step in steps if step.info.run_name == "deploy")
    assert deploy.data.tags["sail.catalogue"] == "unchanged (default 1)"  # v1 serves, all of it
    version = client.get_model_version("sail-embedding", "1")
    assert "content1 2 → content2 2 → content3 2 → seq2item 2 → id2item 2" in version.description
    assert "Champion now: version 1" in client.get_registered_model("sail-embedding").description


@pytest.mark.slow  # `make hostile` runs the same case ("A stop means nothing registered...")
def test_a_corrupted_snapshot_stops_the_run_at_validation(fresh_home, tmp_path):
    snapshots = snapshot(tmp_path / "snapshots", "2026-11-29", items=[DUPLICATE_ITEM])
    with pytest.raises(RuntimeError, match="validate-data"):
        run_locally("tiny", "quick", data_uri=str(snapshots), data_limit=LIMIT)
    with local_server(fresh_home / "mlflow") as uri:
        configure(uri)
        (parent,) = mlflow.search_runs(filter_string="tags.`sail.role` = 'pipeline'").itertuples()
        assert parent.status == "FAILED"
        assert _step_runs(parent.run_id) == {"ingest_data": "FINISHED", "validate_data": "FAILED"}
        runs = mlflow.search_runs(filter_string="tags.`sail.step` = 'validate_data'")
        validation = mlflow.artifacts.load_dict(f"runs:/{runs['run_id'][0]}/validation.json")
        assert "item_id" in str(validation["failures"])
        assert mlflow.MlflowClient().search_registered_models() == []
    assert read_state(fresh_home)["versions"] == {}  # nothing published
    assert not (fresh_home / "feature_store").exists()  # no store, no registry


def test_bad_arguments_are_refused_before_anything_starts(fresh_home):
    with pytest.raises(ValueError, match="publish_dim"):
        run_locally("tiny", "quick", dim=100)
    with pytest.raises(ValueError, match="data_uri"):
        run_locally("tiny", "quick", data_uri="nosuchscheme://x")
    with pytest.raises(ValueError, match="stage_overrides: stage 'content1': lr: input should"):
        run_locally("tiny", "quick", stage_overrides={"content1": {"lr": "fast"}})
    runner = CliRunner()
    for pair in ("content1.lr", "lr=1e-4", "content9.lr=1e-4"):  # no =, no stage, no such stage
        result = runner.invoke(app, ["pipeline", "run", "--preset", "tiny", "--set", pair])
        assert result.exit_code == 2, result.output
    assert (
        "use STAGE.KEY=VALUE" in runner.invoke(app, ["pipeline", "run", "--set", "lr=1e-4"]).output
    )
    assert not fresh_home.exists()  # no server, no pipeline root


@pytest.mark.slow
def test_retraining_on_appended_data(fresh_home, tmp_path):
    """A first run on the packaged data, then a scheduled-style run on the newest snapshot: the
    ratings of MovieLens-100K with newer ones appended (2026, after its last date)."""
    first = run_locally("tiny", "quick", data_limit=LIMIT, baseline_margin=OPEN)
    newer = _new_ratings(users=200, per_user=2, since=1795000000)  # 2026-11-18 on
    snapshots = snapshot(tmp_path / "snapshots", "2026-11-01")
    snapshot(snapshots, "2026-11-29", ratings=newer)
    second = run_locally(
        "tiny",
        "quick",
        data_uri=f"file://{snapshots}",
        data_limit=LIMIT,
        baseline_margin=OPEN,
    )
    assert second.snapshot == "2026-11-29" and first.snapshot == "packaged"
    assert set(second.step_seconds) >= STEPS
    with local_server(fresh_home / "mlflow") as uri:
        configure(uri)
        assert set(_step_runs(second.parent_run_id).values()) == {"FINISHED"}
        client = mlflow.MlflowClient()
        versions = {
            v.version: v.tags for v in client.search_model_versions("name='sail-embedding'")
        }
        assert set(versions) == {"1", "2"}
        assert versions["1"]["sail.data_fingerprint"] != versions["2"]["sail.data_fingerprint"]
        # the champion was measured again on the new data before the gate compared
        assert versions["1"]["sail.evaluated_on"] == versions["2"]["sail.data_fingerprint"]
        assert (versions["1"]["sail.data_snapshot"], versions["2"]["sail.data_snapshot"]) == (
            "packaged",
            "2026-11-29",
        )
        ingest = mlflow.search_runs(
            filter_string=f"tags.`mlflow.parentRunId` = '{second.parent_run_id}' "
            "and tags.`sail.step` = 'ingest_data'"
        )
        assert list(ingest["tags.sail.data_snapshot"]) == ["2026-11-29"]


@pytest.mark.slow
def test_a_worse_second_run_is_challenger_but_not_champion(fresh_home):
    """mini (real weights) first, then tiny (random weights): the gate keeps mini as champion.
    No tolerance: on the 29 validation drawings of this capped run, recall is coarse enough that
    a random model can land within 0.01 of a 2-step-trained one on a metric."""
    first = run_locally("mini", "quick", data_limit=LIMIT, baseline_margin=OPEN)
    assert first.versions == {"champion": "1", "challenger": "1"}
    second = run_locally("tiny", "quick", tolerance=0.0, data_limit=LIMIT, baseline_margin=OPEN)
    assert second.versions == {"champion": "1", "challenger": "2"}
    with local_server(fresh_home / "mlflow") as uri:
        configure(uri)
        tags = mlflow.MlflowClient().get_model_version("sail-embedding", "2").tags
    assert tags["sail.gate"] == "rejected"
