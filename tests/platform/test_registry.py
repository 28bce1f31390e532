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
from model_code.factory import load_pretrained
from model_code.items import Item
from sail.tracking.gate import GatePolicy
from sail.tracking.pyfunc import ModelUriError, model_dir_from_uri, pip_requirements
from sail.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    gate,
    record_metrics,
    register,
    rejection,
    validation_metrics,
    version_by_alias,
    version_metrics,
)


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
    assert not [line for line in requirements if line.startswith("sail-embedding-platform")]
    assert all("+" not in line for line in requirements)
    assert pip_requirements()[0] == "torch==2.13.0"
    runs_uri = f"runs:/{logged['run_id']}/model"
    runs_folder = model_dir_from_uri(runs_uri, dst_path=logged["root"] / "dl-runs")
    assert (runs_folder / "model.safetensors").is_file()


T2I, HR = "openclipart/t2i_recall@10", "movielens/hr@10"
BASELINES = {T2I: 0.40, HR: 0.030}
POLICY = GatePolicy(baseline_margin=0.01, tolerance=0.01)


def _evaluation(t2i: float, hr: float, **extra) -> dict:
    """What the evaluate step hands the gate: validation and test metrics and the baselines."""
    validation = {T2I: t2i, HR: hr, **extra}
    return {
        "validation": validation,
        "test": {T2I: t2i - 0.02, HR: hr},
        "baselines": {"validation": BASELINES, "test": BASELINES},
    }


def test_gate_promotes_above_the_baselines_keeps_champion_on_worse_moves_on_better(logged):
    name = "sail-gate"
    v1 = _register(logged, name, git_commit="abc123", parent_model="models:/base/1")
    first = gate(name, v1, _evaluation(0.50, 0.050, loss=1.2), "data-1", POLICY)
    assert first.promoted and first.champion is None
    assert first.reason.startswith("promoted (no champion yet)")
    assert "openclipart/t2i_recall_10 0.5000 >= 0.4100 (frozen baseline 0.4000 +0.01)" in (
        first.reason
    )
    assert version_by_alias(name, CHAMPION) == v1 == version_by_alias(name, CHALLENGER)

    v2 = _register(logged, name)
    worse = _evaluation(0.45, 0.0495)  # HR within the tolerance, R@10 not
    second = gate(name, v2, worse, "data-1", POLICY)
    assert not second.promoted and second.champion == v1
    assert "openclipart/t2i_recall_10 0.4500 < 0.4900 (champion v1 0.5000 -0.01)" in second.reason
    assert "movielens/hr_10" not in second.reason
    assert version_by_alias(name, CHAMPION) == v1 and version_by_alias(name, CHALLENGER) == v2

    v3 = _register(logged, name)
    third = gate(name, v3, _evaluation(0.51, 0.045), "data-1", POLICY)  # HR within tolerance
    assert third.promoted and third.champion == v1
    assert version_by_alias(name, CHAMPION) == v3

    client = mlflow.MlflowClient()
    tags = {v: client.get_model_version(name, v).tags for v in (v1, v2, v3)}
    assert [tags[v]["sail.gate"] for v in (v1, v2, v3)] == ["promoted", "rejected", "promoted"]
    assert tags[v2]["sail.gate.champion"] == v1 and tags[v2]["sail.gate.reason"] == second.reason
    assert tags[v1]["sail.git_commit"] == "abc123"
    assert tags[v1]["sail.parent_model"] == "models:/base/1"
    assert tags[v2]["sail.pipeline_run_id"] == "pipe-reg"
    assert tags[v2]["sail.data_fingerprint"] == "data-1" == tags[v2]["sail.evaluated_on"]
    assert version_metrics(name, v1) == {
        "validation/openclipart/t2i_recall_10": 0.50,
        "validation/movielens/hr_10": 0.05,
        "validation/loss": 1.2,
        "test/openclipart/t2i_recall_10": pytest.approx(0.48),
        "test/movielens/hr_10": 0.05,
    }


def test_a_first_version_below_a_frozen_baseline_is_not_champion(logged):
    name = "sail-gate-first"
    version = _register(logged, name)
    decision = gate(name, version, _evaluation(0.405, 0.2), "data-1", POLICY)
    assert not decision.promoted and version_by_alias(name, CHAMPION) is None
    assert "openclipart/t2i_recall_10 0.4050 < 0.4100 (frozen baseline 0.4000 +0.01)" in (
        decision.reason
    )
    assert decision.split == "validation"
    assert rejection(name) == (
        f"{name} has no champion: version {version} was not promoted: {decision.reason}"
    )


@pytest.mark.parametrize(
    ("evaluation", "problem"),
    [
        (_evaluation(float("nan"), 0.05), "t2i_recall_10: the candidate's value is missing"),
        ({**_evaluation(0.5, 0.05), "validation": {T2I: 0.5}}, "hr_10: the candidate's value"),
        (
            {**_evaluation(0.5, 0.05), "baselines": {"validation": {T2I: 0.4}}},
            "hr_10: frozen baseline has no value on this data",
        ),
    ],
)
def test_nan_or_missing_metrics_are_refused(logged, evaluation, problem):
    name = f"sail-gate-missing-{abs(hash(problem)) % 1000}"
    decision = gate(name, _register(logged, name), evaluation, "data-1", POLICY)
    assert not decision.promoted and problem in decision.reason
    assert version_by_alias(name, CHAMPION) is None


def test_a_champion_without_figures_on_this_data_is_measured_before_comparing(logged):
    name = "sail-gate-data"
    v1 = _register(logged, name)
    assert gate(name, v1, _evaluation(0.60, 0.06), "data-1", POLICY).promoted
    measured = []

    def measure(version):
        measured.append(version)
        return {T2I: 0.70, HR: 0.07}  # the champion on the new snapshot

    v2 = _register(logged, name)
    decision = gate(name, v2, _evaluation(0.62, 0.06), "data-2", POLICY, measure)
    assert measured == [v1] and not decision.promoted  # 0.62 < 0.70 - 0.01, not < 0.60
    assert "(champion v1 0.7000 -0.01)" in decision.reason
    assert validation_metrics(name, v1, "data-2") == {
        "openclipart/t2i_recall_10": 0.70,
        "movielens/hr_10": 0.07,
    }
    assert validation_metrics(name, v1, "data-1") is None  # now measured on data-2

    v3 = _register(logged, name)  # without a way to measure the champion: refused
    mlflow.MlflowClient().set_model_version_tag(name, v1, "sail.evaluated_on", "data-0")
    refused = gate(name, v3, _evaluation(0.99, 0.99), "data-3", POLICY)
    assert not refused.promoted and "champion v1 has no value on this data" in refused.reason


@pytest.mark.parametrize(("racer_t2i", "winner"), [(0.60, "racer"), (0.50, "mine")])
def test_two_versions_racing_for_the_alias_settle_on_the_better(
    logged, monkeypatch, racer_t2i, winner
):
    """Another run moves the alias right after this one did: the better keeps it."""
    name = f"sail-gate-race-{winner}"
    racer, mine = _register(logged, name), _register(logged, name)
    record_metrics(name, racer, {f"validation/{T2I}": racer_t2i, f"validation/{HR}": 0.05})
    mlflow.MlflowClient().set_model_version_tag(name, racer, "sail.evaluated_on", "data-1")
    set_alias = mlflow.MlflowClient.set_registered_model_alias
    raced = []

    def and_the_racer_too(client, model, alias, version):
        set_alias(client, model, alias, version)
        if version == mine and not raced:
            raced.append(racer)
            set_alias(client, model, alias, racer)

    monkeypatch.setattr(mlflow.MlflowClient, "set_registered_model_alias", and_the_racer_too)
    decision = gate(name, mine, _evaluation(0.55, 0.05), "data-1", POLICY)
    assert raced == [racer]
    champion = version_by_alias(name, CHAMPION)
    if winner == "racer":
        assert champion == racer and not decision.promoted
        assert f"v{racer} took the champion alias meanwhile" in decision.reason
    else:
        assert champion == mine and decision.promoted


def test_gate_policy_checks_its_settings():
    with pytest.raises(ValueError, match="at least one primary"):
        GatePolicy(primary=())
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        GatePolicy(tolerance=-0.1)
    with pytest.raises(ValueError, match="baseline_margin must be a number"):
        GatePolicy(baseline_margin=2)


def test_gate_on_a_version_that_does_not_exist(logged):
    with pytest.raises(mlflow.exceptions.MlflowException):
        gate("sail-gate-none", "99", _evaluation(0.5, 0.05), "data-1", POLICY)
    assert version_by_alias("no-such-model", CHAMPION) is None
    with pytest.raises(mlflow.exceptions.MlflowException, match="Invalid alias"):
        version_by_alias("sail-gate-none", "bad alias!")


def test_model_dir_from_uri_resolves_aliases_versions_and_folders(logged, embedder, tmp_path):
    name = "sail-uri"
    version = _register(logged, name)
    gate(name, version, _evaluation(0.5, 0.05), "data-1", POLICY)
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


def test_a_served_alias_is_pinned_to_the_version_it_named_at_load(logged):
    from sail.serving.model import SailEmbeddingModel, pin_alias

    name = "sail-pin"
    first, second = _register(logged, name), _register(logged, name)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(name, "champion", first)
    model = SailEmbeddingModel(model_uri=f"models:/{name}@champion")
    model.load()
    try:
        client.set_registered_model_alias(name, "champion", second)
        assert model.model_uri == f"models:/{name}/{first}" and model.version == str(first)
    finally:
        model.stop()
    assert pin_alias(f"models:/{name}@champion") == f"models:/{name}/{second}"
    assert pin_alias(f"models:/{name}/{first}") == f"models:/{name}/{first}"
