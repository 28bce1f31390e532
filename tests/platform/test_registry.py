"""The pyfunc model, the registry and the champion gate, on a real sqlite MLflow store."""

from __future__ import annotations

import json

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from model_code.data.synthetic import mixed_items
from model_code.embed import Embedder
from model_code.factory import load_pretrained, save_pretrained
from model_code.items import Item
from sail.tracking.pyfunc import ModelUriError, log_model, model_dir_from_uri, pip_requirements
from sail.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    promote_if_not_worse,
    register,
    version_by_alias,
    version_metrics,
)
from sail.tracking.runs import start_pipeline_run, step_run

PRIMARY = ["t2i/R@10", "ml/HR@10"]


@pytest.fixture(scope="module")
def logged(tiny, tmp_path_factory):
    """A tiny model folder logged once as a pyfunc, in a step run of a fresh store."""
    root = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAIL_HOME", str(root / "home"))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        model_dir = save_pretrained(*tiny, root / "tiny-model")
        with step_run(start_pipeline_run("pipe-reg", {}), "register") as run_id:
            info = log_model(model_dir)
        yield {"model_dir": model_dir, "info": info, "run_id": run_id, "root": root}
        while mlflow.active_run() is not None:
            mlflow.end_run()


@pytest.fixture(scope="module")
def embedder(logged):
    return Embedder.from_pretrained(logged["model_dir"])


def _register(logged, name, **tags):
    return register(
        logged["info"], name=name, pipeline_run_id="pipe-reg", data_fingerprint="data-1", **tags
    )


def test_pyfunc_predicts_what_the_embedder_does(logged, embedder):
    items = mixed_items(4)
    pyfunc = mlflow.pyfunc.load_model(logged["info"].model_uri)
    records = [item.to_dict() for item in items]
    frame = pd.DataFrame({"item": [records[0], json.dumps(records[1]), *records[2:]]})
    vectors = pyfunc.predict(frame, params={"dim": 32, "side": "query"})
    expected = embedder.embed(items, dim=32, side="query").vectors
    assert vectors.shape == (4, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)

    texts = ["a red circle", "a blue square"]
    vectors = pyfunc.predict(pd.DataFrame({"text": texts}))  # defaults: full size, target side
    expected = embedder.embed([Item(id=f"t{i}", title=t) for i, t in enumerate(texts)]).vectors
    assert vectors.shape == (2, embedder.model.config.embed_dim)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_pyfunc_rejects_bad_input(logged):
    pyfunc = mlflow.pyfunc.load_model(logged["info"].model_uri)
    with pytest.raises(Exception, match="column `item`"):
        pyfunc.predict(pd.DataFrame({"caption": ["a red circle"]}))
    with pytest.raises(Exception, match="row 1"):
        pyfunc.predict(pd.DataFrame({"item": [{"title": "ok"}, {"id": "x", "colour": "red"}]}))
    with pytest.raises(Exception, match="Matryoshka"):
        pyfunc.predict(pd.DataFrame({"text": ["a"]}), params={"dim": 5})


def test_logged_model_layout_and_requirements(logged):
    info = logged["info"]
    assert info.signature.params.to_dict()[0]["name"] == "dim"
    folder = model_dir_from_uri(info.model_uri, dst_path=logged["root"] / "dl-logged")
    assert folder.name == "tiny-model" and folder.parent.name == "artifacts"
    assert (folder / "config.json").is_file() and (folder / "tokenizer").is_dir()
    requirements = (folder.parent.parent / "requirements.txt").read_text().split()
    assert "torch==2.13.0" in requirements
    assert "sail-embedding-platform==0.1.0" in requirements
    assert all("+" not in line for line in requirements)
    assert pip_requirements()[0] == "torch==2.13.0"
    runs_uri = f"runs:/{logged['run_id']}/model"
    runs_folder = model_dir_from_uri(runs_uri, dst_path=logged["root"] / "dl-runs")
    assert (runs_folder / "model.safetensors").is_file()


def test_gate_promotes_first_keeps_champion_on_worse_moves_on_better(logged):
    name = "sail-gate"
    good = {"t2i/R@10": 0.30, "ml/HR@10": 0.05, "loss": 1.2}
    v1 = _register(logged, name, git_commit="abc123", parent_model="models:/base/1")
    first = promote_if_not_worse(name, v1, good, PRIMARY, tolerance=0.01)
    assert first.promoted and first.champion is None and first.reason == "no champion yet"
    assert version_by_alias(name, CHAMPION) == v1 == version_by_alias(name, CHALLENGER)

    v2 = _register(logged, name)
    worse = {"t2i/R@10": 0.25, "ml/HR@10": 0.0495}  # HR within tolerance, R@10 not
    second = promote_if_not_worse(name, v2, worse, PRIMARY, tolerance=0.01)
    assert not second.promoted
    assert "t2i/R@10" in second.reason and "ml/HR@10" not in second.reason
    assert "-0.0500" in second.reason
    assert second.deltas == pytest.approx({"t2i/R@10": -0.05, "ml/HR@10": -0.0005})
    assert second.champion["version"] == v1
    assert version_by_alias(name, CHAMPION) == v1 and version_by_alias(name, CHALLENGER) == v2

    v3 = _register(logged, name)
    better = {"t2i/R@10": 0.31, "ml/HR@10": 0.045}  # HR slightly worse but within tolerance
    third = promote_if_not_worse(name, v3, better, PRIMARY, tolerance=0.01)
    assert third.promoted and third.champion["version"] == v1
    assert version_by_alias(name, CHAMPION) == v3

    client = mlflow.MlflowClient()
    tags = {v: client.get_model_version(name, v).tags for v in (v1, v2, v3)}
    assert [tags[v]["sail.gate"] for v in (v1, v2, v3)] == ["promoted", "rejected", "promoted"]
    assert tags[v2]["sail.gate.champion"] == v1
    assert tags[v1]["sail.git_commit"] == "abc123"
    assert tags[v1]["sail.parent_model"] == "models:/base/1"
    assert tags[v2]["sail.pipeline_run_id"] == "pipe-reg"
    assert tags[v2]["sail.data_fingerprint"] == "data-1"
    assert version_metrics(name, v1) == {"t2i/R_10": 0.30, "ml/HR_10": 0.05, "loss": 1.2}
    assert third.to_dict()["challenger"]["metrics"]["t2i/R_10"] == 0.31


def test_gate_bad_inputs(logged):
    name = "sail-gate-bad"
    version = _register(logged, name)
    with pytest.raises(ValueError, match="not in the metrics"):
        promote_if_not_worse(name, version, {"t2i/R@10": 0.3}, PRIMARY)
    with pytest.raises(ValueError, match="at least one primary"):
        promote_if_not_worse(name, version, {"t2i/R@10": 0.3}, [])
    with pytest.raises(ValueError, match="not a number"):
        promote_if_not_worse(name, version, {"t2i/R@10": "n/a"}, ["t2i/R@10"])
    with pytest.raises(mlflow.exceptions.MlflowException):
        promote_if_not_worse(name, "99", {"t2i/R@10": 0.3}, ["t2i/R@10"])
    assert version_by_alias(name, CHAMPION) is None
    assert version_by_alias("no-such-model", CHAMPION) is None
    with pytest.raises(mlflow.exceptions.MlflowException, match="Invalid alias"):
        version_by_alias(name, "bad alias!")


def test_model_dir_from_uri_resolves_aliases_versions_and_folders(logged, embedder, tmp_path):
    name = "sail-uri"
    version = _register(logged, name)
    promote_if_not_worse(name, version, {"t2i/R@10": 0.3}, ["t2i/R@10"])
    folder = model_dir_from_uri(f"models:/{name}@champion", dst_path=tmp_path / "a")
    model, _ = load_pretrained(folder)
    assert model.config.embed_dim == embedder.model.config.embed_dim
    items = mixed_items(4)
    np.testing.assert_allclose(
        Embedder.from_pretrained(folder).embed(items).vectors,
        embedder.embed(items).vectors,
        atol=1e-6,
    )
    by_version = model_dir_from_uri(f"models:/{name}/{version}", dst_path=tmp_path / "b")
    assert (by_version / "model.safetensors").is_file()
    assert model_dir_from_uri(str(logged["model_dir"])) == logged["model_dir"]
    assert model_dir_from_uri(logged["model_dir"].as_uri()) == logged["model_dir"]

    for uri, message in [
        (f"models:/{name}@nope", "alias nope not found"),
        (f"models:/{name}/42", "not found"),
        ("models:/no-such-model@champion", "no-such-model"),
    ]:
        with pytest.raises(ModelUriError, match=f"'{uri}'.*{message}"):
            model_dir_from_uri(uri)
    with pytest.raises(ModelUriError, match="not a model folder"):
        model_dir_from_uri(str(tmp_path / "missing"))
