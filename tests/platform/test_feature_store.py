"""The Feast feature store on real data prepared small: publish, republish, vector search, errors.

Real feast with the local online store (PostgreSQL with pgvector, the store's own server) and
Parquet offline store, in the session's prepared SAIL_HOME. The tiny model publishes the first 400
movies and 12 drawings.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from model_code.factory import save_pretrained

DIM = 32
LIMIT = {"movielens": 400, "openclipart": 12}
VIEWS = ("item_embedding", "item_semantic_id", "user_interest")


def online_rows(home) -> dict[str, list[tuple]]:
    """Every row of each view's online table, as stored by feast."""
    import psycopg

    from sail.feature_store.local_postgres import socket_dir

    socket = socket_dir(home / "feature_store")
    with psycopg.connect(host=socket, dbname="postgres", user="postgres") as db:
        return {
            view: db.execute(
                f"SELECT entity_key, feature_name, value, event_ts FROM sail_embedding_{view} "
                "ORDER BY entity_key, feature_name"
            ).fetchall()
            for view in VIEWS
        }


@pytest.fixture(scope="module")
def model_dir(tiny, tmp_path_factory):
    model, processor = tiny
    return save_pretrained(model, processor, tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def published(prepared_home, model_dir):
    from sail.feature_store.publish import publish

    report = publish(model_dir, "v1", dim=DIM, batch_size=64, home=prepared_home, limit=LIMIT)
    return prepared_home, report


def positives(home) -> dict[str, list[str]]:
    """Every MovieLens user's positives, oldest first (history, validation item, test item)."""
    from model_code.data.movielens import load_movielens

    sequences = load_movielens(home / "data" / "movielens")["sequences"]
    return {
        row.user_id: [*row.history, row.validation_item, row.test_item]
        for row in sequences.itertuples()
    }


def test_publish_writes_every_view_online(published):
    from model_code.semantic_ids import ResidualCodebooks, encode
    from sail.feature_store.local_postgres import socket_dir
    from sail.feature_store.publish import codebooks_path
    from sail.feature_store.query import online_features

    home, report = published
    assert report.catalogues == LIMIT
    assert report.rows["item_embedding"] == report.rows["item_semantic_id"] == 412
    movies = {str(i) for i in range(1, 401)}
    users = sum(bool(movies & set(liked)) for liked in positives(home).values())
    assert report.rows["user_interest"] == users
    assert report.online_rows == report.rows
    summary = report.to_dict()
    assert summary["rows/item_embedding"] == 412 and summary["items/openclipart"] == 12
    assert json.loads(json.dumps(summary)) == summary
    rendered = yaml.safe_load((home / "feature_store" / "feature_store.yaml").read_text())
    assert "${" not in json.dumps(rendered)
    assert (
        rendered["online_store"]["type"] == "postgres"
        and rendered["online_store"]["vector_enabled"]
    )
    assert rendered["online_store"]["host"] == socket_dir(home / "feature_store")

    parquet = pd.read_parquet(report.files["item_embedding"]).set_index("item_id")
    assert parquet["event_timestamp"].nunique() == 1
    first_drawing = parquet.index[parquet["catalogue"] == "openclipart"][0]
    items = online_features(item_ids=["50", first_drawing, "nope"], home=home)
    assert items["item_id"].tolist() == ["50", first_drawing, "nope"]
    assert items["catalogue"].tolist() == ["movielens", "openclipart", None]
    assert items["model_version"].tolist()[:2] == ["v1", "v1"]
    for row in items.iloc[:2].itertuples():
        assert row.embedding.shape == (DIM,) and row.embedding.dtype == np.float32
        assert np.isclose(np.linalg.norm(row.embedding), 1.0, atol=1e-5)
        np.testing.assert_array_equal(row.embedding, parquet.loc[row.item_id, "embedding"])
        assert row.codes.shape == (3,) and row.semantic_id == "-".join(map(str, row.codes))
    assert items["embedding"].iloc[2] is None and items["semantic_id"].iloc[2] is None
    codebooks = ResidualCodebooks.load(codebooks_path(home, "v1"))
    np.testing.assert_array_equal(
        encode(codebooks, np.stack(items["embedding"][:2])), np.stack(items["codes"][:2])
    )


def test_user_interest_vectors_are_online(published, model_dir):
    import torch

    from model_code.data.catalogue import movielens_items
    from model_code.data.movielens import load_movielens
    from model_code.embed import Embedder
    from model_code.model import truncate
    from model_code.training.stages import load_stage
    from sail.feature_store.query import online_features

    home, report = published
    users = online_features(user_ids=["1", "685"], home=home)
    vector = users["embedding"].iloc[0]
    assert vector.shape == (DIM,) and np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    assert users["model_version"].iloc[0] == "v1"
    assert users["history_length"].iloc[0] == len(positives(home)["1"])
    assert users["embedding"].iloc[1] is None  # user 685 has no positives: no vector
    parquet = pd.read_parquet(report.files["user_interest"]).set_index("user_id")
    np.testing.assert_array_equal(vector, parquet.loc["1", "embedding"])

    # The model's pooler over user 1's ten latest positives among the published movies.
    latest = [item for item in positives(home)["1"] if int(item) <= 400][-10:]
    frame = load_movielens(home / "data" / "movielens")["items"].set_index("item_id")
    embedder = Embedder.from_pretrained(model_dir)
    instruction = load_stage("seq2item").dataset("movielens-sequences").instructions["target"]
    movies = embedder.embed(
        movielens_items(frame.loc[latest].reset_index()), instruction=instruction
    ).vectors
    pooled = embedder.model.pool_sequences(torch.from_numpy(movies), [list(range(len(latest)))])
    np.testing.assert_allclose(vector, truncate(pooled, DIM)[0].detach().numpy(), atol=1e-5)


def test_republish_same_version_leaves_the_same_online_rows(published, model_dir):
    from sail.feature_store.publish import publish

    home, first = published
    before = online_rows(home)
    again = publish(model_dir, "v1", dim=DIM, batch_size=64, home=home, limit=LIMIT)
    after = online_rows(home)
    assert again.event_timestamp == first.event_timestamp
    assert again.recreated_views == []
    assert {view: len(rows) for view, rows in after.items()} == {
        "item_embedding": 412 * 4,  # one row per feature: embedding, version, catalogue, title
        "item_semantic_id": 412 * 3,
        "user_interest": first.rows["user_interest"] * 3,
    }
    assert after == before  # same keys, same serialized values, same timestamps


def test_similar_agrees_with_brute_force_cosine(published):
    from sail.feature_store.query import similar

    home, report = published
    parquet = pd.read_parquet(report.files["item_embedding"])
    vectors = np.stack(parquet["embedding"].to_numpy())
    ids = parquet["item_id"].tolist()
    scores = vectors @ vectors[ids.index("50")]
    expected = [ids[i] for i in np.argsort(-scores) if ids[i] != "50"][:5]

    neighbours = similar("50", 5, home=home)
    assert [n.item_id for n in neighbours] == expected
    got = [n.score for n in neighbours]
    assert got == sorted(got, reverse=True)
    np.testing.assert_allclose(got, [scores[ids.index(i)] for i in expected], atol=1e-5)
    assert neighbours[0].title and neighbours[0].catalogue in ("movielens", "openclipart")
    assert [n.item_id for n in similar("50", 5, home=home)] == expected  # a second search works


def test_unknown_item_is_a_clear_error(published):
    from sail.feature_store.query import NotPublished, similar

    home, _ = published
    with pytest.raises(
        NotPublished,
        match=r"item 99999 is not in the online store; published "
        r"catalogues: movielens \(400 items\), openclipart \(12 items\)",
    ):
        similar("99999", home=home)


@pytest.mark.filterwarnings("ignore:codebook_size")  # 4 items: the codebooks are clamped
def test_new_version_with_fewer_items_replaces_the_online_rows(published, model_dir):
    """Runs last: it leaves v2 online."""
    from sail.feature_store.publish import publish
    from sail.feature_store.query import NotPublished, similar

    home, first = published
    report = publish(model_dir, "v2", dim=16, catalogues=["openclipart"], home=home, limit=4)
    assert report.event_timestamp > first.event_timestamp
    assert sorted(report.recreated_views) == sorted(VIEWS)
    counts = {view: len(rows) for view, rows in online_rows(home).items()}
    assert counts == {"item_embedding": 4 * 4, "item_semantic_id": 4 * 3, "user_interest": 0}
    with pytest.raises(NotPublished, match="openclipart \\(4 items\\) \\(model_version v2\\)"):
        similar("50", home=home)
    drawing = pd.read_parquet(report.files["item_embedding"])["item_id"].iloc[0]
    assert len(similar(drawing, 10, home=home)) == 3


def test_nothing_published_is_a_clear_error(tmp_path):
    from sail.feature_store.query import NotPublished, online_features, similar

    with pytest.raises(NotPublished, match="nothing is published in"):
        similar("50", home=tmp_path)
    with pytest.raises(ValueError, match="exactly one of item_ids and user_ids"):
        online_features(home=tmp_path)


def test_publish_checks_its_arguments_first(tmp_path, model_dir):
    from model_code.config import ConfigError
    from sail.feature_store.publish import publish

    with pytest.raises(ValueError, match="model_version must be"):
        publish(model_dir, "../v1", dim=DIM, home=tmp_path)
    with pytest.raises(ValueError, match="catalogues must name some of"):
        publish(model_dir, "v1", dim=DIM, catalogues=["imdb"], home=tmp_path)
    with pytest.raises(ConfigError, match="not a Matryoshka size"):
        publish(model_dir, "v1", dim=128, home=tmp_path)
    assert not (tmp_path / "feature_store").exists()


@pytest.mark.parametrize(
    "config", ["feature_repo/production.yaml.example", "manifests/base/feast/feature_store.yaml"]
)
def test_production_configs_use_the_local_store_type_with_vector_search(config, monkeypatch):
    from pathlib import Path

    from feast.repo_config import RepoConfig

    root = Path(__file__).resolve().parents[2]
    local = yaml.safe_load((root / "feature_repo" / "feature_store.yaml").read_text())
    text = (root / config).read_text()
    for variable in set(re.findall(r"\$\{(\w+)\}", text)):
        monkeypatch.setenv(variable, "s3://bucket/registry.pb" if "REGISTRY" in variable else "x")
    settings = yaml.safe_load(os.path.expandvars(text))
    settings["offline_store"] = {"type": "file"}  # the warehouse clients are not installed here
    store = RepoConfig(repo_path=root, **settings).online_store
    assert settings["online_store"]["type"] == local["online_store"]["type"] == "postgres"
    assert type(store).__name__ == "PostgreSQLOnlineStoreConfig" and store.vector_enabled
    assert store.db_schema == "feast_online"
